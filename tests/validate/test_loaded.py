"""The replica's CPU model (``topology = "replica"``) and its loaded calibration.

Against arithmetic we did not simulate: a flooding UDP sender in the replica runs
the whole path inline on its core, so its rate is 1 / (its per-packet work); the
fit recovers the costs that generated its inputs; a background flow on another
core leaves the probe's round trip exactly as it was idle.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from test_engine_cpu import overload_cycle

from sim.control.cluster import build_cluster
from sim.spec.load import load_scenario
from sim.validate.loaded import (
    LoadedFit,
    compare_overload,
    drop_location,
    fit_loaded,
    predict_loaded_p50,
    predict_saturation,
)
from sim.validate.models import IP_UDP_HEADER_BYTES

ARTICLE = Path(__file__).resolve().parents[2] / "experiments" / "scenarios" / "article.toml"
PODS = [
    {"name": "web", "node": "node1"},
    {"name": "client", "node": "node1"},
    {"name": "api", "node": "node2"},
    {"name": "sink", "node": "node1"},
]
SAME, CROSS = ("client", "web"), ("api", "web")
KNOWN = LoadedFit(element_us=0.7, send_us=10.0, recv_us=1.5, per_byte_ns=0.5, cpus=2)
N_ELEMENTS = {SAME: 3, CROSS: 13}  # one way: veth, cbr0, veth; + forward, eth0, LAN, gateway


@pytest.fixture(scope="module")
def model():
    cl = build_cluster(load_scenario(ARTICLE, {"pods": PODS}), str(ARTICLE))
    return cl, {**KNOWN.overrides(cl), "pods": PODS}


def _sender_us(pair, payload: int) -> float:
    ip = payload + IP_UDP_HEADER_BYTES
    return KNOWN.send_us + N_ELEMENTS[pair] * KNOWN.element_us + KNOWN.per_byte_ns * 1e-3 * ip


@pytest.mark.parametrize("pair", [SAME, CROSS])
@pytest.mark.parametrize("payload", [64, 1400])
def test_a_flooding_sender_saturates_at_its_cores_work(model, pair, payload) -> None:
    got = predict_saturation(ARTICLE, model[1], *pair, payload)
    assert got["delivered_pps"] == pytest.approx(1e6 / _sender_us(pair, payload), rel=0.01)
    assert got["drops"] == {}  # the receiver (1.5 us + copy) keeps up: nothing dropped


def test_fit_recovers_the_costs_that_made_its_inputs(model) -> None:
    cl, ov = model
    idle = {
        (name, size): predict_loaded_p50(ARTICLE, ov, pair, ("api", "sink"), 0, 0, 0, size)
        for name, pair in (("same", SAME), ("cross", CROSS))
        for size in (64, 1400)
    }
    sat = predict_saturation(ARTICLE, ov, *SAME, 64)["delivered_pps"]
    fit = fit_loaded(cl, SAME, CROSS, idle, sat, 2)
    assert fit.element_us == pytest.approx(KNOWN.element_us, rel=1e-3)
    assert fit.per_byte_ns == pytest.approx(KNOWN.per_byte_ns, rel=1e-3)
    assert fit.send_us == pytest.approx(KNOWN.send_us, rel=0.01)
    assert fit.recv_us == pytest.approx(KNOWN.recv_us, rel=0.05)


def test_background_on_another_core_leaves_the_probe_alone(model) -> None:
    ov = model[1]
    bg = ("api", "sink")
    for rt in (False, True):
        idle = predict_loaded_p50(ARTICLE, ov, SAME, bg, 0, 0, 0, realtime=rt)
        apart = predict_loaded_p50(ARTICLE, ov, SAME, bg, 2e4, 0, 1, realtime=rt)
        shared = predict_loaded_p50(ARTICLE, ov, SAME, bg, 2e4, 0, 0, realtime=rt)
        assert apart == pytest.approx(idle, rel=1e-9)
        if rt:  # a real-time probe preempts the background's work on its core
            assert shared == pytest.approx(idle, rel=1e-9)
        else:  # at normal priority it waits behind it
            assert shared > 1.1 * idle


def test_overload_on_one_core_drops_at_the_socket_buffer(model) -> None:
    """Sender and receiver on one core: the receiver reads each datagram at once while
    it is owed time, then waits out a scheduler slice L (the sender sends L / W, the
    socket buffer keeps C, ``rmem_default`` over the skb truesize, the rest is lost
    there) and reads the C (R each): :func:`test_engine_cpu.overload_cycle`. The
    model's run (390 ms after warm-up, ~20 cycles) is off by at most one partial
    cycle: 1/20.
    """
    cl, ov = model
    dp = load_scenario(ARTICLE, ov).datapath
    w_us = _sender_us(SAME, 64)
    r_us = KNOWN.recv_us + KNOWN.per_byte_ns * 1e-3 * (64 + IP_UDP_HEADER_BYTES)
    truesize = int(dp.skb_truesize_base_bytes + dp.skb_truesize_per_byte * 92)
    cap = dp.rmem_default_bytes // truesize
    slice_us = dp.sched_slice_us
    kernel = {"rcvbuf_drops": 10, "backlog_drops": 0, "delivered": 90, "delivered_pps": 45.0}
    got = compare_overload(ARTICLE, ov, SAME, kernel)
    assert got["kernel"] == got["model"] == "socket buffer"
    loss, pps = overload_cycle(w_us, r_us, cap, slice_us)
    assert got["model_drop_fraction"] == pytest.approx(loss, rel=1 / 20)
    assert got["model_delivered_pps"] == pytest.approx(pps, rel=1 / 20)
    assert predict_saturation(ARTICLE, ov, *SAME, 64)["drops"] == {}  # separate cores
    assert drop_location(0, 0) == "none" and drop_location(1, 2) == "backlog"


def test_a_tcp_receiver_is_not_held_back_by_its_own_acknowledgements() -> None:
    """The model's sending thread of a TCP receiver (its acknowledgements) is not a
    rival it keeps scheduler lag against: with the costs one real-kernel test run fitted (idle p50
    17.786 us same-node, 26.989 cross-node; no per-byte cost), the reader once fell
    behind its own acks, its socket buffer overflowed and the connection stalled for
    the 200 ms minimum RTO: 0 Gbit/s. It delivers over 10 Gbit/s."""
    from dataclasses import replace

    from sim.validate.tcp import _base_fit, predict_tcp_gbps

    pods = [{"name": "web", "node": "node1"}, {"name": "client", "node": "node1"},
            {"name": "api", "node": "node2"}, {"name": "sink", "node": "node1"}]  # fmt: skip
    over = {"pods": pods, "flows": []}
    cl = build_cluster(load_scenario(ARTICLE, over), str(ARTICLE))
    fit = _base_fit(cl, SAME, CROSS, {"same": 17.786, "cross": 26.989}, 2)
    ov = {**over, **replace(fit, per_byte_ns=0.0).overrides(cl)}
    pin = {"client": 0, "api": 0, "web": 1}
    assert predict_tcp_gbps(ARTICLE, ov, *SAME, 1, pin) > 10.0


def test_a_tcp_fit_on_which_the_model_stalls_is_one_clear_error(monkeypatch) -> None:
    """A fit whose model connection delivers nothing is a UserError naming it, not a
    ZeroDivisionError from the per-byte solver."""
    import sim.validate.tcp as tcp
    from sim.errors import UserError

    monkeypatch.setattr(tcp, "predict_tcp_gbps", lambda *a, **k: 0.0)
    over = {"pods": [{"name": "web", "node": "node1"}, {"name": "client", "node": "node1"},
                     {"name": "api", "node": "node2"}], "flows": []}  # fmt: skip
    with pytest.raises(UserError, match="no TCP goodput"):
        tcp.fit_tcp(ARTICLE, over, SAME, CROSS, {"same": 17.8, "cross": 27.0}, 5.0, 2, {})
