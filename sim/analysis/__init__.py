"""Analysis: summaries of runs (after the run, warm-up removed)."""

from sim.analysis.summary import summarize

__all__ = ["summarize"]
