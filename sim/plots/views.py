"""Which figures a results directory gets, and the lines each one draws.

A view is one metric against one swept parameter, one line per flow and value of
the other swept parameters (``--by``). Defaults follow the experiment: x is
``[plots] x`` or the first numeric swept parameter; request/response flows plot
round-trip time, other measured flows one-way latency; every flow's throughput
and drop rate are drawn against x. Numbers come from ``summary.csv`` (mean and
95 % t-interval over replications), never recomputed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from sim.errors import UserError
from sim.plots.axes import file_stem, is_geometric
from sim.plots.results import Results

#: Flow kinds whose delay is a round trip (request/response: no one-way latency).
RTT_KINDS = ("request_response", "request-response")


@dataclass(frozen=True)
class View:
    """One figure: a metric against a swept parameter.

    Attributes
    ----------
    x, y : str
        Swept parameter and metric (a column ``y.mean`` of ``summary.csv``).
    by : tuple of str
        Parameters whose values are separate lines (with the flow).
    flows : tuple of str
        Flows drawn.
    logx, logy : bool
        Logarithmic axes.
    """

    x: str
    y: str
    by: tuple[str, ...]
    flows: tuple[str, ...]
    logx: bool
    logy: bool

    @property
    def stem(self) -> str:
        """File name without extension."""
        return file_stem(self.y, self.x)


@dataclass(frozen=True)
class Line:
    """One line of a view: x values, means and CI half-widths, sorted by x.

    ``flow`` and ``group`` (the other parameters' values) pick its style and colour;
    ``kind`` is the flow's kind (``tcp``, ``poisson`` ...).
    """

    label: str
    flow: str
    group: tuple
    x: np.ndarray
    mean: np.ndarray
    ci95: np.ndarray
    kind: str = ""


def default_x(res: Results) -> str:
    """Return ``[plots] x``, else the first numeric swept parameter, else the first."""
    if res.plots.get("x"):
        return res.plots["x"]
    for p in res.params:
        if is_numeric(res.summary[p]):
            return p
    return res.params[0]


def is_numeric(col: pd.Series) -> bool:
    """Whether a parameter column holds numbers (a numeric axis)."""
    return pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col)


def _flows(res: Results, kinds=None, role: str | None = None) -> tuple[str, ...]:
    s = res.summary
    keep = np.ones(len(s), dtype=bool)
    if kinds is not None:
        keep &= s["kind"].isin(kinds).to_numpy()
    if role is not None:
        keep &= (s["role"] == role).to_numpy()
    return tuple(dict.fromkeys(s.loc[keep, "flow"]))


def _first_pairs(res: Results, flows: tuple[str, ...]) -> tuple[str, ...]:
    """Keep, when ``pod_pairs`` is swept, the flows present at every value of it.

    ``pod_pairs = N`` copies each placed flow N times (``probe-1`` ... ``probe-N``);
    a line per copy would give 2 x 16 legend entries for one question. The copies
    are symmetric, so the first pair, present at every N, answers it; the other
    copies stay in the tables and in ``podnetsim plot --flow``.
    """
    if "pod_pairs" not in res.params:
        return flows
    s = res.summary
    n_values = s["pod_pairs"].nunique()
    counts = s.drop_duplicates(["flow", "pod_pairs"])["flow"].value_counts()
    keep = tuple(f for f in flows if counts.get(f, 0) == n_values)
    return keep or flows


def default_views(res: Results) -> list[View]:
    """Return the figures an experiment gets by default (see the module docstring)."""
    x = default_x(res)
    by = tuple(p for p in res.params if p != x)
    logx = is_numeric(res.summary[x]) and is_geometric(res.summary[x])
    log_delay = bool(res.plots.get("log_latency", True))
    measured = _first_pairs(res, _flows(res, role="measured") or _flows(res))
    rtt = tuple(f for f in measured if f in _flows(res, kinds=RTT_KINDS))
    one_way = tuple(f for f in measured if f not in rtt)
    views = []
    for flows, metrics in ((one_way, ("latency_mean_us", "latency_p99_us")),
                           (rtt, ("rtt_mean_us", "rtt_p99_us"))):  # fmt: skip
        if flows:
            views += [View(x, m, by, flows, logx, log_delay) for m in metrics]
    everyone = _first_pairs(res, _flows(res))
    views.append(View(x, "throughput_gbps", by, everyone, logx, False))
    views.append(View(x, "drop_rate", by, everyone, logx, False))
    return [v for v in views if f"{v.y}.mean" in res.summary.columns]


def metrics(res: Results) -> list[str]:
    """Metrics a view can plot (the ``M`` of every ``M.mean`` column of summary.csv)."""
    return [c[: -len(".mean")] for c in res.summary.columns if c.endswith(".mean")]


def make_view(
    res: Results,
    x: str | None = None,
    y: str | None = None,
    by: tuple[str, ...] = (),
    flow: str | None = None,
    logx: bool | None = None,
    logy: bool | None = None,
) -> View:
    """Build the view chosen on the command line, names checked against the results.

    Raises
    ------
    UserError
        A parameter, metric or flow the results do not have (naming the valid ones).
    """
    x = x or default_x(res)
    for opt, name in (("--x", x), *(("--by", b) for b in by)):
        _check(name, res.params, opt, "swept parameters")
    if flow is not None:
        _check(flow, list(_flows(res)), "--flow", "flows")
    flows = (flow,) if flow else None
    if y is None:
        pick = flows or _flows(res, role="measured") or _flows(res)
        y = "rtt_mean_us" if set(pick) <= set(_flows(res, kinds=RTT_KINDS)) else "latency_mean_us"
    else:
        _check(y, metrics(res), "--y", "metrics")
    if flows is None:
        s = res.summary[res.summary[f"{y}.mean"].notna()]
        flows = tuple(dict.fromkeys(s.loc[s["role"] == "measured", "flow"]))
        flows = flows or tuple(dict.fromkeys(s["flow"])) or _flows(res)
    by = tuple(by) or tuple(p for p in res.params if p != x)
    if logx is None:
        logx = is_numeric(res.summary[x]) and is_geometric(res.summary[x])
    if logy is None:
        logy = y.startswith(("latency_", "rtt_")) and bool(res.plots.get("log_latency", True))
    return View(x, y, by, flows, logx, logy)


def _check(name: str, valid: list[str], option: str, what: str) -> None:
    if name not in valid:
        raise UserError(
            f"{name!r} is not one of the {what} of these results",
            field=option,
            fix=f"use one of: {', '.join(valid)}",
        )


def lines(res: Results, view: View) -> list[Line]:
    """Return the lines of a view: one per flow and value of the ``by`` parameters.

    Parameters the view neither plots nor separates are kept apart too (their
    configurations are never averaged together), after the ``by`` ones.
    """
    s = res.summary[res.summary["flow"].isin(view.flows)]
    keys = ["flow", *view.by, *(p for p in res.params if p not in (view.x, *view.by))]
    out = []
    for vals, sub in s.groupby(keys, sort=False):
        vals = vals if isinstance(vals, tuple) else (vals,)
        sub = sub.sort_values(view.x) if is_numeric(sub[view.x]) else sub
        label = ", ".join(_part(k, v) for k, v in zip(keys, vals, strict=True))
        if len(view.flows) == 1:
            label = label.partition(", ")[2] or str(vals[0])
        out.append(
            Line(
                label,
                str(vals[0]),
                tuple(vals[1:]),
                sub[view.x].to_numpy(),
                sub[f"{view.y}.mean"].to_numpy(dtype=float),
                sub[f"{view.y}.ci95"].to_numpy(dtype=float),
                str(sub["kind"].iloc[0]),
            )
        )
    return [ln for ln in out if not np.all(np.isnan(ln.mean))]


def _part(key: str, value) -> str:
    if key == "flow" or key == "placement":
        return str(value)
    return f"{key.rsplit('.', 1)[-1]}={value}"
