"""Latency CDFs at chosen values of x, from ``latency_quantiles.parquet``.

Each run stores its measured flows' one-way latency quantiles (0, 1, ..., 100
and 99.9 percent, us). A configuration's CDF is the quantile average over its
replications (Vincentization: the mean of each quantile, which is again a
quantile function, unlike a mean of CDF values at fixed latencies; Ratcliff,
Psychological Bulletin 86(3), 1979). Drawn at ``[plots] cdf_at`` (default: the
lowest and the highest swept x), one line per measured flow and value of the
other swept parameters, a line style per x.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from sim.plots.axes import param_label  # noqa: E402
from sim.plots.draw import LEGEND_OUTSIDE, plain_log  # noqa: E402
from sim.plots.results import Results, damaged  # noqa: E402
from sim.plots.views import default_x  # noqa: E402

#: File name (no extension) of the CDF figure.
CDF_STEM = "latency-cdf"
QUANTILES_FILE = "latency_quantiles.parquet"
_STYLES = ("-", "--", ":", "-.")


def cdf_at(res: Results, x: str) -> list:
    """Return the x values to draw CDFs at: ``[plots] cdf_at`` or the sweep's ends."""
    values = list(res.manifest["swept"][x])
    chosen = list(res.plots.get("cdf_at") or [])
    if chosen:
        return [v for v in values if any(str(v) == str(c) or v == c for c in chosen)]
    return [values[0], values[-1]] if len(values) > 1 else values


def read_quantiles(res: Results) -> pd.DataFrame | None:
    """Read the measured flows' quantile rows (None when the batch wrote none).

    Raises
    ------
    UserError
        The file exists but cannot be read (one line naming it).
    """
    path = res.root / QUANTILES_FILE
    if not path.is_file():
        return None
    try:
        q = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise damaged(path, f"cannot be read ({str(exc).splitlines()[0]})") from None
    if "role" in q.columns:
        q = q[q["role"] == "measured"]
    return q


def cdf_figure(res: Results) -> plt.Figure | None:
    """Draw the latency CDFs of ``res`` (None when there is nothing to draw)."""
    q = read_quantiles(res)
    x = default_x(res)
    if q is None or q.empty or x not in q.columns:
        return None
    cols = sorted((c for c in q.columns if c.startswith("cdf.q")), key=lambda c: float(c[5:]))
    pct = np.array([float(c[5:]) for c in cols])
    others = [p for p in res.params if p != x and p in q.columns]
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    groups: list = []
    drawn = 0
    for i, at in enumerate(cdf_at(res, x)):
        rows = q[q[x].astype(str) == str(at)]
        for key, g in rows.groupby(["flow", *others], sort=False):
            key = key if isinstance(key, tuple) else (key,)
            mean_us = g[cols].mean(axis=0).to_numpy()
            if not np.isfinite(mean_us).any():
                continue
            if key not in groups:
                groups.append(key)
            label = " ".join(str(k) for k in key) + f", {x.split('.')[-1]} = {at}"
            color = f"C{groups.index(key) % 10}"
            ax.plot(mean_us, pct / 100, color=color, ls=_STYLES[i % len(_STYLES)], label=label)
            drawn += 1
    if not drawn:
        plt.close(fig)
        return None
    if res.plots.get("log_latency", True):
        ax.set_xscale("log")
        plain_log(ax.xaxis)
    ax.set_xlabel("one-way latency (us)")
    ax.set_ylabel("fraction of packets delivered within")
    ax.set_ylim(0, 1.01)
    ax.grid(True, alpha=0.3)
    unit = res.manifest.get("units", {}).get(x)
    ax.set_title(
        f"{res.manifest['experiment']}: latency CDF at {param_label(x, unit)} in "
        f"{cdf_at(res, x)}\nquantiles averaged over replications",
        fontsize=9,
    )
    ax.legend(fontsize=7, **LEGEND_OUTSIDE)
    fig.tight_layout()
    return fig
