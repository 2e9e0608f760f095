"""Summaries of a run, computed after it from the per-packet columns.

Warm-up rule: a packet counts if it was *sent* in the measurement window
``[warmup, duration)``. It is delivered or dropped if that happened by the end of
the run; otherwise it is in flight. Latency is one-way, send to delivery.
Throughput counts bits delivered inside the window, divided by its length.
A flow's ``sent``/``delivered``/``dropped`` count its own packets (requests, bulk
data); its replies and acknowledgements are counted apart under ``replies``, and
their drops also appear in the flow's ``drops_by_reason`` as ``reply: REASON`` (a
reply lost for want of a route back is the flow's loss too). Round-trip times run
from a transaction's first request to its reply (see :mod:`sim.engine.workloads`).
A ``tcp`` flow's ``throughput_gbps`` is its goodput: payload bytes delivered in
order to its receivers in the window (no headers, no duplicates); it also has
``retransmissions`` and ``timeouts`` (in the window) and the sender's smoothed RTT
after each sample taken in the window (``srtt_mean_us``, ``srtt_p50_us``).
Station figures count packets that *arrived* at the station in the window:
utilization = busy time / (servers x window); time-averaged number in system
= total sojourn time / window (the area under the number-in-system curve).
A flow's ``path_sojourn_us`` is its own packets' mean sojourn at each hop of its
``path`` (counted by the same rule, over the flow's forward routes on that
path): where flows share a station, the station's mean mixes them, this does not.
A flow with replies or acknowledgements has the same for their path
(``reply_path``, ``reply_path_packets``, ``reply_path_sojourn_us``).
"""

from __future__ import annotations

import math

import numpy as np

from sim.engine.run import RunResult

#: The latency and RTT percentiles every summary reports (percent).
PERCENTILES = (50, 90, 99, 99.9)
#: The statistics of a latency or RTT sample, in order (``p99.9``: the 99.9th percentile).
LATENCY_KEYS = ("mean", *(f"p{q:g}" for q in PERCENTILES), "max")
SCHEMA_VERSION = 1


def _latency_stats_us(lat_s: np.ndarray) -> dict[str, float]:
    if lat_s.size == 0:
        return dict.fromkeys(LATENCY_KEYS, math.nan)
    us = lat_s * 1e6
    vals = [us.mean(), *np.percentile(us, PERCENTILES), us.max()]
    return {k: float(v) for k, v in zip(LATENCY_KEYS, vals, strict=True)}


def _tcp_metrics(tcp, t0: float, t1: float) -> dict[str, float]:
    """Goodput (Gbit/s), retransmissions, timeouts and SRTT (us) of a tcp flow in [t0, t1)."""

    def n_in(times: list[float]) -> int:
        a = np.asarray(times)
        return int(((a >= t0) & (a < t1)).sum())

    at = np.asarray(tcp.srtt_at_s)
    srtt_us = np.asarray(tcp.srtt_s)[(at >= t0) & (at < t1)] * 1e6
    return {
        "throughput_gbps": tcp.goodput_bytes * 8.0 / (t1 - t0) / 1e9,
        "retransmissions": n_in(tcp.retransmit_s),
        "timeouts": n_in(tcp.timeout_s),
        "srtt_mean_us": float(srtt_us.mean()) if srtt_us.size else math.nan,
        "srtt_p50_us": float(np.percentile(srtt_us, 50)) if srtt_us.size else math.nan,
    }


def _counts(mask_sent, done, reason, end_s, reasons) -> dict:
    finished = mask_sent & (done <= end_s)
    delivered = finished & (reason == 0)
    dropped = finished & (reason > 0)
    by_reason: dict[str, int] = {}
    if dropped.any():
        ids, cnt = np.unique(reason[dropped], return_counts=True)
        by_reason = {reasons[int(i)]: int(c) for i, c in zip(ids, cnt, strict=True)}
    n_sent = int(mask_sent.sum())
    n_del = int(delivered.sum())
    n_drop = int(dropped.sum())
    return {
        "sent": n_sent,
        "delivered": n_del,
        "dropped": n_drop,
        "in_flight": n_sent - n_del - n_drop,
        "drops_by_reason": by_reason,
        "delivered_mask": delivered,
    }


def _packet_owner(res: RunResult) -> tuple[np.ndarray, np.ndarray]:
    """Each packet's flow index, and whether it is a reply or acknowledgement."""
    route = res.packets["route"]
    route_flow = np.asarray(res.route_flow, dtype=np.int64)
    route_reply = np.asarray(res.route_is_reply, dtype=bool)
    if not route.size:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    return route_flow[route], route_reply[route]


def offered_gbps(st) -> float:
    """Mean offered rate of an open-loop flow, Gbit/s of IP bits (NaN otherwise).

    ``rate_pps`` is the rate while sending; an ``onoff`` flow sends a
    :meth:`~sim.spec.workload.Flow.duty_cycle` fraction of the time.
    """
    if math.isnan(st.rate_pps):
        return math.nan
    return st.rate_pps * st.flow.duty_cycle() * st.flow.mean_size_bytes() * 8 / 1e9


def flow_latencies_s(res: RunResult) -> dict[str, np.ndarray]:
    """One-way latencies (seconds) of each flow's own delivered packets sent in the window.

    The packets :func:`summarize` takes its latency statistics from (warm-up rule
    of this module; replies and acknowledgements excluded).
    """
    p = res.packets
    send, done, reason = p["send_s"], p["done_s"], p["reason"]
    pkt_flow, pkt_reply = _packet_owner(res)
    ok = (send >= res.warmup_s) & (send < res.duration_s) & ~pkt_reply
    ok &= (done <= res.duration_s) & (reason == 0)
    return {
        st.flow.name: done[ok & (pkt_flow == fi)] - send[ok & (pkt_flow == fi)]
        for fi, st in enumerate(res.flows)
    }


def path_hops(
    res: RunResult, fi: int, reply: bool = False
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Flow ``fi``'s path and, per hop, its packets and their sojourn sum (s).

    The path is the flow's first forward route's stations (with ``reply``: its
    first reply or acknowledgement route's); the counts add up every such route
    of the flow on that same path (packets arriving at the hop at or after the
    warm-up).
    """
    st = res.flows[fi]
    routes = st.reply_routes if reply else st.routes
    if not routes:
        return [], np.zeros(0, dtype=np.int64), np.zeros(0)
    path = res.route_stations[routes[0]]
    n, soj = np.zeros(len(path), dtype=np.int64), np.zeros(len(path))
    for r in routes:
        if res.route_stations[r] == path and r < len(res.hop_packets):
            n += res.hop_packets[r]
            soj += res.hop_sojourn_s[r]
    return list(path), n, soj


def _path_entry(res: RunResult, fi: int, name: str) -> dict:
    """``name``, ``name_packets``, ``name_sojourn_us`` (us) of flow ``fi``'s path or reply path."""
    path, hop_n, hop_s = path_hops(res, fi, reply=name == "reply_path")
    return {
        name: path,
        f"{name}_packets": hop_n.tolist(),
        f"{name}_sojourn_us": [
            s / n * 1e6 if n else math.nan for s, n in zip(hop_s, hop_n, strict=True)
        ],
    }


def _flow_entry(res: RunResult, fi: int, pkt_flow, pkt_reply) -> dict:
    """One flow's summary (see :func:`summarize`)."""
    p = res.packets
    send, done, reason, size = p["send_s"], p["done_s"], p["reason"], p["size_bytes"]
    t0, t1 = res.warmup_s, res.duration_s
    window = t1 - t0
    in_window = (send >= t0) & (send < t1)
    st = res.flows[fi]
    f = st.flow
    mine = in_window & (pkt_flow == fi) & ~pkt_reply
    c = _counts(mine, done, reason, t1, res.reasons)
    dmask = c.pop("delivered_mask")
    lat = done[dmask] - send[dmask]
    got_in_window = (pkt_flow == fi) & ~pkt_reply & (reason == 0) & (done >= t0) & (done < t1)
    bits = float(size[got_in_window].sum()) * 8.0
    entry = {
        "kind": f.kind,
        "src": f.src,
        "dst": f.dst,
        **_path_entry(res, fi, "path"),
        "offered_pps": None if math.isnan(st.rate_pps) else st.rate_pps,
        **c,
        "latency_us": _latency_stats_us(lat),
        "throughput_gbps": bits / window / 1e9,
    }
    if st.reply_routes:
        entry.update(_path_entry(res, fi, "reply_path"))
        rc = _counts(in_window & (pkt_flow == fi) & pkt_reply, done, reason, t1, res.reasons)
        rc.pop("delivered_mask")
        for why, n in rc["drops_by_reason"].items():
            entry["drops_by_reason"][f"reply: {why}"] = n
        entry["replies"] = {k: rc[k] for k in ("sent", "delivered", "dropped", "in_flight")}
    if f.kind == "request-response":
        rd = np.asarray(st.rtt_done_s)
        rtt = np.asarray(st.rtt_s)
        ok = (rd >= t0) & (rd < t1)
        entry["rtt_us"] = _latency_stats_us(rtt[ok])
        entry["transactions_per_s"] = float(ok.sum()) / window
    if st.tcp is not None:
        entry.update(_tcp_metrics(st.tcp, t0, t1))
    return entry


def _station_entry(s, window: float) -> dict:
    """Summarize one station's counters over a window of ``window`` seconds."""
    n = s.arrivals
    return {
        "kind": s.kind,
        "arrivals": n,
        "drops": s.drops,
        "mean_wait_us": s.wait_sum_s / n * 1e6 if n else math.nan,
        "mean_sojourn_us": s.sojourn_sum_s / n * 1e6 if n else math.nan,
        "utilization": s.busy_sum_s / (s.servers * window),
        "mean_in_system": s.sojourn_sum_s / window,
        "mean_waiting": s.wait_sum_s / window,
        "max_in_system": s.max_in_system,
        "arrival_rate_pps": n / window,
    }


def summarize(res: RunResult) -> dict:
    """Summarize a run as a JSON-ready dict.

    Returns
    -------
    dict
        ``{"schema_version", "scenario", "seed", "window_s", "flows": {...},
        "overall": {...}, "stations": {...}, "warnings": [...]}``. Latencies in
        microseconds, throughput in Gbit/s, utilization as a fraction.
    """
    p = res.packets
    send, done, reason, size = p["send_s"], p["done_s"], p["reason"], p["size_bytes"]
    t0, t1 = res.warmup_s, res.duration_s
    window = t1 - t0
    in_window = (send >= t0) & (send < t1)
    pkt_flow, pkt_reply = _packet_owner(res)
    flows = {
        st.flow.name: _flow_entry(res, fi, pkt_flow, pkt_reply) for fi, st in enumerate(res.flows)
    }
    fwd = in_window & ~pkt_reply
    c = _counts(fwd, done, reason, t1, res.reasons)
    dmask = c.pop("delivered_mask")
    got = ~pkt_reply & (reason == 0) & (done >= t0) & (done < t1)
    overall = {
        **c,
        "latency_us": _latency_stats_us(done[dmask] - send[dmask]),
        "throughput_gbps": float(size[got].sum()) * 8.0 / window / 1e9,
    }
    return {
        "schema_version": SCHEMA_VERSION,
        "scenario": res.scenario.name,
        "scenario_sha256": res.scenario.digest(),
        "seed": res.seed,
        "duration_s": res.duration_s,
        "warmup_s": res.warmup_s,
        "flows": flows,
        "overall": overall,
        "stations": {s.name: _station_entry(s, window) for s in res.stations},
        "warnings": list(res.warnings),
    }
