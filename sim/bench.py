"""``podnetsim bench``: engine speed against a bare SimPy loop, in one process.

Speed is a ratio measured in one run (this machine is shared and noisy): simulated
packet-hops per wall second divided by bare SimPy ``env.timeout`` events per
second. Memory is the peak traced allocation of a whole run and its summary
divided by packets (beside the packet columns alone). With numba installed, the
compiled engine runs the same case in the same repeats, right after the SimPy
engine; its ratio to the SimPy engine excludes compilation, reported apart.
Two TCP cases (one CUBIC connection, without and with TSO) run on the SimPy
engine after them, with their SimPy events per packet-hop (segment-hop).
"""

from __future__ import annotations

import statistics
import time
import tracemalloc

import simpy

from sim.control.cluster import build_cluster
from sim.engine.budget import check_work, estimate_work
from sim.engine.events import events_scheduled
from sim.engine.network import Network
from sim.engine.workloads import install_flows
from sim.spec.bench_case import BENCH_SCENARIO, BENCH_TCP_DURATION_FRACTION, BENCH_TCP_FLOWS
from sim.spec.load import scenario_from_dict


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


def _network(duration_s: float, flow: dict | None = None) -> Network:
    raw = BENCH_SCENARIO if flow is None else {**BENCH_SCENARIO, "flows": [flow]}
    scn = scenario_from_dict(raw, "<bench>")
    cl = build_cluster(scn, "<bench>")
    net = Network(scn.costs, 1, 0.0, False)
    install_flows(net, cl, duration_s, [])
    return net


def _compiled_setup() -> dict:
    """Compile (or load) the compiled engine: its figures' keys, None without numba."""
    from sim.engine.compiled.select import numba_available

    keys = ("compiled_packet_hops_per_s", "compiled_ratio", "compile_s", "compile_from_cache")
    out = dict.fromkeys((*keys, "compiled_peak_bytes_per_packet"))
    if numba_available():
        from sim.engine.compiled.bench import compile_s

        out["compile_s"], out["compile_from_cache"] = compile_s(_network(1e-3))
        _cpu_rates(1e-3)  # loads (or compiles) the CPU loop, outside the figures
    return out


def _compiled_rate(duration_s: float) -> float:
    """Packet-hops per wall second of the compiled engine on the bench case."""
    from sim.engine.compiled.bench import packet_hops_per_s

    hops, wall = packet_hops_per_s(_network(duration_s), duration_s)
    return hops / wall


def _cpu_rates(duration_s: float) -> tuple[float, float]:
    """Packet-hops per wall second of the CPU case: (SimPy engine, compiled engine)."""
    from sim.engine.compiled.bench import cpu_case

    hops, simpy_s, compiled_s = cpu_case(duration_s)
    return hops / simpy_s, hops / compiled_s


def _cpu_figures(rates: list[tuple[float, float]]) -> dict:
    """Medians of the CPU case's repeats (None without numba)."""
    keys = ("cpu_packet_hops_per_s", "cpu_compiled_packet_hops_per_s", "cpu_compiled_ratio")
    if not rates:
        return dict.fromkeys(keys)
    simpy, comp = zip(*rates, strict=True)
    ratios = [c / s for s, c in rates]
    return dict(zip(keys, map(statistics.median, (simpy, comp, ratios)), strict=True))


def _engine(duration_s: float, flow: dict | None = None) -> tuple[int, int, float, int]:
    """Run the bench case (``flow`` instead of the Poisson one if given).

    Returns packets, packet-hops, wall seconds and SimPy events scheduled.
    """
    net = _network(duration_s, flow)
    t = time.perf_counter()
    net.env.run(until=duration_s)
    wall = time.perf_counter() - t
    n_pkts = len(net.rec.send_s)
    hops = sum(int(h) for h in net.rec.hop) + sum(
        1 for d in net.rec.done_s if d == d
    )  # hop index of the last station reached, +1 for packets that finished it
    return n_pkts, hops, wall, events_scheduled(net.env)


def _tcp_cases(duration_s: float, repeats: int, bare: list[float]) -> dict:
    """Run each TCP case of :data:`BENCH_TCP_FLOWS` ``repeats`` times (medians).

    ``bare`` holds the bare SimPy rate of each repeat of the Poisson case, the
    denominator of each repeat's ratio. A TCP case's packet is a segment (a
    super-segment with ``tso``) or an ACK. Each case gives ``duration_s``,
    ``packets``, ``packet_hops``, ``simpy_events`` (scheduled: timers and the
    packets in flight at the end included), ``events_per_packet_hop``,
    ``packet_hops_per_s`` and ``ratio`` (to the same repeat's bare SimPy rate).
    """
    out = {}
    for name, flow in BENCH_TCP_FLOWS.items():
        scn = scenario_from_dict({**BENCH_SCENARIO, "flows": [flow]}, "<bench>")
        check_work(estimate_work(scn, duration_s=duration_s), file="podnetsim bench --duration")
        rates, ratios = [], []
        n_pkts = hops = events = 0
        for i in range(repeats):
            n_pkts, hops, wall, events = _engine(duration_s, flow)
            rates.append(hops / wall)
            ratios.append(rates[-1] / bare[i])
        out[name] = {
            "duration_s": duration_s,
            "packets": n_pkts,
            "packet_hops": hops,
            "simpy_events": events,
            "events_per_packet_hop": events / hops if hops else None,
            "packet_hops_per_s": statistics.median(rates),
            "ratio": statistics.median(ratios),
        }
    return out


def peak_bytes_per_packet(duration_s: float, engine: str) -> tuple[float, float]:
    """Peak traced memory of a whole run and its summary, per packet, bytes.

    Traced from before :func:`sim.engine.simulate` to after
    :func:`sim.analysis.summarize` (tracemalloc: every Python and numpy
    allocation, the compiled engine's arrays included: the kernel allocates none
    of its own). Returns (peak, packet columns of the result) per packet.
    """
    from sim.analysis import summarize
    from sim.engine import simulate

    scn = scenario_from_dict(BENCH_SCENARIO, "<bench>")
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    res = simulate(scn, duration_s=duration_s, warmup_s=0.0, engine=engine)
    summarize(res)
    peak = tracemalloc.get_traced_memory()[1] - base
    tracemalloc.stop()
    return peak / res.packets["send_s"].size, res.bytes_per_packet


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
        per-repeat ratios), ``bytes_per_packet`` (the packet columns per packet),
        ``peak_bytes_per_packet`` (peak traced memory of a SimPy run and its
        summary, per packet), ``packets``, ``packet_hops``; with numba,
        ``compiled_packet_hops_per_s``, ``compiled_ratio`` (median of per-repeat
        compiled / SimPy engine ratios, compilation excluded), ``compile_s`` (first
        call: compile or cache load), ``compile_from_cache`` and
        ``compiled_peak_bytes_per_packet``, and the CPU data path's case
        (``BENCH_CPU_SCENARIO``) on both engines: ``cpu_packet_hops_per_s``
        (SimPy), ``cpu_compiled_packet_hops_per_s`` and ``cpu_compiled_ratio``
        (median of per-repeat ratios; packet-hops are core segments and wire
        passes); else these are None. ``events_per_packet_hop``: SimPy events
        per packet-hop; ``tcp``, ``tcp_tso``: the TCP cases (:func:`_tcp_cases`).
    """
    scn = scenario_from_dict(BENCH_SCENARIO, "<bench>")
    check_work(estimate_work(scn, duration_s=duration_s), file="podnetsim bench --duration")
    compiled = _compiled_setup()
    hop_rates, bare_rates, ratios, c_rates, c_ratios, cpu = [], [], [], [], [], []
    n_pkts = hops = events = 0
    for _ in range(repeats):  # interleaved: the machine's load hits both alike
        n_pkts, hops, wall, events = _engine(duration_s)
        rate = hops / wall
        bare = bare_simpy_events_per_s(hops)
        hop_rates.append(rate)
        bare_rates.append(bare)
        ratios.append(rate / bare)
        if compiled["compile_s"] is not None:
            c_rates.append(_compiled_rate(duration_s))
            c_ratios.append(c_rates[-1] / rate)
            cpu.append(_cpu_rates(duration_s))
    peak, columns = peak_bytes_per_packet(duration_s, "simpy")
    if c_rates:
        compiled["compiled_packet_hops_per_s"] = statistics.median(c_rates)
        compiled["compiled_ratio"] = statistics.median(c_ratios)
        compiled["compiled_peak_bytes_per_packet"] = peak_bytes_per_packet(duration_s, "compiled")[
            0
        ]
    tcp = _tcp_cases(duration_s * BENCH_TCP_DURATION_FRACTION, repeats, bare_rates)
    return {
        **compiled,
        **_cpu_figures(cpu),
        "packets": n_pkts,
        "packet_hops": hops,
        "events_per_packet_hop": events / hops if hops else None,
        **tcp,
        "packet_hops_per_s": statistics.median(hop_rates),
        "bare_simpy_events_per_s": statistics.median(bare_rates),
        "ratio": statistics.median(ratios),
        "bytes_per_packet": columns,
        "peak_bytes_per_packet": peak,
    }
