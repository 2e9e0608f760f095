"""Latency distributions at chosen x values (``[plots] cdf_at``), from stored quantiles.

The batch stores each run's one-way latency quantiles (0, 1 ... 100 % and
99.9 %) in ``latency_quantiles.parquet``. A curve is one configuration and
measured flow at one ``cdf_at`` value of x: each quantile is averaged over the
replications (quantile averaging, "Vincentizing": Ratcliff 1979, Psychological
Bulletin 86(3)), so the curve is the distribution of a typical replication.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.plots.results import Results, as_numbers, damaged
from sim.plots.views import default_x

#: Stored quantile columns: ``cdf.q050.0`` is the 50 % quantile.
PREFIX = "cdf.q"
#: File of the stored quantiles, in a results directory.
FILE = "latency_quantiles.parquet"


@dataclass(frozen=True)
class Curve:
    """One latency CDF: ``fraction`` of packets at or below ``latency_us``.

    ``group`` (the other swept parameters' values and the flow) picks its colour,
    ``at`` (the x value) its line style.
    """

    label: str
    group: tuple
    at: float
    latency_us: np.ndarray
    fraction: np.ndarray


def curves(res: Results) -> list[Curve]:
    """Return a CDF per configuration and measured flow at every ``cdf_at`` value of x.

    Empty when the experiment sets no ``cdf_at``, the directory has no stored
    quantiles, or no measured flow has a one-way latency there.

    Raises
    ------
    UserError
        The quantile file is damaged (one line naming it).
    """
    at_values = [float(v) for v in res.plots.get("cdf_at") or []]
    path = res.root / FILE
    if not at_values or not path.is_file():
        return []
    try:
        q = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise damaged(path, f"cannot be read ({exc})") from None
    x = default_x(res)
    named = [c for c in q.columns if re.fullmatch(rf"{re.escape(PREFIX)}\d+(\.\d*)?", c)]
    cols = sorted(named, key=_fraction)
    missing = [c for c in (x, "flow") if c not in q.columns]
    if missing or not cols:
        raise damaged(path, f"has no column {missing[0]!r}" if missing else f"no {PREFIX}* columns")
    as_numbers(q, path, cols)
    if "role" in q.columns and (q["role"] == "measured").any():
        q = q[q["role"] == "measured"]
    others = [p for p in res.params if p != x and p in q.columns]
    out = []
    for at in at_values:
        rows = q[np.isclose(pd.to_numeric(q[x], errors="coerce"), at)]
        for key, g in rows.groupby([*others, "flow"], sort=False):
            lat = g[cols].mean(axis=0).to_numpy(dtype=float)
            if np.all(np.isnan(lat)):
                continue
            out.append(Curve(_label(others, key, x, at), key, at, lat,
                             np.array([_fraction(c) for c in cols])))  # fmt: skip
    return out


def _fraction(col: str) -> float:
    return float(col[len(PREFIX) :]) / 100.0


def _label(others: list[str], key: tuple, x: str, at: float) -> str:
    parts = [f"{v}" if p == "placement" else f"{p.rsplit('.', 1)[-1]}={v}"
             for p, v in zip(others, key[:-1], strict=True)]  # fmt: skip
    parts.append(str(key[-1]))
    return ", ".join(parts) + f" @ {x.rsplit('.', 1)[-1]}={at:g}"
