"""Queueing stations: one per physical element and direction.

A station is a FIFO queue with ``servers`` servers and a drop-tail buffer that
counts packets waiting *and* in service. A packet's service time is::

    per_packet + per_byte * size (+ serialization of size+framing at the link rate)
        + the route's extra cost at this hop (SNAT/de-NAT)

scaled by an Exp(1) draw for ``service = "exponential"``; after service the
packet propagates for ``propagation`` without holding the server. With ``loss``
> 0 a packet arriving is lost with that probability (drop reason ``random_loss``),
before the buffer test, from the station's own random stream.

Because service is FIFO, a station computes a packet's departure when it
arrives (Lindley: ``start = max(arrival, earliest free server)``) and schedules
the packet's arrival at the next station straight away: one SimPy event per
packet-hop, no process, no Resource. The number in the system at time ``t`` is
the number of departure times still ahead of ``t``.

Counters (arrivals, drops, waiting/busy/sojourn sums, max number in system) are
accumulated for packets arriving at or after the warm-up; so are, per route and
hop, the packets taken and their sojourn sum (``Network.hop_packets``,
``hop_sojourn``), from which a flow's own time at each station of its path is
read (a station's sums mix every flow that crosses it).
"""

from __future__ import annotations

from collections import deque
from heapq import heappop, heappush

import numpy as np

from sim.engine.events import pusher

#: The limit of an unlimited buffer (``buffer_packets = "unlimited"``), packets or
#: bytes: larger than any count a run can reach, and still an exact int64.
UNLIMITED = 1 << 62
_BLOCK = 4096


class Station:
    """Single-server FIFO station with a packet-count buffer (the fast path).

    Parameters
    ----------
    index : int
        Position in the network's station list.
    name, kind : str
        Station name (``node1/cbr0``) and kind (``bridge``).
    per_packet_s, per_byte_s : float
        Service time per packet and per byte, seconds (per_byte includes
        serialization at the link rate).
    propagation_s : float
        Propagation delay after service, seconds.
    buffer_packets : int or None
        Drop-tail limit on packets in the station; None is unlimited.
    rng : numpy.random.Generator or None
        Stream for exponential service; None for deterministic service.
    loss : float
        Probability that an arriving packet is lost (0: never).
    loss_rng : numpy.random.Generator or None
        Stream of the loss draws (needed when ``loss`` > 0).
    """

    __slots__ = (
        "index",
        "name",
        "kind",
        "a",
        "b",
        "prop",
        "limit",
        "limit_bytes",
        "bytes_in",
        "servers",
        "rng",
        "_draws",
        "_di",
        "free_at",
        "deps",
        "net",
        "warmup",
        "n_arrivals",
        "n_drops",
        "wait_sum",
        "busy_sum",
        "sojourn_sum",
        "max_in_system",
        "drop_reason",
        "arrive",
        "push",
        "p_route",
        "p_hop",
        "p_size",
        "r_extra",
        "r_arrive",
        "r_end",
        "r_hop_n",
        "r_hop_s",
        "hops_on",
        "loss",
        "loss_rng",
        "_loss_draws",
        "_li",
        "loss_reason",
    )

    def __init__(
        self,
        index: int,
        name: str,
        kind: str,
        per_packet_s: float,
        per_byte_s: float,
        propagation_s: float,
        buffer_packets: int | None,
        buffer_bytes: int | None = None,
        servers: int = 1,
        rng: np.random.Generator | None = None,
        loss: float = 0.0,
        loss_rng: np.random.Generator | None = None,
    ) -> None:
        self.index = index
        self.name = name
        self.kind = kind
        self.a = per_packet_s
        self.b = per_byte_s
        self.prop = propagation_s
        self.limit = buffer_packets if buffer_packets is not None else UNLIMITED
        self.limit_bytes = buffer_bytes
        self.bytes_in = 0  # bytes of the packets in ``deps`` (general path only)
        self.servers = servers
        self.rng = rng
        self._draws: list[float] = []
        self._di = 0
        self.free_at = 0.0
        self.deps: deque[float] = deque()
        self.net = None
        self.warmup = 0.0
        self.n_arrivals = 0
        self.n_drops = 0
        self.wait_sum = 0.0
        self.busy_sum = 0.0
        self.sojourn_sum = 0.0
        self.max_in_system = 0
        self.drop_reason = 0
        self.loss = loss
        self.loss_rng = loss_rng
        self._loss_draws: list[float] = []
        self._li = 0
        self.loss_reason = 0
        fast = servers == 1 and buffer_bytes is None and rng is None and loss == 0.0
        self.arrive = self._arrive_fast if fast else self._arrive_general

    def bind(self, net, warmup_s: float, drop_reason: int) -> None:
        """Attach the station to a running network (shared packet columns, routes)."""
        self.net = net
        self.warmup = warmup_s
        self.drop_reason = drop_reason
        # direct references to the network's shared columns: the hot path reads
        # them as slots instead of through ``net``
        self.push = pusher(net.env)  # re-schedules the arrival event: sim.engine.events
        self.p_route = net.pkt_route
        self.p_hop = net.pkt_hop
        self.p_size = net.pkt_size
        self.r_extra = net.route_extra
        self.r_arrive = net.route_arrive
        self.r_end = net.route_end
        self.r_hop_n = net.hop_packets
        self.r_hop_s = net.hop_sojourn
        self.hops_on = net.hops_on
        if self.servers > 1:
            self.deps = []  # heap of departure times
            self.free_at = [0.0] * self.servers  # heap of server free times

    def service_s(self, route: int, hop: int, size_bytes: float) -> float:
        """Mean service time at hop ``hop`` of ``route`` for ``size_bytes``, seconds."""
        return self.a + self.b * size_bytes + self.net.route_extra[route][hop]

    def _exp(self) -> float:
        i = self._di
        if i >= len(self._draws):
            self._draws = self.rng.standard_exponential(_BLOCK).tolist()
            i = 0
        self._di = i + 1
        return self._draws[i]

    def _lost(self) -> bool:
        """Whether the arriving packet is lost (one uniform draw per arrival)."""
        i = self._li
        if i >= len(self._loss_draws):
            self._loss_draws = self.loss_rng.random(_BLOCK).tolist()
            i = 0
        self._li = i + 1
        return self._loss_draws[i] < self.loss

    # The hot path. Deterministic service, one server, packet-count buffer.
    # The arrival event ``ev`` has been processed by SimPy when this runs, so it
    # is reused for the packet's next hop (saves an allocation per hop).
    def _arrive_fast(self, ev) -> None:
        pkt = ev.pkt
        now = ev.at
        deps = self.deps
        while deps and deps[0] <= now:
            deps.popleft()
        n = len(deps)
        if n >= self.limit:
            self.net.drop(pkt, now, self.drop_reason)
            if now >= self.warmup:
                self.n_drops += 1
            return
        r = self.p_route[pkt]
        h = self.p_hop[pkt]
        service = self.a + self.b * self.p_size[pkt] + self.r_extra[r][h]
        free = self.free_at
        start = now if now > free else free
        dep = start + service
        self.free_at = dep
        deps.append(dep)
        if now >= self.warmup:
            self.n_arrivals += 1
            self.wait_sum += start - now
            self.busy_sum += service
            stay = dep - now
            self.sojourn_sum += stay
            self.r_hop_n[r][h] += 1
            self.r_hop_s[r][h] += stay
            if n >= self.max_in_system:
                self.max_in_system = n + 1
        if self.hops_on:
            self.net.record_hop(pkt, self.index, now, start, dep)
        h += 1
        nxt = self.r_arrive[r]
        if h < len(nxt):
            self.p_hop[pkt] = h
            self.push(ev, dep + self.prop, nxt[h])
        else:
            self.r_end[r](pkt, dep + self.prop)

    # Several servers, a byte limit, or exponential service. Deliberately a copy of
    # the fast path with these features added, so the common case pays no branch.
    def _arrive_general(self, ev) -> None:
        pkt = ev.pkt
        net = self.net
        now = ev.at
        deps = self.deps
        size = net.pkt_size[pkt]
        multi = self.servers > 1
        # a running byte count: summing the queue at each arrival made an
        # overloaded byte-limited station quadratic in its queue length
        if multi:
            while deps and deps[0][0] <= now:
                self.bytes_in -= heappop(deps)[1]
        else:
            while deps and deps[0][0] <= now:
                self.bytes_in -= deps.popleft()[1]
        n = len(deps)
        if self.loss and self._lost():
            net.drop(pkt, now, self.loss_reason)
            if now >= self.warmup:
                self.n_drops += 1
            return
        full = n >= self.limit
        if not full and self.limit_bytes is not None:
            full = self.bytes_in + size > self.limit_bytes
        if full:
            net.drop(pkt, now, self.drop_reason)
            if now >= self.warmup:
                self.n_drops += 1
            return
        r = net.pkt_route[pkt]
        h = net.pkt_hop[pkt]
        service = self.a + self.b * size + net.route_extra[r][h]
        if self.rng is not None:
            service *= self._exp()
        if multi:
            free = heappop(self.free_at)
            start = now if now > free else free
            dep = start + service
            heappush(self.free_at, dep)
            heappush(deps, (dep, size))
            self.bytes_in += size
        else:
            free = self.free_at
            start = now if now > free else free
            dep = start + service
            self.free_at = dep
            deps.append((dep, size))
            self.bytes_in += size
        if now >= self.warmup:
            self.n_arrivals += 1
            self.wait_sum += start - now
            self.busy_sum += service
            stay = dep - now
            self.sojourn_sum += stay
            self.r_hop_n[r][h] += 1
            self.r_hop_s[r][h] += stay
            if n >= self.max_in_system:
                self.max_in_system = n + 1
        if net.hops_on:
            net.record_hop(pkt, self.index, now, start, dep)
        h += 1
        nxt = net.route_arrive[r]
        if h < len(nxt):
            net.pkt_hop[pkt] = h
            self.push(ev, dep + self.prop, nxt[h])
        else:
            net.route_end[r](pkt, dep + self.prop)

    def pending(self, t_s: float) -> int:
        """Packets in the system at ``t_s`` (waiting or in service)."""
        if self.deps and isinstance(self.deps[0], tuple):
            return sum(1 for d, _ in self.deps if d > t_s)
        return sum(1 for d in self.deps if d > t_s)
