"""``podnetsim bench``: engine speed against a bare SimPy loop, in one process.

Speed is a ratio measured in one run (this machine is shared and noisy): simulated
packet-hops per wall second divided by bare SimPy ``env.timeout`` events per
second. Memory is the peak traced allocation during a run divided by packets.
With numba installed, the compiled engine runs the same case in the same
repeats; its ratio to the SimPy engine excludes compilation, reported apart.
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import simpy

from sim.control.cluster import build_cluster
from sim.engine.budget import check_work, estimate_work
from sim.engine.network import Network
from sim.engine.workloads import install_flows
from sim.spec.load import scenario_from_dict

BENCH_FLOW = {"name": "bench", "kind": "poisson", "src": "api", "dst": "web", "load": 0.5}
#: The cluster of experiments/scenarios/article.toml that the benchmark flow crosses
#: (built in code: an installed package has no experiments/ folder), default costs.
BENCH_SCENARIO = {
    "name": "bench",
    "node_network": {"cidr": "10.100.0.0/24", "gateway": "10.100.0.1"},
    "pod_network": {"cluster_cidr": "10.0.0.0/14", "node_prefix_length": 24},
    "nodes": [
        {"name": "node1", "address": "10.100.0.2"},
        {"name": "node2", "address": "10.100.0.3"},
    ],
    "pods": [{"name": "web", "node": "node1"}, {"name": "api", "node": "node2"}],
    "flows": [BENCH_FLOW],
}


def bare_simpy_events_per_s(n_events: int) -> float:
    """Events per second of a bare SimPy loop of ``env.timeout`` (one process)."""
    env = simpy.Environment()

    def loop(env):
        for _ in range(n_events):
            yield env.timeout(1)

    env.process(loop(env))
    t = time.perf_counter()
    env.run()
    return n_events / (time.perf_counter() - t)


def _network(duration_s: float) -> Network:
    scn = scenario_from_dict(BENCH_SCENARIO, "<bench>")
    cl = build_cluster(scn, "<bench>")
    net = Network(scn.costs, 1, 0.0, False)
    install_flows(net, cl, duration_s, [])
    return net


def _compiled(duration_s: float, repeats: int) -> dict:
    """Compiled-engine figures (None without numba), the same case and repeats."""
    from sim.engine.compiled.select import numba_available

    keys = ("compiled_packet_hops_per_s", "compiled_ratio", "compile_s", "compile_from_cache")
    if not numba_available():
        return dict.fromkeys(keys)
    from sim.engine.compiled.bench import compile_s, packet_hops_per_s

    first_s, cached = compile_s(_network(duration_s))
    rates = []
    for _ in range(repeats):
        hops, wall = packet_hops_per_s(_network(duration_s), duration_s)
        rates.append(hops / wall)
    return dict(zip(keys, (statistics.median(rates), None, first_s, cached), strict=True))


def _engine(duration_s: float, trace_memory: bool) -> tuple[int, int, float, int]:
    net = _network(duration_s)
    if trace_memory:
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
    t = time.perf_counter()
    net.env.run(until=duration_s)
    wall = time.perf_counter() - t
    peak = 0
    if trace_memory:
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
    n_pkts = len(net.rec.send_s)
    hops = sum(int(h) for h in net.rec.hop) + sum(
        1 for d in net.rec.done_s if d == d
    )  # hop index of the last station reached, +1 for packets that finished it
    return n_pkts, hops, wall, peak


def run_bench(duration_s: float = 0.6, repeats: int = 3) -> dict:
    """Measure the engine and a bare SimPy loop, interleaved ``repeats`` times.

    Parameters
    ----------
    duration_s : float
        Simulated seconds of the cross-node scenario (0.6 s gives ~210k packets
        at 50% of the 699 kpps bottleneck of 1500 B packets).
    repeats : int
        Interleaved repetitions; medians are reported.

    Returns
    -------
    dict
        ``packet_hops_per_s``, ``bare_simpy_events_per_s``, ``ratio`` (median of
        per-repeat ratios), ``bytes_per_packet`` (peak traced memory / packets),
        ``packets``, ``packet_hops``; with numba, ``compiled_packet_hops_per_s``,
        ``compiled_ratio`` (compiled / SimPy engine, medians), ``compile_s`` (first
        call: compile or cache load) and ``compile_from_cache``; else these are None.
    """
    scn = scenario_from_dict(BENCH_SCENARIO, "<bench>")
    check_work(estimate_work(scn, duration_s=duration_s), file="podnetsim bench --duration")
    hop_rates, bare_rates, ratios = [], [], []
    n_pkts = hops = 0
    for _ in range(repeats):
        n_pkts, hops, wall, _ = _engine(duration_s, trace_memory=False)
        rate = hops / wall
        bare = bare_simpy_events_per_s(hops)
        hop_rates.append(rate)
        bare_rates.append(bare)
        ratios.append(rate / bare)
    n_mem, _, _, peak = _engine(duration_s, trace_memory=True)
    compiled = _compiled(duration_s, repeats)
    if compiled["compiled_packet_hops_per_s"] is not None:
        compiled["compiled_ratio"] = compiled["compiled_packet_hops_per_s"] / statistics.median(
            hop_rates
        )
    return {
        **compiled,
        "packets": n_pkts,
        "packet_hops": hops,
        "packet_hops_per_s": statistics.median(hop_rates),
        "bare_simpy_events_per_s": statistics.median(bare_rates),
        "ratio": statistics.median(ratios),
        "bytes_per_packet": peak / n_mem,
    }
