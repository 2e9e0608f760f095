"""Experiment batches: sweeps x replications -> run specs -> executors -> results."""

from sim.batch.driver import BatchReport, run_experiment
from sim.batch.expand import Batch, RunSpec, load_experiment

__all__ = ["Batch", "BatchReport", "RunSpec", "load_experiment", "run_experiment"]
