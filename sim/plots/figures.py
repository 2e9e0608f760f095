"""Figures for reports, drawn from a results directory (never from a live run).

:func:`draw_all` draws the experiment's default views (:mod:`sim.plots.views`)
and the per-station breakdown (:mod:`sim.plots.breakdown`); :func:`draw_view`
draws one view chosen by name (``podnetsim plot DIR --x P --y M``). Every figure
has the swept parameter on x with its name and unit, a title, a legend outside
the axes and 95 % t-interval bands; it is written as PNG and SVG to ``DIR/plots``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from matplotlib.figure import Figure

from sim.plots import cdf, draw, series
from sim.plots.axes import metric_label
from sim.plots.breakdown import bars, per_flow
from sim.plots.results import Results, read_results
from sim.plots.views import default_views, default_x, lines, make_view
from sim.spec.experiment import PLOT_KINDS

#: File name (no extension) of the per-station breakdown.
BREAKDOWN_STEM = "station-breakdown"
#: File name (no extension) of the latency CDFs at ``[plots] cdf_at``.
CDF_STEM = "latency-cdf"
#: File name (no extension) of the tcp flows' window and goodput over time.
SERIES_STEM = "tcp-series"


#: The ``[plots] kinds`` entry of each default figure's metric (latency or RTT otherwise).
KIND_OF_METRIC = {"throughput_gbps": "throughput-vs-load", "drop_rate": "drops"}


SHARED_NOTE = (
    "; each segment is the station's mean over every flow's packets, so at a station"
    " shared with another flow it is not this flow's own time (a real-time probe's"
    " own wait is in its round trip, not here)"
)
"""Said under a breakdown of a run with several flows from results without per-flow means."""


def figures(res: Results) -> Iterator[tuple[str, str, Figure]]:
    """Yield ``(stem, caption, figure)`` for every default view, the CDFs and the breakdown.

    Only the kinds the experiment's ``[plots] kinds`` names are drawn (default:
    all). The caller saves or embeds each figure and must close it (``plt.close``).
    """
    swept = res.manifest["swept"]
    kinds = set(res.plots.get("kinds") or PLOT_KINDS)
    for view in default_views(res):
        wanted = KIND_OF_METRIC.get(view.y, "latency-vs-load") in kinds
        lns = lines(res, view) if wanted else []
        if lns:
            fig = draw.line_figure(view, lns, res.manifest, list(swept[view.x]))
            name = metric_label(view.y, [ln.kind for ln in lns])
            yield view.stem, f"{name} against {view.x}", fig
    cs = cdf.curves(res) if "latency-cdf" in kinds else []
    if cs:
        title = f"{res.manifest['experiment']}: one-way latency distribution"
        where = ", ".join(f"{a:g}" for a in dict.fromkeys(c.at for c in cs))
        caption = f"latency CDF at {default_x(res)} = {where} (quantiles averaged over runs)"
        yield CDF_STEM, caption, draw.cdf_figure(cs, title)
    sl = series.series_lines(res) if "tcp-series" in kinds else []
    if sl:
        title = f"{res.manifest['experiment']}: TCP window and goodput over time"
        caption = "congestion window and goodput of the measured tcp flows over time"
        yield SERIES_STEM, caption, series.series_figure(sl, title)
    at, bs = bars(res) if "station-breakdown" in kinds else (None, [])
    if bs:
        where = f" at {default_x(res)} = {at}" if at is not None else ""
        title = f"{res.manifest['experiment']}: where a packet spends its time{where}"
        shared = res.summary["flow"].nunique() > 1 and not per_flow(res)
        own = "" if shared else " (each flow's own packets)"
        caption = f"time per station along each path{where}{own}" + (SHARED_NOTE if shared else "")
        yield BREAKDOWN_STEM, caption, draw.breakdown_figure(bs, title, shared)


def draw_all(results_dir: str | Path) -> list[Path]:
    """Draw every default figure of ``results_dir`` into its ``plots/`` folder.

    Raises
    ------
    UserError
        The directory holds no results, or damaged ones (one line naming the file).
    """
    root = Path(results_dir)
    res = read_results(root)
    made: list[Path] = []
    for stem, _, fig in figures(res):
        made += draw.save(fig, root / "plots", stem)
    return made


def draw_view(results_dir: str | Path, **choice) -> list[Path]:
    """Draw one view of ``results_dir``; ``choice`` as :func:`sim.plots.views.make_view`.

    Raises
    ------
    UserError
        No or damaged results, or a parameter, metric or flow they do not have.
    """
    res = read_results(results_dir)
    view = make_view(res, **choice)
    lns = lines(res, view)
    if not lns:
        return []
    fig = draw.line_figure(view, lns, res.manifest, list(res.manifest["swept"][view.x]))
    return draw.save(fig, res.root / "plots", view.stem)
