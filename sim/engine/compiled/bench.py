"""Speed of the compiled engine on ``podnetsim bench``'s cross-node case.

The figure is packet-hops per wall second of everything the compiled engine
does after the network is built (generating the arrivals, flattening the
tables, the event loop), the same span the SimPy engine's figure times
(``env.run``). Compilation is measured apart: the first call of a process
compiles the kernel, or loads it from numba's cache.
"""

from __future__ import annotations

import time

from sim.engine.compiled.arrivals import generate
from sim.engine.compiled.run import execute
from sim.engine.compiled.tables import build_tables
from sim.engine.network import Network


def compile_s(net: Network) -> tuple[float, bool]:
    """Time the kernel's first call on ``net`` (a tiny run), in wall seconds.

    Also returns whether numba's on-disk cache served it (then the time is a
    load, not a compile).
    """
    t = time.perf_counter()
    from sim.engine.compiled import tandem

    arr = generate(net)
    execute(arr, build_tables(net, arr), 1e-9, 0.0, False)
    wall = time.perf_counter() - t
    hits = sum(tandem.tandem_loop.stats.cache_hits.values())
    return wall, hits > 0


def packet_hops_per_s(net: Network, duration_s: float) -> tuple[int, float]:
    """Run ``net`` (sources installed, not run) to ``duration_s``: (packet-hops, wall s).

    On the bench case (one flow, one route) the station-by-station loop runs.
    """
    from sim.engine.compiled.kernel import N_EVENTS

    t = time.perf_counter()
    arr = generate(net)
    ctr = execute(arr, build_tables(net, arr), duration_s, 0.0, False)[3]
    return int(ctr[N_EVENTS]), time.perf_counter() - t
