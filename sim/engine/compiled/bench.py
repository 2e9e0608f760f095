"""Speed of the compiled engine on ``podnetsim bench``'s cross-node case, and its CPU case.

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


def cpu_network(duration_s: float) -> Network:
    """Build the bench's CPU case (``BENCH_CPU_SCENARIO``): sources installed, not run."""
    from sim.control.cluster import build_cluster
    from sim.engine.cpu_routes import CpuPlane
    from sim.engine.workloads import install_flows
    from sim.spec.bench_case import BENCH_CPU_SCENARIO
    from sim.spec.load import scenario_from_dict

    scn = scenario_from_dict(BENCH_CPU_SCENARIO, "<bench>")
    cl = build_cluster(scn, "<bench>")
    net = Network(scn.costs, 1, 0.0, False)
    net.plane = CpuPlane(net, cl, scn.datapath, "<bench>")
    install_flows(net, cl, duration_s, [])
    return net


def cpu_case(duration_s: float) -> tuple[int, float, float]:
    """Run the CPU case on both engines: (segments and wire passes, SimPy s, compiled s).

    Each engine's wall time is its simulation alone (SimPy's ``env.run``; the
    compiled engine's arrivals, tables and loop), on the same packets.
    """
    from sim.engine.compiled.cpu import build_cpu_tables
    from sim.engine.compiled.cpu_loop import run_cpu_kernel
    from sim.engine.compiled.kernel import N_ARR

    net = cpu_network(duration_s)
    t = time.perf_counter()
    net.env.run(until=duration_s)
    simpy_s = time.perf_counter() - t
    hops = sum(st.n_arrivals for st in net.stations)
    net = cpu_network(duration_s)
    t = time.perf_counter()
    arr = generate(net)
    ss = run_cpu_kernel(duration_s, 0.0, arr, build_cpu_tables(net, arr), False)[1][0]
    compiled_s = time.perf_counter() - t
    if int(ss[:, N_ARR].sum()) != hops:
        raise RuntimeError("the engines disagree on the bench's CPU case")
    return hops, simpy_s, compiled_s
