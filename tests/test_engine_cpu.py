"""The CPU data path (``[datapath] model = "cpu"``) against queueing theory.

A core is a FIFO single server of segments. Fed Poisson packets that each bring
k segments of work back to back (the next segment arrives when the previous one
ends), the core is busy exactly when some packet has work left, so the unfinished
work U(t) is the workload of an M/G/1 queue whose service is the packet's summed
work S (work conservation): time-average U = lambda E[S^2] / (2 (1 - rho))
(Pollaczek-Khinchine), utilisation rho = lambda E[S]. With k = 1 a packet's
sojourn is P-K's E[S] + lambda E[S^2] / (2 (1 - rho)).

Tolerances: batch means over per-packet values in send order, as in
``tests/test_engine_queueing.py`` (whose helpers are reused; the derivation is
there). Each batch spans >= 3 ms, over 50 relaxation times E[S]/(1-sqrt(rho))^2
(about 40 us here), after a 5 ms warm-up.
"""

from __future__ import annotations

import math
from ipaddress import IPv4Address
from pathlib import Path

import numpy as np
import pytest
from test_engine_queueing import WIDEN, assert_in_ci, batch_ci

from sim.control.resolve import Endpoint, Route
from sim.engine import simulate
from sim.engine.cpu import Core, Queue
from sim.engine.network import Network, stream
from sim.errors import ScenarioError
from sim.spec.costs import Costs
from sim.spec.load import load_scenario
from sim.spec.workload import IMIX_SIZES_BYTES, IMIX_WEIGHTS

ARTICLE = Path(__file__).resolve().parents[1] / "experiments" / "scenarios" / "article.toml"
WARM_S = 0.005
A_S = 0.2e-6  # per-packet work of each segment, s
B_S = 0.5e-9  # per-byte work of each segment, s


class _OneCore:
    """``net.plane`` stand-in: every route is ``k`` segments on one core."""

    def __init__(self, net: Network, k: int) -> None:
        self.work: list[tuple] = []
        self.core = Core(0, "test/cpu0", Queue("test/cpu0 backlog", None, None, 0))
        self.core.bind(net, net.warmup, self.work)
        net.stations.append(self.core)
        self.k = k

    def compile(self, path, route):
        self.work.append(((A_S, B_S, None),) * self.k)
        return [self.core] * self.k


def run_core(k: int, rho: float, duration_s: float, seed: int):
    """Poisson IMIX packets of k segments each on one core; returns (net, lambda, S moments)."""
    sizes = np.asarray(IMIX_SIZES_BYTES, dtype=float)
    probs = np.asarray(IMIX_WEIGHTS, dtype=float) / sum(IMIX_WEIGHTS)
    s_work = k * (A_S + B_S * sizes)
    es, es2 = float(probs @ s_work), float(probs @ s_work**2)
    lam = rho / es
    net = Network(Costs(), seed, WARM_S, record_hops=True)
    net.plane = _OneCore(net, k)
    a = IPv4Address("10.0.0.2")
    r = net.add_route(
        Route(Endpoint("pod", "a", a, "a"), Endpoint("pod", "b", a, "b"), verdict="delivered")
    )
    rng = stream(seed, "test", "arrivals")
    n = int(lam * duration_s * 1.1) + 100
    times = np.cumsum(rng.exponential(1 / lam, n))
    pick = rng.choice(len(sizes), n, p=probs)
    first = net.route_arrive[r][0]
    state = {"i": 0}

    def fire(ev):
        first(ev)
        i = state["i"] = state["i"] + 1
        if times[i] < duration_s:
            net.schedule(times[i], net.rec.new_packet(r, int(sizes[pick[i]]), times[i]), fire)

    net.schedule(times[0], net.rec.new_packet(r, int(sizes[pick[0]]), times[0]), fire)
    net.env.run(until=duration_s)
    return net, lam, es, es2


def unfinished_work_integrals(net: Network, duration_s: float):
    """Per packet sent in the window and done by the end: integral of its remaining work.

    With segments j of work w_j ending at dep_j, a packet sent at a and done at d
    contributes S (d - a) - sum_j (w_j^2 / 2 + w_j (d - dep_j)) to the integral of U.
    """
    rec = net.rec
    send = np.frombuffer(rec.send_s, dtype=float)
    done = np.frombuffer(rec.done_s, dtype=float)
    hp = np.frombuffer(rec.hop_pkt, dtype=np.int64)
    w = np.frombuffer(rec.hop_depart_s, dtype=float) - np.frombuffer(rec.hop_start_s, dtype=float)
    dep = np.frombuffer(rec.hop_depart_s, dtype=float)
    s = np.bincount(hp, weights=w, minlength=send.size)
    tail = np.bincount(hp, weights=w**2 / 2 + w * (done[hp] - dep), minlength=send.size)
    g = s * (done - send) - tail
    keep = (send >= WARM_S) & (done <= duration_s)
    return g[keep], s[keep], (send >= WARM_S) & (send < duration_s)


@pytest.mark.parametrize(("k", "rho"), [(3, 0.7), (1, 0.7)])
def test_core_work_is_conserved_mg1_unfinished_work(k: int, rho: float) -> None:
    """Time-average unfinished work and utilisation are M/G/1's with the summed service."""
    duration_s = 0.2
    net, lam, es, es2 = run_core(k, rho, duration_s, seed=21)
    g, s, in_window = unfinished_work_integrals(net, duration_s)
    # work conservation, exactly: the core was busy for the work the packets brought
    core = net.stations[0]
    sent_work = float(np.sum(s))
    assert core.busy_sum >= sent_work - 1e-12
    # utilisation: the window's work over its length, against rho with the Poisson
    # count's spread (sd of a compound Poisson sum: sqrt(lambda T E[S^2]))
    t = duration_s - WARM_S
    sd = math.sqrt(lam * t * es2) / t
    assert core.busy_sum / t == pytest.approx(rho, abs=4 * sd + 0.002)
    # time-average U = lambda E[G] with E[G] = E[S^2] / (2 (1 - rho))
    assert_in_ci(g, es2 / (2 * (1 - rho)), 0.08, f"k={k} unfinished work per packet")
    assert in_window.sum() > 100_000


def test_one_segment_sojourn_is_pollaczek_khinchine() -> None:
    """k = 1: mean sojourn E[S] + lambda E[S^2] / (2 (1 - rho)) (M/G/1, IMIX service)."""
    rho, duration_s = 0.7, 0.2
    net, lam, es, es2 = run_core(1, rho, duration_s, seed=22)
    send = np.frombuffer(net.rec.send_s, dtype=float)
    done = np.frombuffer(net.rec.done_s, dtype=float)
    keep = (send >= WARM_S) & (done <= duration_s)
    theory = es + lam * es2 / (2 * (1 - rho))
    assert_in_ci(done[keep] - send[keep], theory, 0.06, "M/G/1 sojourn")


def test_three_segment_sojourn_is_not_pollaczek_khinchine() -> None:
    """The segments of later packets cut in: the sojourn exceeds P-K's (so the test above
    can tell one segment from several)."""
    rho, duration_s = 0.7, 0.1
    net, lam, es, es2 = run_core(3, rho, duration_s, seed=23)
    send = np.frombuffer(net.rec.send_s, dtype=float)
    done = np.frombuffer(net.rec.done_s, dtype=float)
    keep = (send >= WARM_S) & (done <= duration_s)
    mean, half = batch_ci(done[keep] - send[keep])
    assert mean - WIDEN * half > 1.2 * (es + lam * es2 / (2 * (1 - rho)))


# -- the CPU model on the article's cluster ------------------------------------------------


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


def test_conservation_little_and_determinism_per_core() -> None:
    """sent = delivered + dropped + in flight; per core, L from the hop rows = lambda W.

    ``same`` offers more than client's core can send (382 kpps), so packets also
    wait in the sending thread's queue, where no event is pending.
    """
    flows = [poisson("same", "client", "web", 4.5e5), poisson("cross", "api", "web", 2e5)]
    scn = cpu_scenario(flows)
    res = simulate(scn, duration_s=0.02, warmup_s=0.002, record_hops=True)
    p = res.packets
    end = res.duration_s
    sent = int((p["send_s"] <= end).sum())
    done = (p["done_s"] <= end) & (p["send_s"] <= end)
    delivered = int((done & (p["reason"] == 0)).sum())
    dropped = int((done & (p["reason"] > 0)).sum())
    assert sent == delivered + dropped + res.in_flight_at_end
    assert delivered > 7000
    assert res.in_flight_at_end > 500  # mostly waiting for client's thread
    h = res.hops
    for i, st in enumerate(res.stations):
        if st.kind != "cpu":
            continue
        m = h["station"] == i
        arr, dep = h["arrive_s"][m], h["depart_s"][m]
        w0, t = res.warmup_s, end - res.warmup_s
        # L: time-average number on the core over the window, from the hop rows
        l_rows = float(np.sum(np.clip(np.minimum(dep, end) - np.maximum(arr, w0), 0, None))) / t
        # lambda W from the core's own counters (segments arriving in the window)
        lam_w = st.sojourn_sum_s / t
        assert st.arrivals == int(((arr >= w0) & (arr <= end)).sum())
        # the two differ only by segments straddling the window's edges
        edge = float(np.sum(dep[(arr < w0) & (dep > w0)] - w0) + np.sum(dep[dep > end] - end))
        assert abs(l_rows - lam_w) <= edge / t + 1e-9, st.name
        assert l_rows > 0.1, st.name
    again = simulate(scn, duration_s=0.02, warmup_s=0.002, record_hops=True)
    for col in p:
        assert p[col].tobytes() == again.packets[col].tobytes(), col
    other = simulate(scn, seed=2, duration_s=0.02, warmup_s=0.002)
    assert p["send_s"].tobytes() != other.packets["send_s"].tobytes()


def test_same_node_saturates_at_the_sender_core_not_the_bridge() -> None:
    """client -> web on one node, pods on separate cores (spread): the sender's core
    does sendto + veth + bridge + veth, so the flow saturates at 1 / that work."""
    size = 64
    c, dp = Costs(), cpu_scenario([]).datapath
    work_us = (
        dp.send_per_packet_us
        + dp.send_per_byte_ns * size / 1e3
        + 2 * c.veth.mean_service_us(size)
        + c.bridge.mean_service_us(size)
    )
    cap = 1e6 / work_us
    assert cap < 0.5 / (c.bridge.mean_service_us(size) * 1e-6)  # far below the bridge's
    scn = cpu_scenario([poisson("f", "client", "web", 1.5 * cap, size)])
    res = simulate(scn, duration_s=0.02, warmup_s=0.005)
    p = res.packets
    got = ((p["reason"] == 0) & (p["done_s"] > 0.005) & (p["done_s"] <= 0.02)).sum() / 0.015
    # the core is never idle in the window: the delivered rate is its capacity, to
    # within the packets straddling the window's ends (one work time each)
    assert got == pytest.approx(cap, rel=0.01)
    assert p["reason"].max() == 0  # an overloaded sender slows down: no drop


def overload_cycle(w_us: float, r_us: float, cap: int, slice_us: float) -> tuple[float, float]:
    """Loss fraction and delivered packets/s of a flood into a reader on the sender's core.

    A cycle: the reader, owed no time, waits out the sender's slice L, whose L / W
    sends fill its socket buffer (C datagrams) and lose the rest there; it reads the C
    back to back (R each), which leaves it owed (L - C R) / 2 (half the wait, less half
    the work: :class:`sim.engine.cpu.Reader`); then every send wakes it and it reads at
    once, each read costing R / 2 of that, for A = (L - C R) / R alternations.
    """
    sent = slice_us / w_us
    alternations = (slice_us - cap * r_us) / r_us
    time_us = slice_us + cap * r_us + alternations * (w_us + r_us)
    return (sent - cap) / (sent + alternations), 1e6 * (cap + alternations) / time_us


def test_shared_core_overload_drops_at_the_socket_buffer_not_the_backlog() -> None:
    """A flooding sender and its receiver on one core (:func:`overload_cycle`): they
    alternate datagram by datagram while the reader is owed time, then the reader
    waits out a slice and its socket buffer overflows. Loss and delivered rate as the
    cycle's arithmetic says, over ~19 cycles (ends cost < 1 cycle: 1/19). On
    separate cores the receiver keeps up: no drop anywhere.
    """
    size = 64  # IP bytes
    c, dp = Costs(), cpu_scenario([]).datapath
    work_us = (
        dp.send_per_packet_us
        + dp.send_per_byte_ns * size / 1e3
        + 2 * c.veth.mean_service_us(size)
        + c.bridge.mean_service_us(size)
    )
    recv_us = dp.recv_per_packet_us + dp.recv_per_byte_ns * size / 1e3
    truesize = int(dp.skb_truesize_base_bytes + dp.skb_truesize_per_byte * size)
    cap = dp.rmem_default_bytes // truesize  # datagrams the buffer holds
    slice_us = dp.sched_slice_us
    flood = [poisson("f", "client", "web", 1.2e6 / work_us, size)]
    res = simulate(cpu_scenario(flood, pin={"client": 0, "web": 0}), duration_s=0.35, warmup_s=0.02)
    p = res.packets
    reasons = {res.reasons[i] for i in np.unique(p["reason"]) if i}
    assert reasons == {"socket receive buffer full at web"}
    loss, pps = overload_cycle(work_us, recv_us, cap, slice_us)
    win = (p["done_s"] > 0.02) & (p["done_s"] <= 0.35)  # sendto'd and gone in the window
    got = (win & (p["reason"] == 0)).sum() / 0.33
    assert got == pytest.approx(pps, rel=1 / 19), (got, pps)
    frac = (win & (p["reason"] > 0)).sum() / win.sum()
    assert frac == pytest.approx(loss, rel=1 / 19), (frac, loss)
    assert 0.1 < loss < 0.5 * (1 - cap * work_us / slice_us)  # far below a whole slice's loss
    res = simulate(
        cpu_scenario(flood, pin={"client": 0, "web": 1}), duration_s=0.02, warmup_s=0.005
    )
    assert res.packets["reason"].max() == 0
    # a light flow on the shared core: the receiver waits out runs of sends, not slices
    light = [poisson("f", "client", "web", 0.3e6 / (work_us + recv_us), size)]
    res = simulate(cpu_scenario(light, pin={"client": 0, "web": 0}), duration_s=0.02)
    p = res.packets
    assert p["reason"].max() == 0
    assert (p["done_s"] - p["send_s"])[p["done_s"] > 0].max() < 0.1 * slice_us * 1e-6


def test_backlog_overflows_on_an_overloaded_receive_core() -> None:
    """Cross-node into one receive core beyond its capacity: backlog drops, by reason.

    A costly receive driver (3 us) makes node1's RSS core the bottleneck (196 kpps
    against the sender's 301 kpps); its FIFO holds NAPI segments (ring) and veth
    segments (backlog); with a 4096-slot ring the backlog's 1000 fills first.
    """
    slow_rx = {"costs.eth0_rx.per_packet_us": 3.0}
    scn = cpu_scenario([poisson("f", "api", "web", 4e5)], slow_rx, cpus=4, rx_ring=4096)
    res = simulate(scn, duration_s=0.03, warmup_s=0.002)
    reasons = {res.reasons[i] for i in np.unique(res.packets["reason"]) if i}
    assert len(reasons) == 1 and reasons.pop().startswith("backlog full at node1/cpu")


def test_small_ring_overflows_first_and_socket_buffer_limits_a_slow_reader() -> None:
    slow_rx = {"costs.eth0_rx.per_packet_us": 3.0}
    scn = cpu_scenario([poisson("f", "api", "web", 4e5)], slow_rx, cpus=4)
    res = simulate(scn, duration_s=0.03, warmup_s=0.002)
    reasons = {res.reasons[i] for i in np.unique(res.packets["reason"]) if i}
    assert reasons == {"rx ring full at node1/eth0 rx queue " + next(iter(reasons))[-1]}
    slow = cpu_scenario([poisson("f", "client", "web", 2e5, 1000)], recv_per_packet_us=8.0)
    res = simulate(slow, duration_s=0.02, warmup_s=0.002)
    reasons = {res.reasons[i] for i in np.unique(res.packets["reason"]) if i}
    assert reasons == {"socket receive buffer full at web"}


def test_replica_runs_a_cross_node_packet_on_the_senders_core() -> None:
    scn = cpu_scenario([poisson("f", "api", "web", 1e4)], topology="replica", cpus=4)
    res = simulate(scn, duration_s=0.005, warmup_s=0.001)
    names = res.route_stations[0]
    assert all(n.startswith("replica/cpu") for n in names)
    assert names[0] == "replica/cpu2"  # api: third pod of the scenario, spread
    assert not any(st.kind in ("eth0_tx", "gateway_link") for st in res.stations)


def test_gateway_line_rate_or_cpu() -> None:
    flows = [poisson("f", "api", "web", 1e4)]
    line = simulate(cpu_scenario(flows), duration_s=0.005, warmup_s=0.001)
    cpu = simulate(cpu_scenario(flows, gateway="cpu"), duration_s=0.005, warmup_s=0.001)
    assert "gateway/cpu0" not in line.route_stations[0]
    assert "gateway/cpu0" in cpu.route_stations[0]


def test_pin_errors_name_the_field() -> None:
    with pytest.raises(ScenarioError, match=r"datapath\.pin\.nope"):
        simulate(cpu_scenario([], pin={"nope": 0}))
    with pytest.raises(ScenarioError, match=r"datapath\.pin\.web.*0\.\.1"):
        simulate(cpu_scenario([], pin={"web": 5}))
    with pytest.raises(ScenarioError, match=r"datapath\.cpus"):
        cpu_scenario([], cpus=0)
    with pytest.raises(ScenarioError, match=r"datapath\.realtime\.nope.*client"):
        simulate(cpu_scenario([], realtime={"nope": True}))


def test_station_model_scenarios_keep_their_digest() -> None:
    scn = load_scenario(ARTICLE)
    assert scn.datapath.model == "stations"
    assert cpu_scenario([]).digest() != load_scenario(ARTICLE, {"flows": []}).digest()


# -- real-time threads: preemptive priority -----------------------------------------------

RT_PODS = [
    {"name": "web", "node": "node1"},
    {"name": "client", "node": "node1"},
    {"name": "api", "node": "node2"},
    {"name": "sink", "node": "node1"},
]


def _two_class(rates_pps: tuple[float, float], duration_s: float, realtime: dict):
    """client -> web (class 1) and api -> sink (class 2), both senders on core 0 of the
    replica, the receivers on core 1 with free ``recvfrom`` (no wait there)."""
    flows = [
        poisson("one", "client", "web", rates_pps[0]),
        poisson("two", "api", "sink", rates_pps[1]),
    ]
    over = {
        "pods": RT_PODS,
        "flows": flows,
        "datapath.model": "cpu",
        "datapath.topology": "replica",
        "datapath.cpus": 2,
        "datapath.pin": {"client": 0, "api": 0, "web": 1, "sink": 1},
        "datapath.realtime": realtime,
        "datapath.recv_per_packet_us": 0.0,
        "datapath.recv_per_byte_ns": 0.0,
    }
    res = simulate(load_scenario(ARTICLE, over), duration_s=duration_s, warmup_s=WARM_S)
    p = res.packets
    keep = (p["send_s"] >= WARM_S) & (p["done_s"] <= duration_s) & (p["reason"] == 0)
    lat = p["done_s"] - p["send_s"]
    return [lat[keep & (p["route"] == r)] for r in (0, 1)]


def test_realtime_thread_preempts_normal_work_preemptive_priority_mg1() -> None:
    """Class 1 real-time, class 2 normal, Poisson, deterministic work S_i on one core:
    the M/G/1 preemptive-resume priority means (Kleinrock, Queueing Systems Vol. 2,
    sec. 3.7): T1 = S1 + l1 S1^2 / (2 (1 - r1)) (class 1 sees only itself) and
    T2 = S2 / (1 - r1) + (l1 S1^2 + l2 S2^2) / (2 (1 - r1) (1 - r1 - r2)). The work
    S_i is each class's smallest latency (a packet finding the core empty)."""
    one, two = _two_class((2e3, 2e3), 0.02, {"client": True})
    s1, s2 = float(one.min()), float(two.min())
    r1, r2 = 0.3, 0.4
    l1, l2 = r1 / s1, r2 / s2
    one, two = _two_class((l1, l2), 0.4, {"client": True})
    assert float(one.min()) == pytest.approx(s1) and float(two.min()) == pytest.approx(s2)
    w0 = (l1 * s1**2 + l2 * s2**2) / 2
    t1 = s1 + l1 * s1**2 / (2 * (1 - r1))
    t2 = s2 / (1 - r1) + w0 / ((1 - r1) * (1 - r1 - r2))
    assert_in_ci(one, t1, 0.03, "real-time class sojourn")
    assert_in_ci(two, t2, 0.08, "normal class sojourn")
    # without priority both classes see the FIFO M/G/1 wait: far from T1 and T2
    fifo_wait = w0 / (1 - r1 - r2)
    assert t1 < 0.8 * (s1 + fifo_wait) and t2 > 1.1 * (s2 + fifo_wait)
