"""Experiment batches: sweeps x replications -> run specs -> executors -> results.

The names below are imported on first use, so that light modules of this package
(``sim.batch.signals``) load without the simulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sim.batch.driver import BatchReport, run_experiment
    from sim.batch.expand import Batch, RunSpec, load_experiment

__all__ = ["Batch", "BatchReport", "RunSpec", "load_experiment", "run_experiment"]


def __getattr__(name: str) -> Any:
    if name in ("BatchReport", "run_experiment"):
        from sim.batch import driver

        return getattr(driver, name)
    if name in ("Batch", "RunSpec", "load_experiment"):
        from sim.batch import expand

        return getattr(expand, name)
    raise AttributeError(f"module 'sim.batch' has no attribute {name!r}")
