"""The compiled engine runs the CPU data path with the SimPy engine's answers, exactly.

The reference is :mod:`sim.engine.cpu` on the SimPy engine. Each scenario asserts
the feature it exercises happens (threads hold sends back, a receiver waits out a
flooding sender's scheduler slice, a backlog, ring or socket buffer overflows, two
flows meet on a core at the same instant), then compares every per-packet column,
per-hop row and station counter of the two engines for equality
(:func:`test_engine_compiled.assert_identical`).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("numba", reason="numba is not installed: pip install -e '.[fast]'")

from test_engine_compiled import ARTICLE, ROOT, assert_identical  # noqa: E402

from sim.engine import simulate  # noqa: E402
from sim.spec.load import load_scenario  # noqa: E402


def cpu_scenario(flows: list[dict], costs: dict | None = None, **datapath):
    over = {"datapath.model": "cpu", "flows": flows, **(costs or {})}
    over.update({f"datapath.{k}": v for k, v in datapath.items()})
    return load_scenario(ARTICLE, over)


def poisson(name: str, src: str, dst: str, pps: float, size: int = 64) -> dict:
    return {
        "name": name,
        "kind": "poisson",
        "src": src,
        "dst": dst,
        "rate_pps": pps,
        "size_bytes": size,
    }


def both(scn, duration_s=0.006, warmup_s=0.001, record_hops=True):
    kw = {"duration_s": duration_s, "warmup_s": warmup_s, "record_hops": record_hops}
    a = simulate(scn, engine="simpy", **kw)
    b = simulate(scn, engine="compiled", **kw)
    assert_identical(a, b)
    return a


def reasons_seen(res) -> set[str]:
    return {res.reasons[i] for i in np.unique(res.packets["reason"]) if i}


@pytest.mark.parametrize("cpus", [1, 2])
@pytest.mark.parametrize(("src", "pps"), [("client", 4.5e5), ("api", 1.5e5)])
def test_one_flow_same_and_cross_node(src, pps, cpus):
    """client -> web (same node) overloads its sender: sends wait for the thread."""
    res = both(cpu_scenario([poisson("f", src, "web", pps)], cpus=cpus))
    assert (res.packets["reason"] == 0).sum() > 300
    if src == "client":
        assert res.in_flight_at_end > 100  # most waiting for the sending thread
    names = res.route_stations[0]
    if cpus == 1:
        assert len(set(names)) < len(names)  # the packet revisits a core


def test_backlog_overflow_drops():
    slow_rx = {"costs.eth0_rx.per_packet_us": 3.0}
    scn = cpu_scenario([poisson("f", "api", "web", 4e5)], slow_rx, cpus=4, rx_ring=4096)
    res = both(scn, duration_s=0.02, warmup_s=0.002, record_hops=False)
    (why,) = reasons_seen(res)
    assert why.startswith("backlog full at node1/cpu")
    assert (res.packets["reason"] > 0).sum() > 100


def test_ring_and_socket_buffer_drops():
    slow_rx = {"costs.eth0_rx.per_packet_us": 3.0}
    res = both(cpu_scenario([poisson("f", "api", "web", 4e5)], slow_rx, cpus=4), 0.01)
    assert next(iter(reasons_seen(res))).startswith("rx ring full at node1/eth0")
    slow = cpu_scenario([poisson("f", "client", "web", 2e5, 1000)], recv_per_packet_us=8.0)
    res = both(slow, 0.01)
    assert reasons_seen(res) == {"socket receive buffer full at web"}


def test_flows_sharing_a_core_with_simultaneous_arrivals():
    """Equal constant flows sent at the same instants meet on one core (cpus = 1):
    two from one pod (one thread) and one from another pod."""
    flows = [
        {"name": n, "kind": "constant", "src": s, "dst": d, "rate_pps": 1e5}
        for n, s, d in (("a", "client", "web"), ("b", "client", "api"), ("c", "web", "client"))
    ]
    res = both(cpu_scenario(flows, cpus=1))
    h = res.hops
    core = res.stations.index(next(s for s in res.stations if s.name == "node1/cpu0"))
    arrive = h["arrive_s"][h["station"] == core]
    assert np.unique(arrive).size < arrive.size  # ties on the core
    send = res.packets["send_s"]
    assert np.unique(send).size * 3 <= send.size + 3  # the three flows send together


def test_replica_and_gateway_cpu():
    flows = [poisson("f", "api", "web", 2e5), poisson("g", "client", "api", 2e5)]
    both(cpu_scenario(flows, topology="replica", cpus=2))
    both(cpu_scenario(flows, gateway="cpu", cpus=1))


def test_trace_onoff_and_dropped_paths(tmp_path):
    """A trace whose rows share the sending thread with an on/off flow, and a path
    dropped after the sender's segment (no neighbour)."""
    trace = tmp_path / "t.csv"
    rows = [f"{i * 2e-6:.9f},{200 + (i % 7) * 100},client,web" for i in range(800)]
    rows += [f"{0.0016 + i * 1e-6:.9f},1500,api,10.0.1.77" for i in range(300)]
    rows.sort(key=lambda r: float(r.split(",")[0]))
    trace.write_text("\n".join(["time_s,size_bytes,src,dst", *rows]) + "\n")
    flows = [
        {"name": "tr", "kind": "trace", "trace_file": str(trace)},
        {"name": "burst", "kind": "onoff", "src": "client", "dst": "api", "rate_pps": 5e5},
        poisson("nowhere", "web", "10.0.1.78", 1e5),
    ]
    res = both(cpu_scenario(flows, cpus=1), 0.004)
    assert any(r.startswith("no neighbour") for r in res.reasons)
    assert (res.packets["reason"] > 0).sum() > 300
    assert res.in_flight_at_end > 0


def test_segment_ends_exactly_at_the_next_send():
    """The sender's work equals the send gap exactly (4 us at 250 kpps, every other
    cost 0), so each send reaches its thread the instant the previous send's segment
    ends, and on the one core the receiver's segment arrives at that same instant:
    the event order decides which runs first."""
    zero = {
        f"costs.{k}.{c}": 0.0 for k in ("veth", "bridge") for c in ("per_packet_us", "per_byte_ns")
    }
    flows = [{"name": "f", "kind": "constant", "src": "client", "dst": "web", "rate_pps": 2.5e5}]
    dp = {"send_per_packet_us": 4.0, "send_per_byte_ns": 0.0, "recv_per_packet_us": 1.0}
    res = both(cpu_scenario(flows, zero, cpus=1, **dp), 0.002, 0.0)
    h = res.hops
    sender_end = h["depart_s"][(h["packet"] == 0)][0]
    assert sender_end == res.packets["send_s"][1]  # the tie this test is about
    assert (h["start_s"] > h["arrive_s"]).any()  # and somebody waits for it


def read_at(res, route: int = 0) -> np.ndarray:
    """Start of the ``recvfrom`` segments of ``route``'s delivered datagrams, seconds.

    A delivered packet's last hop row is its receiver's ``recvfrom``.
    """
    h, p = res.hops, res.packets
    pkt = h["packet"]
    last = pkt.size - 1 - np.unique(pkt[::-1], return_index=True)[1]
    q = pkt[last]
    ok = (p["reason"][q] == 0) & np.isfinite(p["done_s"][q]) & (p["route"][q] == route)
    return h["arrive_s"][last][ok]


@pytest.mark.parametrize(("kind", "slice_us"), [("poisson", 4000.0), ("constant", 300.0)])
def test_flooding_sender_and_its_receiver_on_one_core(kind, slice_us):
    """A sender flooding a receiver on its own core: the receiver preempts it datagram
    by datagram while it is owed time (its EEVDF lag), then waits out the sender's
    slice and reads back to back when the slice ends (many reads start at one
    instant, the wake-up's); what its socket buffer cannot hold meanwhile is
    dropped there, charged skb truesize (a 20 kB buffer holds 24 datagrams of
    801 B). At a constant rate the wake-ups tie with the sender's releases."""
    flood = [{**poisson("f", "client", "web", 5e5), "kind": kind}]
    dp = {"pin": {"client": 0, "web": 0}, "sched_slice_us": slice_us}
    if slice_us < 1000:
        dp["rmem_default_bytes"] = 20000
    res = both(cpu_scenario(flood, **dp), duration_s=0.012, warmup_s=0.001)
    assert reasons_seen(res) == {"socket receive buffer full at web"}
    reads = read_at(res)
    _, together = np.unique(reads, return_counts=True)
    assert reads.size > 100 and (together == 1).sum() > 0.5 * reads.size  # alternating
    assert together.max() >= 24  # and a full buffer drained at once after a slice


def test_light_flow_on_a_shared_core_waits_out_runs_of_sends():
    """A sender below its core's capacity: the receiver waits only while the sender's
    run of back-to-back sends lasts (its wake-up at the send segment's end)."""
    light = [poisson("f", "client", "web", 1.5e5)]
    res = both(cpu_scenario(light, pin={"client": 0, "web": 0}), duration_s=0.008)
    assert res.packets["reason"].max() == 0
    reads = read_at(res)
    assert np.unique(reads).size < reads.size  # some reads waited for a run to end


@pytest.mark.parametrize(
    "placement",
    [{"placement": "spread"}, {"placement": "packed"}, {"pin": {"web": 1, "client": 1}}],
)
def test_two_cpus_placements_with_two_threads_on_a_core(placement):
    """Two pods sending to each other and a cross-node flow, two cores per node: the
    receivers look for a holder among both sending threads of their core."""
    flows = [
        poisson("a", "client", "web", 3.5e5),
        poisson("b", "web", "client", 1e5, 1000),
        poisson("c", "api", "web", 1.5e5),
    ]
    res = both(cpu_scenario(flows, cpus=2, rmem_default_bytes=30000, **placement), 0.008)
    reads = read_at(res, 0)
    assert reads.size > 20 and np.unique(reads).size < reads.size  # some waited for a run


def test_truesize_bounds_a_slow_readers_buffer():
    """A slow reader on its own core: the socket buffer, charged a large truesize per
    datagram, overflows (no slice involved: the sender is on another core)."""
    dp = {"pin": {"client": 0, "web": 1}, "recv_per_packet_us": 6.0, "rmem_default_bytes": 50000}
    flows = [poisson("f", "client", "web", 2.5e5, 1400)]
    for truesize in ((730.0, 1.11), (2000.0, 3.0)):
        base, per_byte = truesize
        scn = cpu_scenario(
            flows, skb_truesize_base_bytes=base, skb_truesize_per_byte=per_byte, **dp
        )
        res = both(scn, 0.006)
        assert reasons_seen(res) == {"socket receive buffer full at web"}


def test_cpu_saturation_over_several_slices_runs_identical(tmp_path, monkeypatch):
    """``cpu-saturation``'s quick sweep at its full run length (0.02 s: five scheduler
    slices, so the saturated one-core runs drop at the socket buffer): every run
    identical packet by packet, and ``runs.csv`` byte-identical to the SimPy engine's."""
    import sim.batch.runner as runner
    from sim.batch import load_experiment, run_experiment

    text = (ROOT / "experiments" / "cpu-saturation.toml").read_text()
    text = text.replace("duration_s = 0.004", "duration_s = 0.02")
    text = text.replace("warmup_s = 0.001", "warmup_s = 0.004")
    exp = tmp_path / "cpu-saturation.toml"
    exp.write_text(text.replace('"scenarios/', f'"{ROOT}/experiments/scenarios/'))
    run_experiment(exp, tmp_path / "simpy", quick=True, plots=False, engine="simpy")
    checked = []

    def both_engines(scn, engine, **kw):
        assert engine == "compiled"  # auto's choice, carried on the run spec
        a = simulate(scn, engine="simpy", **kw)
        b = simulate(scn, engine="compiled", **kw)
        assert_identical(a, b)
        checked.append(b)
        return b

    monkeypatch.setattr(runner, "simulate", both_engines)
    run_experiment(exp, tmp_path / "auto", quick=True, plots=False, engine="auto")
    assert len(checked) == len(load_experiment(exp, quick=True).runs)
    assert any("socket receive buffer" in r for res in checked for r in res.reasons)
    runs = [(tmp_path / e / "runs.csv").read_bytes() for e in ("simpy", "auto")]
    assert runs[0] == runs[1]
