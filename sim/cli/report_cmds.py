"""``podnetsim plot`` and ``podnetsim report``: figures and reports from stored results."""

from __future__ import annotations

import click


@click.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.option("--x", "x", metavar="PARAM", help="Swept parameter on the x axis.")
@click.option("--y", "y", metavar="METRIC", help="Metric on the y axis (a summary.csv column).")
@click.option(
    "--by",
    "by",
    metavar="PARAM",
    multiple=True,
    help="Parameter whose values are separate lines (repeatable; default: the others swept).",
)
@click.option("--flow", metavar="NAME", help="Draw only this flow.")
@click.option(
    "--logx/--linx",
    "logx",
    default=None,
    help="Log or linear x (default: log for a geometric sweep).",
)
@click.option(
    "--logy/--liny", "logy", default=None, help="Log or linear y (default: log for delays)."
)
def plot(results: str, x, y, by, flow, logx, logy) -> None:
    """Redraw the plots of RESULTS (a results directory) without re-running.

    With no option, every default figure; with any, the one view asked for.
    """
    from sim.plots.figures import draw_all, draw_view

    if any(v not in (None, ()) for v in (x, y, by, flow, logx, logy)):
        paths = draw_view(results, x=x, y=y, by=tuple(by), flow=flow, logx=logx, logy=logy)
    else:
        paths = draw_all(results)
    for p in paths:
        click.echo(str(p))


@click.command()
@click.argument("results", type=click.Path(file_okay=False))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="HTML file to write (default RESULTS/report.html).",
)
def report(results: str, output: str | None) -> None:
    """Write one self-contained HTML report of RESULTS (a results directory).

    Question and parameters, every figure, the summary table with intervals,
    the per-station breakdown and the manifest; it opens without a network.
    """
    from sim.report import build_report

    click.echo(str(build_report(results, output)))
