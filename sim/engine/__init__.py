"""Data plane (SimPy): stations, routes, workloads and the run loop."""

from sim.engine.run import RunResult, simulate

__all__ = ["RunResult", "simulate"]
