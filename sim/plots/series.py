"""Congestion window and goodput over time (``[plots] kinds`` entry ``tcp-series``).

Drawn from ``tcp_series.parquet``, which the batch writes when a tcp flow has
``record_cwnd = true`` (:mod:`sim.analysis.tcp_series`). A line is one
configuration and measured flow: at each interval's end, the flow's window and
goodput summed over its connections, then averaged over the replications (every
replication of a configuration has the same intervals).
"""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from sim.plots.results import Results, damaged

#: File of the stored series, in a results directory.
FILE = "tcp_series.parquet"
#: Columns the figure reads (besides the parameters).
COLUMNS = ("flow", "replication", "time_s", "cwnd_bytes", "goodput_gbps")
#: Most lines drawn in one figure (more would be unreadable).
MAX_LINES = 12


@dataclass(frozen=True)
class SeriesLine:
    """One configuration and flow: time (s), window (bytes) and goodput (Gbit/s)."""

    label: str
    time_s: np.ndarray
    cwnd_bytes: np.ndarray
    goodput_gbps: np.ndarray


def series_lines(res: Results) -> list[SeriesLine]:
    """Return a line per configuration and measured flow of the stored series.

    Empty when the directory has no series. At most :data:`MAX_LINES` (the first
    ones in configuration order).

    Raises
    ------
    UserError
        The series file is damaged (one line naming it).
    """
    path = res.root / FILE
    if not path.is_file():
        return []
    try:
        df = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise damaged(path, f"cannot be read ({exc})") from None
    missing = [c for c in ("config", *COLUMNS) if c not in df.columns]
    if missing:
        raise damaged(path, f"has no column {missing[0]!r}")
    measured = set(res.summary.loc[res.summary["role"] == "measured", "flow"])
    if measured:
        df = df[df["flow"].isin(measured)]
    params = [p for p in res.params if p in df.columns]
    out = []
    for (config, flow), g in df.groupby(["config", "flow"], sort=True):
        per_run = g.groupby(["replication", "time_s"])[["cwnd_bytes", "goodput_gbps"]].sum()
        mean = per_run.groupby(level="time_s").mean()
        first = g.iloc[0]
        what = [f"{first[p]}" if p == "placement" else f"{p.rsplit('.', 1)[-1]}={first[p]}"
                for p in params]  # fmt: skip
        label = ", ".join([*what, str(flow)]) if what else f"config {config}, {flow}"
        out.append(SeriesLine(label, mean.index.to_numpy(dtype=float),
                              mean["cwnd_bytes"].to_numpy(dtype=float),
                              mean["goodput_gbps"].to_numpy(dtype=float)))  # fmt: skip
    return out[:MAX_LINES]


def series_figure(lines: list[SeriesLine], title: str) -> plt.Figure:
    """Draw the window (kB, top) and goodput (Gbit/s, bottom) against time (ms)."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9.0, 6.5), sharex=True)
    for ln in lines:
        t_ms = ln.time_s * 1e3
        top.plot(t_ms, ln.cwnd_bytes / 1e3, label=ln.label)
        bottom.step(t_ms, ln.goodput_gbps, where="pre", label=ln.label)
    top.set_ylabel("congestion window (kB, sum of connections)")
    bottom.set_ylabel("goodput per interval (Gbit/s)")
    bottom.set_xlabel("simulated time (ms)")
    for ax in (top, bottom):
        ax.grid(True, alpha=0.3)
        ax.set_ylim(bottom=0)
    top.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0, fontsize=8)
    top.set_title(f"{title}\nwindow at each interval's end; goodput over the interval; "
                  "mean of replications", fontsize=10)  # fmt: skip
    fig.tight_layout()
    return fig
