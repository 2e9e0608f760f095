"""Statistics across replications: means and Student-t confidence intervals.

Replications of one configuration are independent runs (their seeds are spawned
children of one ``numpy.random.SeedSequence``), so the mean of a metric over
``n`` replications has the Student-t interval ``mean +- t(0.975, n-1) s / sqrt(n)``
(any statistics textbook, e.g. Law, *Simulation Modeling and Analysis*, 5th ed.,
section 9.4.1). NaN values (a metric that is undefined in a run) are left out
and counted in ``n``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy import stats

#: Confidence level of every interval podnetsim reports.
CI_LEVEL = 0.95


def ci_halfwidth(values: np.ndarray, level: float = CI_LEVEL) -> float:
    """Half-width of the Student-t confidence interval of the mean.

    Parameters
    ----------
    values : ndarray
        One value per replication; NaNs are ignored.
    level : float
        Confidence level.

    Returns
    -------
    float
        The half-width, in the unit of ``values``; NaN with fewer than two values.
    """
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    n = v.size
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))


def mean_ci(values: np.ndarray) -> tuple[float, float, int]:
    """Mean, 95 % half-width and count of the non-NaN ``values``."""
    v = np.asarray(values, dtype=float)
    ok = v[~np.isnan(v)]
    mean = float(ok.mean()) if ok.size else math.nan
    return mean, ci_halfwidth(v), int(ok.size)


def numeric_columns(df: pd.DataFrame, skip: Sequence[str]) -> list[str]:
    """Numeric columns of ``df`` not in ``skip`` (the metrics to summarize)."""
    skipped = set(skip)
    return [c for c in df.columns if c not in skipped and pd.api.types.is_numeric_dtype(df[c])]


def summarize_groups(
    df: pd.DataFrame, keys: Sequence[str], carry: Sequence[str], metrics: Sequence[str]
) -> pd.DataFrame:
    """One row per group of ``keys``: ``carry`` columns, ``n``, then each metric's statistics.

    Parameters
    ----------
    df : DataFrame
        One row per replication of each group.
    keys : sequence of str
        Columns that define a group (e.g. ``config, flow``); groups keep the order
        in which they first appear in ``df``.
    carry : sequence of str
        Columns copied from the group's first row (parameters, role, kind).
    metrics : sequence of str
        Numeric columns; each gives ``M.mean``, ``M.ci95`` (half-width of the
        95 % Student-t interval) and ``M.n`` (non-NaN values).

    Returns
    -------
    DataFrame
        Columns ``*carry, n, M.mean, M.ci95, M.n ...``.
    """
    rows = []
    for _, sub in df.groupby(list(keys), sort=False, dropna=False):
        first = sub.iloc[0]
        row = {c: first[c] for c in carry}
        row["n"] = len(sub)
        for m in metrics:
            mean, ci, n = mean_ci(sub[m].to_numpy(dtype=float))
            row[f"{m}.mean"], row[f"{m}.ci95"], row[f"{m}.n"] = mean, ci, n
        rows.append(row)
    return pd.DataFrame(rows)
