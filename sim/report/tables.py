"""The report's tables: which columns, and the one rule that formats every number.

Every number in the report is ``fmt(value)`` of a value read from
``summary.csv``, ``stations_summary.csv`` or ``flow_stations_summary.csv``; tests
apply the same rule to the CSV files and compare cell by cell.
"""

from __future__ import annotations

import math

import pandas as pd

#: Metrics the summary table shows (those with a value for some flow).
SUMMARY_METRICS = (
    "throughput_gbps", "offered_gbps", "drop_rate", "latency_mean_us", "latency_p50_us",
    "latency_p99_us", "rtt_mean_us", "rtt_p99_us", "transactions_per_s", "retransmissions",
)  # fmt: skip
#: Metrics the per-station table shows.
STATION_METRICS = (
    "utilization", "wait_mean_us", "sojourn_mean_us", "queue_mean_pkts", "queue_max_pkts",
    "drops",
)  # fmt: skip
#: Metrics the per-flow table shows (a flow's own packets and time at each hop).
FLOW_STATION_METRICS = ("sojourn_mean_us", "packets")
#: Significant digits of every number in the report.
DIGITS = 4


def fmt(value) -> str:
    """Format a number as the report shows it: 4 significant digits, ``–`` for none."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(v):
        return "–"
    return f"{v:.{DIGITS}g}"


def interval(mean, ci95) -> str:
    """``mean ± ci95`` as the report shows it (no ``±`` part without an interval)."""
    if fmt(ci95) == "–" or fmt(mean) == "–":
        return fmt(mean)
    return f"{fmt(mean)} ± {fmt(ci95)}"


def table(df: pd.DataFrame, keys: list[str], metrics: tuple[str, ...]) -> dict:
    """Header and rows of a table: key columns, then ``mean ± ci95`` per metric.

    Metrics with no value in any row are left out. Each cell is
    ``{"text", "metric"}`` so a test can find the number it came from.
    """
    shown = [m for m in metrics if f"{m}.mean" in df and df[f"{m}.mean"].notna().any()]
    rows = []
    for _, r in df.iterrows():
        cells = [{"text": fmt(r[k]) if k != "config" else str(r[k]), "metric": ""} for k in keys]
        cells += [{"text": interval(r[f"{m}.mean"], r[f"{m}.ci95"]), "metric": m} for m in shown]
        rows.append({"config": str(r["config"]), "cells": cells})
    return {"header": [*keys, *shown], "rows": rows}
