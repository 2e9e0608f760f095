"""One run on the compiled engine: the same :class:`RunResult` as the SimPy engine's."""

from __future__ import annotations

import numpy as np

from sim.control.cluster import Cluster
from sim.engine.compiled.arrivals import Arrivals, generate
from sim.engine.compiled.tables import Tables, build_tables
from sim.engine.cpu_routes import CpuPlane
from sim.engine.network import Network
from sim.engine.recorder import ID_DTYPE
from sim.engine.run import (
    RunResult,
    StationStats,
    route_flows,
    route_names,
    route_station_names,
    split_hops,
)
from sim.engine.workloads import install_flows
from sim.spec.scenario import Scenario


def execute(arr: Arrivals, tab: Tables, end_s: float, warm_s: float, hops: bool) -> tuple:
    """Run the kernel on prepared arrivals and tables (compiles on first use)."""
    from sim.engine.compiled.kernel import run_kernel
    from sim.engine.compiled.tandem import eligible

    return run_kernel(
        end_s,
        warm_s,
        (arr.send_s, arr.size_bytes, arr.route, arr.source_start),
        (tab.st_f, tab.st_i, tab.draws),
        (tab.rt_start, tab.rt_len, tab.rt_station, tab.rt_extra_s, tab.rt_end_reason),
        tab.n_free,
        tab.n_dep,
        int(tab.visits.sum()) if hops else 0,
        eligible(arr.source_start, arr.route, tab, hops),
    )


def _packets(pk: np.ndarray, p_send: np.ndarray, p_done: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "route": pk[:, 0].astype(ID_DTYPE),
        "size_bytes": pk[:, 1].astype(np.uint32),
        "send_s": p_send,
        "done_s": p_done,
        "reason": pk[:, 4].astype(ID_DTYPE),
    }


def _hops(rows: tuple, n_rows: int) -> dict[str, np.ndarray]:
    h_pkt, h_st, h_t = rows
    return {
        "packet": h_pkt[:n_rows].copy(),
        "station": h_st[:n_rows].astype(ID_DTYPE),
        "arrive_s": h_t[:n_rows, 0].copy(),
        "start_s": h_t[:n_rows, 1].copy(),
        "depart_s": h_t[:n_rows, 2].copy(),
    }


def _stations(net: Network, ss, sf, pending) -> list[StationStats]:
    from sim.engine.compiled.kernel import BUSY, MAX_N, N_ARR, N_DROP, SOJOURN, WAIT

    return [
        StationStats(
            st.name, st.kind, st.servers, int(ss[i, N_ARR]), int(ss[i, N_DROP]),
            float(sf[i, WAIT]), float(sf[i, BUSY]), float(sf[i, SOJOURN]),
            int(ss[i, MAX_N]), int(pending[i]),
        )
        for i, st in enumerate(net.stations)
    ]  # fmt: skip


def _execute_cpu(net: Network, arr: Arrivals, end_s: float, warm_s: float, hops: bool):
    """Run the CPU data path's loop; returns packets, (ss, sf, hf), pending, rows, counters."""
    from sim.engine.compiled.cpu import build_cpu_tables
    from sim.engine.compiled.cpu_loop import pending_at, run_cpu_kernel

    tab = build_cpu_tables(net, arr)
    packets, (ss, sf, _, dt, hf), rows, ctr = run_cpu_kernel(end_s, warm_s, arr, tab, hops)
    return packets, (ss, sf, hf), pending_at(end_s, tab.st_i, ss, dt), rows, ctr


def _execute_stations(net: Network, arr: Arrivals, end_s: float, warm_s: float, hops: bool):
    """Run the stations' loop; returns packets, (ss, sf, hf), pending, rows, counters."""
    from sim.engine.compiled.kernel import in_system_at

    tab = build_tables(net, arr)
    packets, (ss, sf, _, dt, _, hf), rows, ctr = execute(arr, tab, end_s, warm_s, hops)
    return packets, (ss, sf, hf), in_system_at(end_s, tab.st_i, ss, dt), rows, ctr


def simulate_compiled(
    scenario: Scenario,
    cl: Cluster,
    seed: int,
    end_s: float,
    warm_s: float,
    hops: bool,
    file: str = "<scenario>",
) -> RunResult:
    """Run ``scenario`` (all flows open loop) on the compiled engine.

    Parameters as :func:`sim.engine.run.simulate` after its checks: the built
    cluster, the seed, the run length and warm-up (seconds), per-hop records,
    the scenario file's name (for messages).
    """
    from sim.engine.compiled.kernel import N_HEAP, N_ROWS

    net = Network(scenario.costs, seed, warm_s, hops)
    cpu = scenario.datapath.model == "cpu"
    if cpu:
        net.plane = CpuPlane(net, cl, scenario.datapath, file)
    warnings: list[str] = list(cl.diagnostics)
    states = install_flows(net, cl, end_s, warnings)
    arr = generate(net)
    run = _execute_cpu if cpu else _execute_stations
    (pk, p_send, p_done), (ss, sf, hf), pending, rows, ctr = run(net, arr, end_s, warm_s, hops)
    packets = _packets(pk, p_send, p_done)
    late = (p_done > end_s) & (p_send <= end_s)
    # the recorder holds each source's first packet: its bytes per packet are the
    # SimPy engine's figure
    n_first = len(net.rec.send_s)
    flow_of, is_reply = route_flows(net, states)
    return RunResult(
        scenario=scenario,
        seed=seed,
        duration_s=end_s,
        warmup_s=warm_s,
        packets=packets,
        hops=_hops(rows, int(ctr[N_ROWS])) if hops else None,
        reasons=list(net.rec.reasons),
        route_flow=flow_of,
        route_is_reply=is_reply,
        route_names=route_names(net),
        route_stations=route_station_names(net),
        flows=states,
        stations=_stations(net, ss, sf, pending),
        in_flight_at_end=int(ctr[N_HEAP]) + int(late.sum()),
        hop_packets=split_hops(hf[:, 0].astype(np.int64), net),
        hop_sojourn_s=split_hops(hf[:, 1].copy(), net),
        warnings=warnings,
        bytes_per_packet=net.rec.nbytes() / n_first if n_first else 0.0,
        engine="compiled",
    )
