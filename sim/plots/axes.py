"""Axis decisions, kept apart from drawing so they can be tested as plain functions.

Which sweep gets a log axis, what an axis and a file are called, and how a
confidence band is drawn on a log axis (see :func:`band`).
"""

from __future__ import annotations

import re

import numpy as np

#: Unit of a metric column from its name's suffix (longest suffix first).
METRIC_UNITS = (
    ("_per_s", "1/s"),
    ("_gbps", "Gbit/s"),
    ("_pkts", "packets"),
    ("_us", "µs"),
    ("_bytes", "B"),
)

#: Readable names of the metrics figures use by default.
METRIC_NAMES = {
    "latency_mean_us": "one-way latency, mean",
    "latency_p50_us": "one-way latency, median",
    "latency_p99_us": "one-way latency, 99th percentile",
    "rtt_mean_us": "round-trip time, mean",
    "rtt_p50_us": "round-trip time, median",
    "rtt_p99_us": "round-trip time, 99th percentile",
    "throughput_gbps": "delivered throughput",
    "offered_gbps": "offered load",
    "drop_rate": "packets dropped (fraction of sent)",
    "transactions_per_s": "transactions per second",
    "retransmissions": "retransmissions",
    "sojourn_mean_us": "mean time at the station",
    "utilization": "utilisation",
}

#: A sweep spanning at least this factor whose consecutive ratios are
#: nearly constant is geometric (1, 2, 4 ... 64) and gets a log axis.
GEOMETRIC_SPAN = 20.0
#: Largest coefficient of variation of the log-ratios of a geometric sweep.
GEOMETRIC_SPREAD = 0.5


def is_geometric(values) -> bool:
    """Whether a sweep's values are spaced by a roughly constant ratio over >= 20x.

    Parameters
    ----------
    values : iterable of float
        The swept values (any order; repeats ignored).

    Returns
    -------
    bool
        True if every value is positive, ``max / min >= 20`` and the logarithms of
        consecutive ratios have a coefficient of variation of at most 0.5 (so
        1, 2, 4 ... 64 and 64 B ... 9000 B are geometric; 0.5, 1, 2 ... 10 Gbit/s,
        mostly evenly spaced, is not).
    """
    v = np.unique(np.asarray(list(values), dtype=float))
    if v.size < 2 or not np.all(np.isfinite(v)) or v[0] <= 0:
        return False
    if v[-1] / v[0] < GEOMETRIC_SPAN:
        return False
    steps = np.diff(np.log(v))
    return bool(steps.std() <= GEOMETRIC_SPREAD * steps.mean())


def metric_unit(metric: str) -> str | None:
    """Return the unit of a metric column from its name (``latency_p99_us`` -> ``µs``)."""
    for suffix, unit in METRIC_UNITS:
        if metric.endswith(suffix):
            return unit
    return None


#: Flow kinds whose ``throughput_gbps`` is goodput (payload delivered in order).
GOODPUT_KINDS = ("tcp",)


def metric_label(metric: str, kinds=()) -> str:
    """Axis label of a metric with its unit, e.g. ``round-trip time, mean (µs)``.

    ``throughput_gbps`` of flows that are all of :data:`GOODPUT_KINDS` is their
    goodput (``sim/analysis/summary.py``) and says so.
    """
    name = METRIC_NAMES.get(metric, metric)
    if metric == "throughput_gbps" and kinds and all(k in GOODPUT_KINDS for k in kinds):
        name = "TCP goodput (payload delivered in order)"
    unit = metric_unit(metric)
    return f"{name} ({unit})" if unit else name


def param_label(param: str, unit: str | None, override: str | None = None) -> str:
    """Axis label of a swept parameter: its name and unit.

    The experiment's own label (``[plots] x_label``), if any, comes first and the
    parameter's name follows in brackets, so the axis always names what was swept.
    """
    own = f"{param} ({unit})" if unit else param
    return f"{override} [{param}]" if override else own


def file_stem(metric: str, x: str) -> str:
    """File name (no extension) of a metric against a parameter.

    Lower-case letters, digits and hyphens only: ``latency_p99_us`` against
    ``flows.probe.rate_gbps`` is ``latency-p99-us-vs-flows-probe-rate-gbps``; the
    names carry their units (``_us``, ``_gbps``), so the file name does too.
    """
    return f"{_slug(metric)}-vs-{_slug(x)}"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "x"


def band(mean: np.ndarray, ci95: np.ndarray, log: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """Lower and upper edge of a 95 % confidence band, and how many lower edges fell.

    Parameters
    ----------
    mean, ci95 : numpy.ndarray
        Means and t-interval half-widths (NaN half-width: no band at that point).
    log : bool
        Whether the y axis is logarithmic.

    Returns
    -------
    lower, upper : numpy.ndarray
        ``mean -/+ ci95``. On a log axis, where ``mean - ci95 <= 0`` the interval's
        lower end cannot be shown: the band's lower edge is set to the mean there
        (only the upper half of the interval is drawn), never to an invented value
        such as ``mean / 10``.
    dropped : int
        Points whose lower half was not drawn (the figure says so).
    """
    mean = np.asarray(mean, dtype=float)
    half = np.nan_to_num(np.asarray(ci95, dtype=float), nan=0.0)
    lower, upper = mean - half, mean + half
    if not log:
        return lower, upper, 0
    bad = (lower <= 0) & np.isfinite(mean)
    return np.where(bad, mean, lower), upper, int(bad.sum())
