"""Importing this module loads the compiled engine's kernels into the process.

A batch's worker processes are forked from multiprocessing's forkserver, which
imports the modules it is told to preload (:mod:`sim.batch.executors`). When a
batch has compiled runs it preloads this module, so numba is imported and the
kernels are loaded from numba's on-disk cache (``cache=True``) or compiled once,
in the server, and every worker inherits them instead of paying about a second
each (more on a busy machine). A failure here only means the workers load the
kernels themselves, so it is swallowed: the forkserver must not die of it.
"""

from __future__ import annotations

import contextlib


def warm() -> None:
    """Run the compiled engine on a few packets: the tandem, the event loop and the CPU loop."""
    from sim.engine.run import simulate
    from sim.spec.bench_case import BENCH_SCENARIO
    from sim.spec.load import scenario_from_dict

    scn = scenario_from_dict(BENCH_SCENARIO, "<preload>")
    for hops in (False, True):  # hops: the event loop (the tandem loop keeps none)
        simulate(scn, duration_s=2e-5, warmup_s=0.0, record_hops=hops, engine="compiled")
    cpu = scenario_from_dict(BENCH_SCENARIO, "<preload>", {"datapath.model": "cpu"})
    for hops in (False, True):
        simulate(cpu, duration_s=2e-5, warmup_s=0.0, record_hops=hops, engine="compiled")


with contextlib.suppress(Exception):
    warm()
