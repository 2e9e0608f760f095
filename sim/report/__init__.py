"""One self-contained HTML report of a results directory (``podnetsim report``)."""

from sim.report.build import build_report, render_report

__all__ = ["build_report", "render_report"]
