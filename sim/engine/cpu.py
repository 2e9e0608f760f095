"""CPU cores as stations: the kernel's work runs on the core that runs it.

A packet visits a core as a sequence of *segments*: the work between two queue
enqueues. A segment is appended FIFO behind what the core already has (one
server, non-preemptive), so, as for a station, the departure is known on arrival
(Lindley) and a segment costs one SimPy event. Cores are stations of kind ``cpu``
in the results.

Softirq and process context: no precedence
------------------------------------------
Softirq segments (backlog, NAPI) and process-context segments (a pod's
``sendto``/``recvfrom``) share the core's one FIFO, in the order they arrive.
Why not give softirq priority: on the send path Linux runs the softirq that
``netif_rx`` raised in the sending thread itself, at ``local_bh_enable`` right
after the enqueue, i.e. in sequence with the process work that caused it; and
when softirq work exceeds its budget (``netdev_budget`` 300 packets or
``netdev_budget_usecs`` 2 ms, sysctl ``net.rst``) it is deferred to ``ksoftirqd``,
a normal thread that the scheduler shares fairly with the pods' threads. FIFO is
the work-conserving order closest to both; priority would also cost a second
event per segment (departures no longer known on arrival). Tested in
``tests/test_engine_cpu.py``.

Queues and drop reasons
-----------------------
A :class:`Queue` holds a packet from its enqueue until the segment that dequeues
it starts (backlog, NIC receive ring) or ends (socket receive buffer, freed when
``recvfrom`` has copied it). A full queue drops the packet with its own reason.
The process-context send queue is the application's own: unlimited.
"""

from __future__ import annotations

from collections import deque

from sim.engine.events import pusher

_HUGE = 1 << 62


class Queue:
    """A drop-tail Linux queue in front of core work.

    Parameters
    ----------
    name : str
        What it is, e.g. ``node1/cpu0 backlog``.
    limit_packets : int or None
        Packets held at most; None is unlimited.
    limit_bytes : int or None
        Bytes held at most; None is unlimited.
    reason : int
        Drop reason id of the run's recorder.
    until_start : bool
        True: a packet leaves when its segment starts (backlog, rings); False:
        when it ends (socket buffer).
    """

    __slots__ = ("name", "limit", "limit_bytes", "reason", "until_start", "held", "bytes")

    def __init__(
        self,
        name: str,
        limit_packets: int | None,
        limit_bytes: int | None,
        reason: int,
        until_start: bool = True,
    ) -> None:
        self.name = name
        self.limit = limit_packets if limit_packets is not None else _HUGE
        self.limit_bytes = limit_bytes if limit_bytes is not None else _HUGE
        self.reason = reason
        self.until_start = until_start
        self.held: deque[tuple[float, int]] = deque()
        self.bytes = 0

    def admit(self, now_s: float, size_bytes: int) -> bool:
        """Whether a packet of ``size_bytes`` arriving at ``now_s`` fits."""
        held = self.held
        while held and held[0][0] <= now_s:
            self.bytes -= held.popleft()[1]
        return len(held) < self.limit and self.bytes + size_bytes <= self.limit_bytes

    def hold(self, until_s: float, size_bytes: int) -> None:
        """Keep a packet until ``until_s`` (non-decreasing: the core is FIFO)."""
        self.held.append((until_s, size_bytes))
        self.bytes += size_bytes


class Core:
    """One CPU core: a FIFO single server of segments of work.

    Parameters
    ----------
    index : int
        Position in the network's station list.
    name : str
        ``node1/cpu0``.
    backlog : Queue
        This core's per-CPU backlog (``netdev_max_backlog``).

    Notes
    -----
    The work of segment ``h`` of route ``r`` is ``work[r][h] = (a_s, b_s, queue)``:
    ``a_s + b_s * size`` seconds, entered through ``queue`` (None: no queue).
    """

    kind = "cpu"
    servers = 1
    prop = 0.0

    def __init__(self, index: int, name: str, backlog: Queue) -> None:
        self.index = index
        self.name = name
        self.backlog = backlog
        self.limit = backlog.limit
        self.free_at = 0.0
        self.deps: deque[float] = deque()
        self.n_arrivals = 0
        self.n_drops = 0
        self.wait_sum = 0.0
        self.busy_sum = 0.0
        self.sojourn_sum = 0.0
        self.max_in_system = 0

    def bind(self, net, warmup_s: float, work: list) -> None:
        """Attach the core to a running network and its segment table."""
        self.net = net
        self.warmup = warmup_s
        self.work = work
        self.push = pusher(net.env)
        self.p_route = net.pkt_route
        self.p_hop = net.pkt_hop
        self.p_size = net.pkt_size

    def service_s(self, route: int, hop: int, size_bytes: float) -> float:
        """Work of segment ``hop`` of ``route`` for a packet of ``size_bytes``, seconds."""
        a_s, b_s, _ = self.work[route][hop]
        return a_s + b_s * size_bytes

    def arrive(self, ev) -> None:
        """Take a segment: queue check, FIFO start, schedule the next element."""
        pkt = ev.pkt
        now = ev.at
        r = self.p_route[pkt]
        h = self.p_hop[pkt]
        a_s, b_s, q = self.work[r][h]
        size = self.p_size[pkt]
        if q is not None and not q.admit(now, size):
            self.net.drop(pkt, now, q.reason)
            if now >= self.warmup:
                self.n_drops += 1
            return
        free = self.free_at
        start = now if now > free else free
        dep = start + a_s + b_s * size
        self.free_at = dep
        if q is not None:
            q.hold(start if q.until_start else dep, size)
        deps = self.deps
        while deps and deps[0] <= now:
            deps.popleft()
        n = len(deps)
        deps.append(dep)
        if now >= self.warmup:
            self.n_arrivals += 1
            self.wait_sum += start - now
            self.busy_sum += dep - start
            self.sojourn_sum += dep - now
            if n >= self.max_in_system:
                self.max_in_system = n + 1
        net = self.net
        if net.hops_on:
            net.record_hop(pkt, self.index, now, start, dep)
        h += 1
        nxt = net.route_arrive[r]
        if h < len(nxt):
            self.p_hop[pkt] = h
            self.push(ev, dep, nxt[h])
        else:
            net.route_end[r](pkt, dep)

    def pending(self, t_s: float) -> int:
        """Segments on the core at ``t_s`` (waiting or in service)."""
        return sum(1 for d in self.deps if d > t_s)


class Thread:
    """An application thread in front of its core: one ``sendto`` at a time.

    A thread's next send reaches the core only when its previous send segment ends,
    so a sender offered more than its core can do waits in its own (unlimited)
    queue instead of filling the core's FIFO, and the core's other work (softirq,
    other pods' threads) is not starved behind it. Costs no event when the thread
    is idle; otherwise one (the release), which replaces the packet's arrival.

    Parameters
    ----------
    core : Core
        The core the thread runs on (``pin``/``placement``).
    """

    def __init__(self, core: Core) -> None:
        self.core = core
        self.index = core.index  # routes list the core, whose work this is
        self.busy_until = 0.0
        self.armed = False
        self.waiting: deque = deque()
        self.push = core.push

    def service_s(self, route: int, hop: int, size_bytes: float) -> float:
        """Work of the send segment, seconds (see :meth:`Core.service_s`)."""
        return self.core.service_s(route, hop, size_bytes)

    def arrive(self, ev) -> None:
        """Take a packet the application sends: to the core now, or after the last send."""
        if self.armed or self.waiting or ev.at < self.busy_until:
            self.waiting.append(ev)
            if not self.armed:
                self._arm()
            return
        self._run(ev)

    def _arm(self) -> None:
        self.armed = True
        self.push(self.waiting.popleft(), self.busy_until, self._release)

    def _release(self, ev) -> None:
        self.armed = False
        self._run(ev)

    def _run(self, ev) -> None:
        core = self.core
        core.arrive(ev)
        self.busy_until = core.free_at  # FIFO: the segment just queued ends last
        if self.waiting and not self.armed:
            self._arm()
