"""A run as tidy rows: per flow, per station, per flow and station of its path.

The batch's tables are made of these.

Flow rows hold the statistics :func:`sim.analysis.summary.summarize` computes
(same warm-up rule, same percentiles), flattened to scalar columns with units in
their names; a metric that does not apply to a flow (round trips of a one-way
flow, the offered rate of a closed loop) is NaN. Drops are counted by reason
under ``drops.<reason>`` (the reason text of the engine). Station rows hold the
engine's own station record (its kind) and the per-station summary; flow-station
rows a flow's own mean time at each hop of its path.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sim.analysis.summary import PERCENTILES, flow_latencies_s, offered_gbps
from sim.engine.run import RunResult

#: Latency statistics of every flow row, in column order (``latency_<key>_us``).
LATENCY_KEYS = ("mean", *(f"p{p:g}" for p in PERCENTILES), "max")
#: Round-trip statistics of request/response flows (``rtt_<key>_us``).
RTT_KEYS = ("mean", "p50", "p99")
#: Metric columns of a flow row, in order (after ``flow, role, kind``).
FLOW_METRICS = (
    "sent",
    "delivered",
    "dropped",
    "in_flight",
    "drop_rate",
    "throughput_gbps",
    "offered_gbps",
    *(f"latency_{k}_us" for k in LATENCY_KEYS),
    *(f"rtt_{k}_us" for k in RTT_KEYS),
    "transactions_per_s",
    "retransmissions",
    "timeouts",
    "srtt_mean_us",
)
COUNT_METRICS = ("sent", "delivered", "dropped", "in_flight")
DROPS_PREFIX = "drops."
#: Latency quantiles kept per flow (percent), for CDF plots without packet files.
CDF_PERCENTS = tuple(float(p) for p in range(0, 101)) + (99.9,)
CDF_PREFIX = "cdf."
#: Columns of a flow-station row, in order (one row per hop of a flow's path).
FLOW_STATION_COLUMNS = (
    "flow", "direction", "hop", "station", "station_kind", "packets", "sojourn_mean_us",
)  # fmt: skip
#: Columns of a station row, in order (after ``station``).
STATION_COLUMNS = (
    "station_kind",
    "node",
    "utilization",
    "wait_mean_us",
    "sojourn_mean_us",
    "queue_mean_pkts",
    "queue_max_pkts",
    "drops",
)


def quantile_name(pct: float) -> str:
    """Column of the ``pct`` percent latency quantile (``cdf.q099.9``)."""
    return f"{CDF_PREFIX}q{pct:05.1f}"


def flow_rows(res: RunResult, sm: dict, measured: tuple[str, ...]) -> list[dict[str, Any]]:
    """One row per flow of the run, in the scenario's flow order.

    Parameters
    ----------
    res : RunResult
        The run.
    sm : dict
        ``summarize(res)``.
    measured : tuple of str
        Flows whose role is ``measured`` (the others are ``background``).

    Returns
    -------
    list of dict
        ``flow, role, kind``, the metrics of :data:`FLOW_METRICS`, ``drops.<reason>``
        for each reason the flow had, ``path``, ``warnings``, and the latency
        quantiles ``cdf.q000.0 ... cdf.q099.9`` (microseconds).
    """
    lat_s = flow_latencies_s(res)
    warnings = " | ".join(sm["warnings"])
    return [
        _flow_row(st, sm["flows"][st.flow.name], lat_s[st.flow.name], measured, warnings)
        for st in res.flows
    ]


def _flow_row(st, f: dict, lat_s: np.ndarray, measured: tuple[str, ...], warnings: str) -> dict:
    name = st.flow.name
    row: dict[str, Any] = {
        "flow": name,
        "role": "measured" if name in measured else "background",
        "kind": f["kind"],
    }
    row.update({k: f[k] for k in COUNT_METRICS})
    row["drop_rate"] = f["dropped"] / f["sent"] if f["sent"] else math.nan
    row["throughput_gbps"] = f["throughput_gbps"]
    row["offered_gbps"] = offered_gbps(st)
    row.update({f"latency_{k}_us": f["latency_us"][k] for k in LATENCY_KEYS})
    rtt = f.get("rtt_us", {})
    row.update({f"rtt_{k}_us": rtt.get(k, math.nan) for k in RTT_KEYS})
    row["transactions_per_s"] = f.get("transactions_per_s", math.nan)
    resends = f.get("retransmissions", getattr(st, "retransmissions", None))
    row["retransmissions"] = math.nan if resends is None else resends
    row["timeouts"] = f.get("timeouts", math.nan)
    row["srtt_mean_us"] = f.get("srtt_mean_us", math.nan)
    for reason, n in sorted(f["drops_by_reason"].items()):
        row[DROPS_PREFIX + reason] = n
    row["path"] = " > ".join(f["path"])
    row["warnings"] = warnings
    us = lat_s * 1e6
    cdf = np.percentile(us, CDF_PERCENTS) if us.size else [math.nan] * len(CDF_PERCENTS)
    row.update({quantile_name(p): float(v) for p, v in zip(CDF_PERCENTS, cdf, strict=True)})
    return row


def station_rows(res: RunResult, sm: dict) -> list[dict[str, Any]]:
    """One row per station of the run, in the engine's station order.

    ``station_kind`` is the kind the engine gave the station (``veth``,
    ``bridge``, ``forward``, ``eth0_tx``, ``eth0_rx``, ``gateway``,
    ``gateway_link``, ``external_link``, ``loopback``, ``cpu`` ...). ``node`` is
    the machine that owns it: the part of the name before ``/`` (a node,
    ``gateway``, an external host, ``replica``), a pod's loopback mapped to the
    pod's node. ``queue_mean_pkts`` is the time-averaged number in the station
    (waiting and in service), ``queue_max_pkts`` its maximum; times in
    microseconds, averaged over the packets that arrived in the window.
    """
    pod_node = {p.name: p.node for p in res.scenario.pods}
    rows = []
    for s in res.stations:
        st = sm["stations"][s.name]
        owner = s.name.split("/", 1)[0]
        rows.append(
            {
                "station": s.name,
                "station_kind": s.kind,
                "node": pod_node.get(owner, owner) if s.kind == "loopback" else owner,
                "utilization": st["utilization"],
                "wait_mean_us": st["mean_wait_us"],
                "sojourn_mean_us": st["mean_sojourn_us"],
                "queue_mean_pkts": st["mean_in_system"],
                "queue_max_pkts": st["max_in_system"],
                "drops": st["drops"],
            }
        )
    return rows


def flow_station_rows(res: RunResult, sm: dict) -> list[dict[str, Any]]:
    """One row per flow, direction and hop of its path: the flow's own time at each station.

    ``direction`` is ``forward`` (the flow's packets, along ``path``) or ``reply``
    (its replies or acknowledgements, along ``reply_path``); ``hop`` counts from 0
    along that path; ``packets`` are the flow's packets the station took at that
    hop after the warm-up and ``sojourn_mean_us`` their mean time there (queueing
    and service, NaN for none). A station's own row (:func:`station_rows`)
    averages over every flow that crosses it.
    """
    kinds = {s.name: s.kind for s in res.stations}
    rows = []
    for st in res.flows:
        f = sm["flows"][st.flow.name]
        for direction, key in (("forward", "path"), ("reply", "reply_path")):
            for hop, station in enumerate(f.get(key, ())):
                rows.append(
                    {
                        "flow": st.flow.name,
                        "direction": direction,
                        "hop": hop,
                        "station": station,
                        "station_kind": kinds[station],
                        "packets": f[f"{key}_packets"][hop],
                        "sojourn_mean_us": f[f"{key}_sojourn_us"][hop],
                    }
                )
    return rows
