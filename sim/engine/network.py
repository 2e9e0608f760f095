"""The data plane of one run.

Stations built from the cluster, routes compiled from resolved paths, and the
shared packet columns the stations work on.

A *route* is one resolved :class:`~sim.control.resolve.Route` compiled to a tuple
of station ``arrive`` callbacks and per-hop extra costs (SNAT/de-NAT). Every flow
crossing an element shares that element's station, so flows contend.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np
import simpy

from sim.control.resolve import Route
from sim.engine.events import pending_packets, scheduler
from sim.engine.recorder import Recorder
from sim.engine.stations import Station
from sim.spec.costs import Costs, StationCost

US = 1e-6
NS = 1e-9
#: Drop reason of a packet lost at random at a station with ``loss`` > 0.
RANDOM_LOSS = "random_loss"


def stream(seed: int, *key: str | int) -> np.random.Generator:
    """Independent random stream for ``key`` under ``seed``.

    The stream depends only on the seed and the key (e.g. a flow name and a
    purpose), so the same flow gets the same numbers in every configuration it
    appears in: common random numbers across compared configurations.
    """
    spawn_key = tuple(k if isinstance(k, int) else zlib.crc32(k.encode()) for k in key)
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def cost_of(costs: Costs, kind: str) -> StationCost:
    """Return the :class:`StationCost` for a station kind."""
    return getattr(costs, kind)


class Network:
    """Stations, routes and packet columns of one run.

    Parameters
    ----------
    costs : Costs
        Cost parameters of every station kind.
    seed : int
        Base seed (exponential-service stations get their own streams).
    warmup_s : float
        Warm-up, seconds; station counters start after it.
    record_hops : bool
        Keep per-hop rows.
    """

    def __init__(self, costs: Costs, seed: int, warmup_s: float, record_hops: bool) -> None:
        self.env = simpy.Environment()
        self.schedule = scheduler(self.env)
        self.costs = costs
        self.seed = seed
        self.warmup = warmup_s
        self.rec = Recorder()
        if record_hops:
            self.rec.enable_hops()
        self.hops_on = record_hops
        self.pkt_route = self.rec.route
        self.pkt_size = self.rec.size
        self.pkt_hop = self.rec.hop
        self.stations: list[Station] = []
        self.by_name: dict[str, Station] = {}
        self.routes: list[Route] = []
        self.route_arrive: list[tuple[Callable, ...]] = []
        self.route_extra: list[tuple[float, ...]] = []
        self.route_end: list[Callable[[int, float], None]] = []
        self.route_drop: list[Callable[[int, float], None] | None] = []
        self.route_stations: list[tuple[int, ...]] = []
        # per route and hop, after the warm-up: packets taken and their sojourn sum (s)
        self.hop_packets: list[list[int]] = []
        self.hop_sojourn: list[list[float]] = []
        self.plane = None  # the CPU data path's compiler when model = "cpu"

    # -- building -------------------------------------------------------------------
    def station(self, name: str, kind: str) -> Station:
        """Return the station called ``name``, created on first use."""
        st = self.by_name.get(name)
        if st is not None:
            return st
        c = cost_of(self.costs, kind)
        per_packet_s, per_byte_s = c.service_terms_s()
        rng = stream(self.seed, "station", name) if c.service == "exponential" else None
        loss_rng = stream(self.seed, "station", name, "loss") if c.loss > 0 else None
        st = Station(
            len(self.stations),
            name,
            kind,
            per_packet_s,
            per_byte_s,
            c.propagation_us * US,
            c.buffer_packets,
            c.buffer_bytes,
            c.servers,
            rng,
            c.loss,
            loss_rng,
        )
        st.bind(self, self.warmup, self.rec.reason_id(f"buffer full at {name}"))
        if c.loss > 0:
            st.loss_reason = self.rec.reason_id(RANDOM_LOSS)
        self.stations.append(st)
        self.by_name[name] = st
        return st

    def add_route(self, path: Route) -> int:
        """Compile ``path`` into a route; returns its index.

        The route ends in :meth:`deliver` (delivered) or a drop with the path's
        reason (no route, no neighbour, misdelivered).
        """
        r = len(self.routes)
        if self.plane is not None:  # model = "cpu": cores and wires (sim.engine.cpu_routes)
            sts = self.plane.compile(path, r)
            extra = (0.0,) * len(sts)
        else:
            sts = [self.station(h.station, h.kind) for h in path.hops]
            nat_s = self.costs.nat_extra_us * US
            extra = tuple(nat_s if h.nat else 0.0 for h in path.hops)
        arrive = tuple(s.arrive for s in sts)
        if not arrive:  # dropped before the first station (e.g. no route at the sender)

            def arrive_now(ev, r=r):
                self.route_end[r](ev.pkt, ev.at)

            arrive = (arrive_now,)
            extra = (0.0,)
        self.routes.append(path)
        self.route_arrive.append(arrive)
        self.route_extra.append(extra)
        self.route_stations.append(tuple(s.index for s in sts))
        self.hop_packets.append([0] * len(sts))
        self.hop_sojourn.append([0.0] * len(sts))
        if path.verdict == "delivered":
            self.route_end.append(self.deliver)
        else:
            reason = path.reason if path.verdict == "dropped" else f"misdelivered: {path.reason}"
            rid = self.rec.reason_id(reason)

            def end_drop(pkt: int, t: float, rid: int = rid) -> None:
                self.drop(pkt, t, rid)

            self.route_end.append(end_drop)
        self.route_drop.append(None)
        return r

    def _work_by_station(self, route: int, size_bytes: float) -> dict[int, float]:
        """Service time a packet of ``size_bytes`` brings to each station of a route, s.

        A station visited more than once (a CPU core) adds up its visits.
        """
        work: dict[int, float] = {}
        for h, st_idx in enumerate(self.route_stations[route]):
            service = self.stations[st_idx].service_s(route, h, size_bytes)
            work[st_idx] = work.get(st_idx, 0.0) + service
        return work

    def capacity_pps(self, route: int, size_bytes: float) -> float:
        """Bottleneck capacity of a route for packets of ``size_bytes``, packets/s.

        A station with zero service time has unlimited capacity; ``inf`` if all do.
        """
        path_cap = float("inf")
        for st_idx, service in self._work_by_station(route, size_bytes).items():
            if service > 0:
                path_cap = min(path_cap, self.stations[st_idx].servers / service)
        return path_cap

    def bottleneck(self, route: int, size_bytes: float) -> str:
        """Name of the station limiting a route's capacity."""
        best, name = float("inf"), ""
        for st_idx, service in self._work_by_station(route, size_bytes).items():
            st = self.stations[st_idx]
            cap = st.servers / service if service > 0 else float("inf")
            if cap < best or not name:
                best, name = cap, st.name
        return name

    # -- packet life ------------------------------------------------------------------
    def send(self, route: int, size_bytes: int, at_s: float) -> int:
        """Create a packet on ``route`` sent at ``at_s``; schedule its first arrival."""
        pkt = self.rec.new_packet(route, size_bytes, at_s)
        self.schedule(at_s, pkt, self.route_arrive[route][0])
        return pkt

    def deliver(self, pkt: int, t_s: float) -> None:
        """Record delivery of ``pkt`` at ``t_s``."""
        self.rec.done_s[pkt] = t_s

    def drop(self, pkt: int, t_s: float, reason: int) -> None:
        """Record a drop and tell the flow (closed-loop flows resend)."""
        self.rec.done_s[pkt] = t_s
        self.rec.reason[pkt] = reason
        hook = self.route_drop[self.pkt_route[pkt]]
        if hook is not None:
            hook(pkt, t_s)

    def record_hop(self, pkt: int, station: int, arrive: float, start: float, dep: float) -> None:
        """Append a per-hop row (only with ``record_hops``)."""
        rec = self.rec
        rec.hop_pkt.append(pkt)
        rec.hop_station.append(station)
        rec.hop_arrive_s.append(arrive)
        rec.hop_start_s.append(start)
        rec.hop_depart_s.append(dep)

    def in_flight_events(self, t_s: float) -> int:
        """Packets sent by ``t_s`` with an arrival still pending in SimPy's queue."""
        send = self.rec.send_s
        n = 0
        for v in pending_packets(self.env):
            if send[v] <= t_s:
                n += 1
        if self.plane is not None:  # packets waiting for their sending thread (cpu model)
            n += self.plane.held_packets(t_s)
        return n
