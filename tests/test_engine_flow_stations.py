"""A flow's own time at each station of its path (``path_sojourn_us``, ``flow_stations``).

Stations' counters mix every flow that crosses them; the engines also keep, per
route and hop, the packets taken after the warm-up and their sojourn sum. Checked
here against the per-hop records (the same run's other account, packet by packet),
against the stations' own counters (the flows' shares add up to them) and against
queueing theory (a real-time flow and a normal one sharing a core see the M/G/1
preemptive-priority means at that core, where the core's own mean is neither).
The SimPy and compiled engines keep them identical
(:func:`test_engine_compiled.assert_identical`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_engine_cpu import RT_PODS, poisson
from test_engine_queueing import WIDEN, batch_ci

from sim.analysis.rows import flow_station_rows
from sim.analysis.summary import path_hops, summarize
from sim.engine import simulate
from sim.spec.load import load_scenario

ROOT = Path(__file__).resolve().parents[1]
NOISY = ROOT / "experiments" / "scenarios" / "noisy-neighbour.toml"
ARTICLE = ROOT / "experiments" / "scenarios" / "article.toml"
WARM_S = 0.005

FLOWS = [
    poisson("probe", "client", "web", 20_000, size=100),
    {"name": "bg", "kind": "constant", "src": "noisy", "dst": "web", "rate_pps": 60_000,
     "size_bytes": 1000},
    poisson("cross", "client", "api", 30_000, size=500),
    {"name": "rr", "kind": "request-response", "src": "client", "dst": "api", "size_bytes": 100},
]  # fmt: skip
CASES = {
    "stations": {},
    "cpu packed, real-time probe": {
        "datapath.model": "cpu",
        "datapath.placement": "packed",
        "datapath.realtime": {"client": True, "web": True},
    },
}


def _run(over: dict, record_hops: bool = True):
    scn = load_scenario(NOISY, {**over, "flows": FLOWS})
    return simulate(scn, duration_s=0.05, warmup_s=WARM_S, record_hops=record_hops)


def _from_hop_rows(res, fi: int, reply: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per hop of flow ``fi``'s path (or its replies'): packets and sojourn sum (s), from
    the per-hop rows. A packet's k-th row is its k-th hop (a core may be visited at
    several hops)."""
    path, _, _ = path_hops(res, fi, reply)
    st = res.flows[fi]
    mine = st.reply_routes if reply else st.routes
    routes = [r for r in mine if res.route_stations[r] == tuple(path)]
    n, soj = np.zeros(len(path), dtype=np.int64), np.zeros(len(path))
    h = res.hops
    mine = np.isin(res.packets["route"][h["packet"]], routes)
    order = np.argsort(h["packet"], kind="stable")
    pkt = h["packet"][order]
    first = np.r_[0, np.flatnonzero(np.diff(pkt)) + 1]
    hop = np.arange(pkt.size) - np.repeat(first, np.diff(np.r_[first, pkt.size]))
    keep = mine[order] & (h["arrive_s"][order] >= res.warmup_s)
    stay = (h["depart_s"] - h["arrive_s"])[order]
    np.add.at(n, hop[keep], 1)
    np.add.at(soj, hop[keep], stay[keep])
    return n, soj


@pytest.mark.parametrize("case", list(CASES))
def test_flow_means_are_the_per_hop_records(case: str) -> None:
    """Each flow's counters per hop equal its packets' per-hop rows (arrived after warm-up).

    One exception: a normal segment on a core with real-time work is counted when
    it arrives (as the station's own counters) but its row is written when it
    ends, so a segment still running at the end of the run has no row yet: at
    most one per hop, and only where real-time work preempts."""
    res = _run(CASES[case])
    assert res.engine == "simpy"
    preempting = bool(CASES[case].get("datapath.realtime"))
    ways = [(fi, False) for fi in range(len(res.flows))]
    ways += [(fi, True) for fi, st in enumerate(res.flows) if st.reply_routes]
    assert len(ways) == len(FLOWS) + 1  # rr's replies
    for fi, reply in ways:
        st = res.flows[fi]
        path, n, soj = path_hops(res, fi, reply)
        want_n, want_soj = _from_hop_rows(res, fi, reply)
        assert path and n.sum() > 100, st.flow.name
        late = n - want_n
        assert late.min() >= 0 and late.max() <= int(preempting), (st.flow.name, n, want_n)
        same = late == 0
        np.testing.assert_allclose(
            soj[same], want_soj[same], rtol=1e-9, atol=0.0, err_msg=st.flow.name
        )


@pytest.mark.parametrize("case", list(CASES))
def test_flows_shares_add_up_to_each_station(case: str) -> None:
    """Packets and sojourn of every route's hops at a station are the station's counters."""
    res = _run(CASES[case], record_hops=False)
    names = [s.name for s in res.stations]
    n, soj = dict.fromkeys(names, 0), dict.fromkeys(names, 0.0)
    for r, stations in enumerate(res.route_stations):
        for h, name in enumerate(stations):
            n[name] += int(res.hop_packets[r][h])
            soj[name] += float(res.hop_sojourn_s[r][h])
    for s in res.stations:
        assert n[s.name] == s.arrivals, s.name
        assert soj[s.name] == pytest.approx(s.sojourn_sum_s, rel=1e-9, abs=1e-15), s.name
    rows = flow_station_rows(res, summarize(res))
    assert {r["flow"] for r in rows} == {f["name"] for f in FLOWS}
    assert {r["flow"] for r in rows if r["direction"] == "reply"} == {"rr"}
    kinds = {s.name: s.kind for s in res.stations}
    assert all(r["station_kind"] == kinds[r["station"]] for r in rows)


def test_real_time_flow_on_a_shared_core_waits_only_for_its_own_thread() -> None:
    """Class 1 (real time) and class 2 (normal) share core 0 of the replica, Poisson,
    deterministic work S_i (Kleinrock, Queueing Systems Vol. 2, sec. 3.7, M/G/1
    preemptive-resume priority). Class 1's segments preempt class 2's, and its own
    packets queue in its sending thread, so its own time at the core is exactly
    S1 and its wait, the rest of its latency, is the M/D/1 wait of its class
    alone: l1 S1^2 / (2 (1 - r1)). Class 2's own time at the core is at least its
    completion time under preemption, S2 / (1 - r1). The core's mean segment
    sojourn mixes both and is neither class's time."""
    over = {
        "pods": RT_PODS,
        "datapath.model": "cpu",
        "datapath.topology": "replica",
        "datapath.cpus": 2,
        "datapath.pin": {"client": 0, "api": 0, "web": 1, "sink": 1},
        "datapath.realtime": {"client": True},
        "datapath.recv_per_packet_us": 0.0,
        "datapath.recv_per_byte_ns": 0.0,
    }
    probe = [poisson("one", "client", "web", 2e3), poisson("two", "api", "sink", 2e3)]
    res = simulate(load_scenario(ARTICLE, {**over, "flows": probe}), duration_s=0.02)
    s1, s2 = (float(lat.min()) for lat in _latencies(res))
    r1, r2 = 0.3, 0.4
    l1, l2 = r1 / s1, r2 / s2
    flows = [poisson("one", "client", "web", l1), poisson("two", "api", "sink", l2)]
    res = simulate(load_scenario(ARTICLE, {**over, "flows": flows}), duration_s=0.4)
    sm = summarize(res)
    own_s = [1e-6 * sum(sm["flows"][n]["path_sojourn_us"]) for n in ("one", "two")]
    assert own_s[0] == pytest.approx(s1, rel=1e-9)
    assert own_s[1] >= s2 / (1 - r1)
    one = _latencies(res)[0]
    _, half = batch_ci(one)
    wait1 = l1 * s1**2 / (2 * (1 - r1))
    assert abs(float(one.mean()) - own_s[0] - wait1) <= WIDEN * half, (one.mean(), wait1, half)
    assert half <= 0.2 * wait1  # the interval is narrow enough to tell the wait
    core = next(s for s in res.stations if s.name == "replica/cpu0")
    mixed_s = core.sojourn_sum_s / core.arrivals
    assert mixed_s > 1.2 * s1 and mixed_s < 0.9 * own_s[1]


def _latencies(res) -> list[np.ndarray]:
    p = res.packets
    end = res.duration_s
    keep = (p["send_s"] >= res.warmup_s) & (p["done_s"] <= end) & (p["reason"] == 0)
    lat = p["done_s"] - p["send_s"]
    return [lat[keep & (p["route"] == r)] for r in (0, 1)]
