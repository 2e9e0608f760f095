"""The compiled engine gives the SimPy engine's answers exactly, packet by packet.

Each scenario below exercises one feature (and asserts that it does: drops
happen, ties happen, NAT costs count), then runs on both engines and compares
every per-packet column (send, delivery or drop time, reason, route, size),
per-hop rows, station counters, in-flight count and warnings for equality.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is not installed: pip install -e '.[fast]'")


from sim.engine import simulate  # noqa: E402
from sim.spec.load import load_scenario  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = ROOT / "experiments" / "scenarios" / "article.toml"
SHORT = {"simulation.duration_s": 0.004, "simulation.warmup_s": 0.0005}


def poisson(name, src, dst, **kw):
    return {"name": name, "kind": "poisson", "src": src, "dst": dst, **kw}


def scenario(flows, **overrides):
    return load_scenario(ARTICLE, {"flows": flows, **SHORT, **overrides})


def assert_identical(a, b):
    """Every result of run ``a`` (SimPy) equals that of ``b`` (compiled)."""
    assert (a.engine, b.engine) == ("simpy", "compiled")
    assert a.packets.keys() == b.packets.keys()
    for k, col in a.packets.items():
        assert col.dtype == b.packets[k].dtype, k
        assert np.array_equal(col, b.packets[k], equal_nan=True), k
    assert (a.hops is None) == (b.hops is None)
    for k, col in (a.hops or {}).items():
        assert col.dtype == b.hops[k].dtype, k
        assert np.array_equal(col, b.hops[k]), k
    assert a.stations == b.stations
    assert a.reasons == b.reasons
    assert (a.route_flow, a.route_is_reply) == (b.route_flow, b.route_is_reply)
    assert (a.route_names, a.route_stations) == (b.route_names, b.route_stations)
    assert a.in_flight_at_end == b.in_flight_at_end
    assert a.warnings == b.warnings
    assert a.bytes_per_packet == b.bytes_per_packet
    assert [s.rate_pps for s in a.flows] == [s.rate_pps for s in b.flows]


def both(scn, **kw):
    a = simulate(scn, engine="simpy", **kw)
    b = simulate(scn, engine="compiled", **kw)
    assert_identical(a, b)
    return a


def drops_at(res, station: str) -> int:
    rid = res.reasons.index(f"buffer full at {station}")
    return int((res.packets["reason"] == rid).sum())


def test_finite_packet_buffer_drops():
    scn = scenario([poisson("p", "api", "web", load=1.3)], **{"costs.eth0_tx.buffer_packets": 4})
    res = both(scn)
    assert drops_at(res, "node2/eth0:tx") > 50


def test_byte_limit_with_mixed_sizes():
    scn = scenario(
        [poisson("p", "client", "web", load=0.97, size_bytes="imix")],
        **{"costs.bridge.buffer_bytes": 3000, "costs.bridge.per_packet_us": 2.0},
    )
    res = both(scn)
    assert drops_at(res, "node1/cbr0") > 20
    st = next(s for s in res.stations if s.name == "node1/cbr0")
    assert st.max_in_system > 2  # small packets share the bytes: more than 2 fit


@pytest.mark.parametrize("servers", [2, 4])
def test_several_servers_exponential_service(servers):
    scn = scenario(
        [poisson("p", "api", "web", rate_pps=0.9 * servers / 4e-6)],
        **{
            "costs.forward.servers": servers,
            "costs.forward.per_packet_us": 4.0,
            "costs.forward.per_byte_ns": 0.0,
            "costs.forward.service": "exponential",
            "costs.forward.buffer_packets": 3 * servers,
        },
    )
    res = both(scn)
    st = next(s for s in res.stations if s.name == "node2/forward")
    assert st.servers == servers and st.max_in_system == 3 * servers
    assert drops_at(res, "node2/forward") > 0


def test_merging_constant_flows_with_simultaneous_arrivals():
    # equal rates and phases: every packet of a and b is sent at the same instant
    # and they meet at node1/cbr0 in the same instant; the order decides who waits
    flows = [
        {"name": "a", "kind": "constant", "src": "client", "dst": "web", "rate_pps": 4e5},
        {"name": "b", "kind": "constant", "src": "web", "dst": "client", "rate_pps": 4e5},
        poisson("c", "api", "client", load=0.3, size_bytes=[64, 1500]),
    ]
    scn = scenario(flows, **{"costs.veth.per_packet_us": 0.0, "costs.veth.per_byte_ns": 0.0})
    res = both(scn, record_hops=True)
    p, route_flow = res.packets, np.asarray(res.route_flow)
    send_a = p["send_s"][route_flow[p["route"]] == 0]
    send_b = p["send_s"][route_flow[p["route"]] == 1]
    assert np.array_equal(send_a, send_b)  # simultaneous sends
    h = res.hops
    cbr0 = res.route_stations[0].index("node1/cbr0")
    at_cbr0 = h["station"] == h["station"][h["packet"] == 0][cbr0]
    arrive = h["arrive_s"][at_cbr0]
    assert np.unique(arrive).size < arrive.size  # ties at the merge point
    assert (h["start_s"][at_cbr0] > arrive).any()  # and one of each pair waits


def test_nat_costs_count_and_match():
    flows = [poisson("p", "client", "internet", rate_gbps=3.0)]
    res = both(scenario(flows, **{"costs.nat_extra_us": 1.5}), record_hops=True)
    free = simulate(scenario(flows, **{"costs.nat_extra_us": 0.0}))
    lat = np.nanmean(res.packets["done_s"] - res.packets["send_s"])
    lat0 = np.nanmean(free.packets["done_s"] - free.packets["send_s"])
    assert lat - lat0 > 1.4e-6


def test_onoff_trace_and_dropped_paths(tmp_path):
    trace = tmp_path / "t.csv"
    rows = ["time_s,size_bytes,src,dst"]
    rows += [f"{i * 2e-6:.9f},{200 + (i % 7) * 100},client,web" for i in range(800)]
    rows += [f"{0.0016 + i * 1e-6:.9f},1500,api,10.0.1.77" for i in range(300)]
    body = sorted(rows[1:], key=lambda r: float(r.split(",")[0]))
    trace.write_text("\n".join([rows[0], *body]) + "\n")
    flows = [
        {"name": "tr", "kind": "trace", "trace_file": str(trace)},
        {"name": "burst", "kind": "onoff", "src": "web", "dst": "api", "rate_pps": 5e5,
         "on_mean_us": 40.0, "off_mean_us": 60.0, "period_distribution": "pareto"},
        {"name": "bursty", "kind": "onoff", "src": "api", "dst": "client", "rate_pps": 3e5},
        poisson("nowhere", "client", "10.0.1.78", rate_pps=1e5, start_s=0.001, stop_s=0.003),
    ]  # fmt: skip
    res = both(scenario(flows))
    assert any(r.startswith("no neighbour") for r in res.reasons)
    assert (res.packets["reason"] > 0).sum() > 300
