"""One simulation run: a pure function of (scenario, seed)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.control.cluster import Cluster, build_cluster
from sim.engine.budget import (
    DEFAULT_MAX_HOP_RECORDS,
    DEFAULT_MAX_PACKETS,
    check_work,
    estimate_work,
)
from sim.engine.cpu_routes import CpuPlane
from sim.engine.network import Network
from sim.engine.workloads import FlowState, install_flows
from sim.errors import ScenarioError
from sim.spec.scenario import Scenario


@dataclass
class StationStats:
    """Counters of one station over the measurement window."""

    name: str
    kind: str
    servers: int
    arrivals: int
    drops: int
    wait_sum_s: float
    busy_sum_s: float
    sojourn_sum_s: float
    max_in_system: int
    in_system_at_end: int


@dataclass
class RunResult:
    """Everything a run produced; summaries are computed from it afterwards.

    Attributes
    ----------
    scenario : Scenario
        The spec (unchanged).
    seed : int
        Seed used.
    duration_s, warmup_s : float
        Run length and warm-up, seconds.
    packets : dict of str to ndarray
        Per-packet columns: route, size_bytes, send_s, done_s, reason.
    hops : dict of str to ndarray or None
        Per-hop rows (packet, station, arrive_s, start_s, depart_s) if recorded.
    reasons : list of str
        Drop reasons by index (0 = none).
    route_flow : list of int
        Flow index of each route.
    route_is_reply : list of bool
        Whether a route carries replies/acks.
    route_names : list of str
        ``src -> dst`` of each route.
    route_stations : list of tuple of str
        Station names of each route.
    flows : list of FlowState
        Per-flow state (rates, round-trip times).
    stations : list of StationStats
        Per-station counters.
    in_flight_at_end : int
        Packets sent by the end still travelling, counted from SimPy's event queue
        and station buffers (independent of the per-packet columns).
    warnings : list of str
        Warnings raised while setting up.
    bytes_per_packet : float
        Memory of the per-packet columns divided by packets.
    engine : str
        The engine that ran: ``simpy`` or ``compiled`` (identical results).
    hop_packets : list of ndarray
        Per route, the packets each hop (``route_stations``) took after the
        warm-up (those arriving at or after it; int64).
    hop_sojourn_s : list of ndarray
        Per route, their summed sojourn (queueing + service) at each hop, s: a
        flow's own mean time at a station, where a station's counters mix every
        flow that crosses it.
    """

    scenario: Scenario
    seed: int
    duration_s: float
    warmup_s: float
    packets: dict[str, np.ndarray]
    hops: dict[str, np.ndarray] | None
    reasons: list[str]
    route_flow: list[int]
    route_is_reply: list[bool]
    route_names: list[str]
    route_stations: list[tuple[str, ...]]
    flows: list[FlowState]
    stations: list[StationStats]
    in_flight_at_end: int
    warnings: list[str] = field(default_factory=list)
    bytes_per_packet: float = 0.0
    events: int = 0
    engine: str = "simpy"
    hop_packets: list[np.ndarray] = field(default_factory=list)
    hop_sojourn_s: list[np.ndarray] = field(default_factory=list)


def simulate(
    scenario: Scenario,
    *,
    seed: int | None = None,
    duration_s: float | None = None,
    warmup_s: float | None = None,
    record_hops: bool | None = None,
    cluster: Cluster | None = None,
    file: str = "<scenario>",
    max_packets: float = DEFAULT_MAX_PACKETS,
    max_hop_records: float = DEFAULT_MAX_HOP_RECORDS,
    engine: str = "simpy",
) -> RunResult:
    """Run the packet simulation of ``scenario``.

    Parameters
    ----------
    scenario : Scenario
        The validated scenario (never mutated).
    seed : int, optional
        Overrides ``scenario.simulation.seed``.
    duration_s, warmup_s : float, optional
        Override the run length and warm-up, seconds.
    record_hops : bool, optional
        Keep per-station rows for every packet.
    cluster : Cluster, optional
        A cluster already built from ``scenario``.
    file : str
        Scenario file name for messages.
    max_packets, max_hop_records : float
        Ceilings on the estimated work (:mod:`sim.engine.budget`); past one the
        run does not start.
    engine : {"simpy", "compiled", "auto"}
        ``auto`` runs the compiled engine when the scenario qualifies
        (:mod:`sim.engine.compiled.select`); the results are identical.

    Returns
    -------
    RunResult
    """
    seed, end_s, warm_s, hops = _run_window(
        scenario, seed, duration_s, warmup_s, record_hops, file
    )
    cl = cluster if cluster is not None else build_cluster(scenario, file)
    work = estimate_work(scenario, cl, duration_s=end_s, record_hops=hops, file=file)
    check_work(work, max_packets=max_packets, max_hop_records=max_hop_records, file=file)
    if engine != "simpy":
        from sim.engine.compiled.select import choose

        if choose(scenario, engine, file)[0] == "compiled":
            from sim.engine.compiled.run import simulate_compiled

            return simulate_compiled(scenario, cl, seed, end_s, warm_s, hops, file)
    return _simulate_simpy(scenario, cl, seed, end_s, warm_s, hops, file)


def _simulate_simpy(
    scenario: Scenario,
    cl: Cluster,
    seed: int,
    end_s: float,
    warm_s: float,
    hops: bool,
    file: str,
) -> RunResult:
    """Run the SimPy engine, after :func:`simulate`'s checks (times in seconds)."""
    net = Network(scenario.costs, seed, warm_s, hops)
    if scenario.datapath.model == "cpu":
        net.plane = CpuPlane(net, cl, scenario.datapath, file)
    warnings: list[str] = list(cl.diagnostics)
    states = install_flows(net, cl, end_s, warnings)
    net.env.run(until=end_s)
    packets = net.rec.to_numpy()
    # in flight = pending arrival events + packets whose delivery lies after the end
    late = (packets["done_s"] > end_s) & (packets["send_s"] <= end_s)
    route_flow, is_reply = route_flows(net, states)
    n_pkts = len(net.rec.send_s)
    return RunResult(
        scenario=scenario,
        seed=seed,
        duration_s=end_s,
        warmup_s=warm_s,
        packets=packets,
        hops=net.rec.hops_to_numpy(),
        reasons=list(net.rec.reasons),
        route_flow=route_flow,
        route_is_reply=is_reply,
        route_names=route_names(net),
        route_stations=route_station_names(net),
        flows=states,
        stations=[_station_stats(s, end_s) for s in net.stations],
        in_flight_at_end=net.in_flight_events(end_s) + int(late.sum()),
        warnings=warnings,
        bytes_per_packet=net.rec.nbytes() / n_pkts if n_pkts else 0.0,
        hop_packets=[np.array(h, dtype=np.int64) for h in net.hop_packets],
        hop_sojourn_s=[np.array(h, dtype=np.float64) for h in net.hop_sojourn],
    )


def split_hops(flat: np.ndarray, net: Network) -> list[np.ndarray]:
    """Split a per-hop column over every route's hops (route order) into one array per route."""
    ends = np.cumsum([len(h) for h in net.route_stations])
    return np.split(flat, ends[:-1]) if len(ends) else []


def _run_window(
    scenario: Scenario,
    seed: int | None,
    duration_s: float | None,
    warmup_s: float | None,
    record_hops: bool | None,
    file: str,
) -> tuple[int, float, float, bool]:
    """Seed, run length (s), warm-up (s) and hop recording: the scenario's or the overrides'."""
    sim = scenario.simulation
    seed = sim.seed if seed is None else seed
    end_s = sim.duration_s if duration_s is None else duration_s
    warm_s = sim.warmup_s if warmup_s is None else warmup_s
    hops = sim.record_hops if record_hops is None else record_hops
    if not (math.isfinite(end_s) and end_s > 0 and 0 <= warm_s < end_s):
        # the scenario file is checked when loaded; overrides given here are not
        raise ScenarioError(
            f"need 0 <= warm-up < duration, got warm-up {warm_s} s and duration {end_s} s",
            file=file,
            field="simulation.warmup_s",
            fix="make warmup_s smaller than duration_s (or pass a longer duration_s)",
        )
    return seed, end_s, warm_s, hops


def route_flows(net: Network, states: list[FlowState]) -> tuple[list[int], list[bool]]:
    """Each route's flow index, and whether it carries that flow's replies or acks."""
    route_flow: list[int] = [0] * len(net.routes)
    is_reply: list[bool] = [False] * len(net.routes)
    for fi, st in enumerate(states):
        for r in st.routes:
            route_flow[r] = fi
        for r in st.reply_routes:
            route_flow[r] = fi
            is_reply[r] = True
    return route_flow, is_reply


def route_names(net: Network) -> list[str]:
    """``src -> dst`` of each route."""
    return [f"{p.src.name} -> {p.dst.name}" for p in net.routes]


def route_station_names(net: Network) -> list[tuple[str, ...]]:
    """Return the station names each route crosses, in order."""
    return [tuple(net.stations[i].name for i in rs) for rs in net.route_stations]


def _station_stats(s, end_s: float) -> StationStats:
    """One station's counters over the measurement window (SimPy engine)."""
    return StationStats(
        s.name,
        s.kind,
        s.servers,
        s.n_arrivals,
        s.n_drops,
        s.wait_sum,
        s.busy_sum,
        s.sojourn_sum,
        s.max_in_system,
        s.pending(end_s),
    )
