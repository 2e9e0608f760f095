"""Execute one run spec: build the scenario, simulate, reduce to one flat row."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from sim.analysis.summary import summarize
from sim.engine.run import simulate
from sim.spec.load import scenario_from_dict

from .expand import RunSpec

#: Latency quantiles stored per run (percent), for CDF plots without packet files.
CDF_PERCENTS = tuple(float(p) for p in range(0, 101)) + (99.9,)

LATENCY_KEYS = ("mean", "p50", "p90", "p99", "p99.9", "max")


def _q_name(p: float) -> str:
    return f"cdf.q{p:05.1f}"


def execute(spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` and return its row: parameters, seed and every metric.

    Metrics cover the measured flows' packets sent in the window (warm-up
    removed): counts, drop rate, one-way latency (us), delivered and offered
    throughput (Gbit/s), round trips (request-response), latency quantiles, and
    per-station mean sojourn, wait and utilization on the measured flows' paths.
    """
    scn = scenario_from_dict(spec.scenario_raw, spec.file, spec.overrides, Path(spec.base_dir))
    res = simulate(scn, seed=spec.seed, file=spec.file, engine=spec.engine)
    sm = summarize(res)
    row: dict[str, Any] = {
        "run_id": spec.run_id,
        "config": spec.config_index,
        "replication": spec.replication,
        "seed": spec.seed,
    }
    row.update(spec.params)
    flows = [sm["flows"][n] for n in spec.measured_flows]
    sent = sum(f["sent"] for f in flows)
    delivered = sum(f["delivered"] for f in flows)
    dropped = sum(f["dropped"] for f in flows)
    row["sent"] = sent
    row["delivered"] = delivered
    row["dropped"] = dropped
    row["in_flight"] = sum(f["in_flight"] for f in flows)
    row["drop_rate"] = dropped / sent if sent else math.nan
    row["throughput_gbps"] = sum(f["throughput_gbps"] for f in flows)
    window = res.duration_s - res.warmup_s
    offered = 0.0
    for st in res.flows:
        if st.flow.name in spec.measured_flows and not math.isnan(st.rate_pps):
            rate = st.rate_pps
            if st.flow.kind == "onoff":
                f = st.flow
                rate *= f.on_mean_us / (f.on_mean_us + f.off_mean_us)
            offered += rate * st.flow.mean_size_bytes() * 8 / 1e9
    row["offered_gbps"] = offered if offered else math.nan
    # latencies of measured, delivered packets sent in the window
    p = res.packets
    names = [st.flow.name for st in res.flows]
    measured_idx = [i for i, n in enumerate(names) if n in spec.measured_flows]
    route_flow = np.asarray(res.route_flow, dtype=np.int64)
    route_reply = np.asarray(res.route_is_reply, dtype=bool)
    if p["route"].size:
        pf = route_flow[p["route"]]
        rp = route_reply[p["route"]]
    else:
        pf = np.zeros(0, dtype=np.int64)
        rp = np.zeros(0, dtype=bool)
    sel = (
        np.isin(pf, measured_idx)
        & ~rp
        & (p["send_s"] >= res.warmup_s)
        & (p["send_s"] < res.duration_s)
        & (p["done_s"] <= res.duration_s)
        & (p["reason"] == 0)
    )
    lat_us = (p["done_s"][sel] - p["send_s"][sel]) * 1e6
    if lat_us.size:
        q = np.percentile(lat_us, [50, 90, 99, 99.9])
        vals = [lat_us.mean(), *q, lat_us.max()]
        cdf = np.percentile(lat_us, CDF_PERCENTS)
    else:
        vals = [math.nan] * 6
        cdf = [math.nan] * len(CDF_PERCENTS)
    for k, v in zip(LATENCY_KEYS, vals, strict=True):
        row[f"latency_{k}_us"] = float(v)
    rtts = [
        np.asarray(st.rtt_s)[
            (np.asarray(st.rtt_done_s) >= res.warmup_s)
            & (np.asarray(st.rtt_done_s) < res.duration_s)
        ]
        for st in res.flows
        if st.flow.name in spec.measured_flows and st.flow.kind == "request-response"
    ]
    rtt_us = np.concatenate(rtts) * 1e6 if rtts else np.zeros(0)
    row["rtt_mean_us"] = float(rtt_us.mean()) if rtt_us.size else math.nan
    row["rtt_p50_us"] = float(np.percentile(rtt_us, 50)) if rtt_us.size else math.nan
    row["rtt_p99_us"] = float(np.percentile(rtt_us, 99)) if rtt_us.size else math.nan
    row["transactions_per_s"] = rtt_us.size / window if rtts else math.nan
    crossed: list[str] = []
    for n in spec.measured_flows:
        for s in sm["flows"][n]["path"]:
            if s not in crossed:
                crossed.append(s)
    for s in crossed:
        st = sm["stations"][s]
        row[f"station.{s}.sojourn_us"] = st["mean_sojourn_us"]
        row[f"station.{s}.wait_us"] = st["mean_wait_us"]
        row[f"station.{s}.utilization"] = st["utilization"]
    # the path of the first measured flow (the others are like it: same placement)
    first = spec.measured_flows[0] if spec.measured_flows else None
    row["path"] = " > ".join(sm["flows"][first]["path"]) if first else ""
    for pct, v in zip(CDF_PERCENTS, cdf, strict=True):
        row[_q_name(pct)] = float(v)
    row["warnings"] = " | ".join(sm["warnings"])
    return row
