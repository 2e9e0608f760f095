"""Matplotlib drawing of views and breakdowns; PNG and SVG written atomically.

Legends sit outside the axes (right of the plot), so they never cover data.
A numeric x is plotted at its values; a non-numeric one (e.g. ``placement``)
at evenly spaced positions labelled with the values, in sweep order.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

from sim.analysis.io import atomic_write, write_error  # noqa: E402
from sim.plots.axes import band, metric_label, param_label  # noqa: E402
from sim.plots.breakdown import Bar  # noqa: E402
from sim.plots.views import Line, View  # noqa: E402

#: Line style per flow (colour tells the other parameters apart).
STYLES = (
    {"ls": "-", "marker": "o"},
    {"ls": "--", "marker": "s"},
    {"ls": ":", "marker": "^"},
    {"ls": "-.", "marker": "D"},
)
LEGEND_OUTSIDE = {"loc": "upper left", "bbox_to_anchor": (1.02, 1.0), "borderaxespad": 0.0}
#: Fewest labelled ticks inside a log axis; with fewer at 1, 2, 5 x 10^k, label 1-9 x 10^k.
MIN_LOG_LABELS = 3


def plain_log(axis) -> None:
    """Log scale with plain numbers (1, 2, 5, 10 ...) instead of 2x10^0."""
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def halo(i: int, n: int) -> tuple[float, float]:
    """Return the line width and marker size (points) of line ``i`` of ``n``.

    Earlier lines are drawn wider (3 down to 1.5 pt, markers 6.5 down to 4 pt), so
    a later line that coincides with one (same values: e.g. cross-node with 1 and
    2 cores) leaves a visible halo of it instead of hiding it.
    """
    f = (n - 1 - i) / (n - 1) if n > 1 else 0.0
    return 1.5 + 1.5 * f, 4.0 + 2.5 * f


def covered_by(lns: list[Line], i: int) -> int | None:
    """Return the first earlier line with line ``i``'s x and means (to 1e-9 relative), or None.

    Such a line would hide the earlier one (e.g. cpu-saturation's cross-node with 1
    and 2 cores deliver the same); :func:`line_figure` draws it dashed and names
    the line it lies on in the legend.
    """
    x, y = np.asarray(lns[i].x), np.asarray(lns[i].mean, float)
    for j in range(i):
        xj, yj = np.asarray(lns[j].x), np.asarray(lns[j].mean, float)
        if np.array_equal(xj, x) and np.allclose(
            yj, y, rtol=1e-9, atol=0.0, equal_nan=True
        ):
            return j
    return None


def label_enough(axis, lims: tuple[float, float]) -> None:
    """Label every 1-9 x 10^k tick of a log axis too short for 1, 2, 5 to give 3 labels.

    A log axis from 6.5 to 17 holds only the 10 of 1, 2, 5, 10, 20: one number
    cannot be read as a scale, so 7, 8, 9, 10 are labelled instead.

    Parameters
    ----------
    axis : matplotlib.axis.Axis
        A log-scaled axis set up by :func:`plain_log`.
    lims : tuple of float
        Its data limits (low, high), after autoscaling.
    """
    lo, hi = sorted(lims)
    ticks = np.asarray(axis.get_major_locator().tick_values(lo, hi))
    if np.count_nonzero((ticks >= lo) & (ticks <= hi)) < MIN_LOG_LABELS:
        axis.set_major_locator(LogLocator(base=10, subs=np.arange(1.0, 10.0)))


def subtitle(manifest: dict) -> str:
    """Replications and band meaning, for a figure's title."""
    reps = manifest.get("replications", "?")
    quick = " (quick run)" if manifest.get("quick") else ""
    return f"mean of {reps} replications, shaded: 95% t-interval{quick}"


def line_figure(view: View, lns: list[Line], manifest: dict, order: list) -> plt.Figure:
    """One metric against x, a line and a band per :class:`Line`.

    Parameters
    ----------
    view : View
        What is drawn.
    lns : list of Line
        The lines (from :func:`sim.plots.views.lines`).
    manifest : dict
        The results' manifest (title, units, x label).
    order : list
        The swept values of x in sweep order (positions of a non-numeric x).
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    numeric = all(np.issubdtype(np.asarray(ln.x).dtype, np.number) for ln in lns)
    dropped = 0
    groups = list(dict.fromkeys(ln.group for ln in lns))
    flows = list(dict.fromkeys(ln.flow for ln in lns))
    names = [str(v) for v in order]  # CSV gives strings; the manifest, TOML values
    for ln in lns:
        names += [str(v) for v in ln.x if str(v) not in names]
    for i, ln in enumerate(lns):
        xs = ln.x.astype(float) if numeric else np.array([names.index(str(v)) for v in ln.x], float)
        color = f"C{groups.index(ln.group) % 10}"
        style = STYLES[flows.index(ln.flow) % len(STYLES)]
        lw, ms = halo(i, len(lns))
        under = covered_by(lns, i)
        label = ln.label if under is None else f"{ln.label} (on {lns[under].label})"
        if under is not None:  # dashed, so the line it lies on shows between the dashes
            style = {**style, "ls": (0, (2, 2))}
        ax.plot(xs, ln.mean, color=color, label=label, lw=lw, ms=ms, **style)
        lo, hi, n = band(ln.mean, ln.ci95, view.logy)
        dropped += n
        ax.fill_between(xs, lo, hi, color=color, alpha=0.2, linewidth=0)
    if not numeric:
        ax.set_xticks(range(len(names)), names)
    units = manifest.get("units", {})
    unit = units.get(view.x) if units.get(view.x) not in (None, "none") else None
    label = manifest["plots"].get("x_label") if view.x == manifest["plots"].get("x") else None
    ax.set_xlabel(param_label(view.x, unit, label))
    ylabel = metric_label(view.y, [ln.kind for ln in lns])
    ax.set_ylabel(ylabel)
    _scales(ax, view, numeric and _positive(ln.x for ln in lns), _positive(ln.mean for ln in lns))
    note = f"\nlower half of the band not drawn at {dropped} points (mean - ci95 <= 0)"
    ax.set_title(
        f"{manifest['experiment']}: {ylabel}\n{subtitle(manifest)}" + (note if dropped else ""),
        fontsize=9,
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, **LEGEND_OUTSIDE)
    return fig


def _positive(arrays) -> bool:
    """Whether any value is finite and above 0 (else a log axis cannot be drawn)."""
    return any(np.any(np.isfinite(a) & (a > 0)) for a in map(np.asarray, arrays))


def _scales(ax, view: View, logx_ok: bool, logy_ok: bool) -> None:
    """Log or linear axes as the view asks; linear where no value could be drawn on a log one."""
    if view.logx and logx_ok:
        ax.set_xscale("log")
        plain_log(ax.xaxis)
        label_enough(ax.xaxis, ax.get_xlim())
    if view.logy and logy_ok:
        ax.set_yscale("log")
        plain_log(ax.yaxis)
        label_enough(ax.yaxis, ax.get_ylim())
    elif view.y == "drop_rate" or view.y.startswith("throughput"):
        ax.set_ylim(bottom=0)


def cdf_figure(cs: list, title: str) -> plt.Figure:
    """Latency CDFs (:class:`sim.plots.cdf.Curve`), latency on a log axis.

    Colour tells configurations and flows apart, line style the x value.
    """
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    groups = list(dict.fromkeys(c.group for c in cs))
    ats = list(dict.fromkeys(c.at for c in cs))
    for c in cs:
        style = STYLES[ats.index(c.at) % len(STYLES)]["ls"]
        ax.plot(c.latency_us, c.fraction, ls=style, label=c.label,
                color=f"C{groups.index(c.group) % 10}")  # fmt: skip
    ax.set_xscale("log")
    plain_log(ax.xaxis)
    label_enough(ax.xaxis, ax.get_xlim())
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("one-way latency (µs)")
    ax.set_ylabel("fraction of packets with latency <= x")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, **LEGEND_OUTSIDE)
    return fig


def breakdown_figure(bars: list[Bar], title: str, shared: bool = False) -> plt.Figure:
    """Stacked horizontal bars: each station's mean time along each flow's path.

    Segments are coloured by station kind (one legend entry per kind); the part
    of the mean latency the stations do not account for is grey and hatched.
    With ``shared`` (several flows, results without per-flow means) the axis
    says the means are over every flow's packets at the station.
    """
    fig, ax = plt.subplots(figsize=(10, 1.8 + 0.7 * max(1, len(bars))))
    kinds: dict[str, str] = {}
    for row, bar in enumerate(bars):
        left = 0.0
        for _station, kind, us in bar.segments:
            new = kind not in kinds
            kinds.setdefault(kind, f"C{len(kinds) % 10}")
            ax.barh(row, us, left=left, color=kinds[kind], edgecolor="white", height=0.6,
                    label=kind if new else None)  # fmt: skip
            left += us
        rest = bar.latency_us - left
        if np.isfinite(rest) and rest > 1e-3:
            new = "propagation" not in kinds
            kinds.setdefault("propagation", "lightgrey")
            ax.barh(row, rest, left=left, color="lightgrey", edgecolor="white", height=0.6,
                    hatch="//", label="propagation and other" if new else None)  # fmt: skip
    labels = [
        b.label + (f"\n(mean latency {b.latency_us:.3g} µs)" if np.isfinite(b.latency_us) else "")
        for b in bars
    ]
    ax.set_yticks(range(len(bars)), labels, fontsize=8)
    ax.invert_yaxis()
    whose = "every flow's packets" if shared else "a packet"
    ax.set_xlabel(f"mean time of {whose} at each station on the path (queueing + service, µs)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    ax.legend(fontsize=8, title="station kind", **LEGEND_OUTSIDE)
    return fig


def save(fig: plt.Figure, out: Path, stem: str) -> list[Path]:
    """Write ``stem``.png and .svg atomically (a failed write leaves no partial file).

    Raises
    ------
    UserError
        The directory cannot be written.
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        plt.close(fig)
        raise write_error(out, exc) from None
    paths = [out / f"{stem}.png", out / f"{stem}.svg"]

    def png(tmp: Path) -> None:
        fig.savefig(tmp, format="png", dpi=150, bbox_inches="tight", metadata={"Software": None})

    def svg(tmp: Path) -> None:
        # no date and a fixed id salt: the same results give byte-identical SVGs
        with plt.rc_context({"svg.hashsalt": "podnetsim"}):
            fig.savefig(tmp, format="svg", bbox_inches="tight", metadata={"Date": None})

    try:
        atomic_write(paths[0], png)
        atomic_write(paths[1], svg)
    finally:
        plt.close(fig)
    return paths
