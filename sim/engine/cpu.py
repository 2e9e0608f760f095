"""CPU cores as stations: the kernel's work runs on the core that runs it.

A packet visits a core as a sequence of *segments*: the work between two queue
enqueues. A segment is appended FIFO behind what the core already has (one
server, non-preemptive), so, as for a station, the departure is known on arrival
(Lindley) and a segment costs one SimPy event. Cores are stations of kind ``cpu``
in the results.

Softirq and process context: no precedence within a turn
---------------------------------------------------------
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

Threads sharing a core: the scheduler's slice
----------------------------------------------
Between threads the order is not FIFO. A :class:`Reader` woken by a datagram
while a thread keeps its core busy (a flooding sender, :class:`Thread`) runs at
once if the scheduler owes it time (EEVDF's wake-up preemption; its lag, see
:class:`Reader`); otherwise it waits until the sender's time slice ends, while
the sender's own softirq (run inline, at ``local_bh_enable``) keeps delivering
into the reader's socket buffer. Linux
6.x's EEVDF scheduler gives a task ``sched_base_slice`` = 0.75 ms x (1 +
log2(min(cpus, 8))) and, without the high-resolution tick (sched feature
``HRTICK`` off by default), takes the core back only at the scheduler tick
after the slice is used (``CONFIG_HZ`` = 250 here: 4 ms); kernel
``kernel/sched/fair.c`` (``update_curr``, ``update_deadline``) and
``Documentation/scheduler/sched-eevdf.rst``. So the slice is a
``[datapath]`` parameter (``sched_slice_us``). When it ends, the reader drains
what its socket holds (each datagram one ``recvfrom`` segment, FIFO) and the
sender gets a new slice after it; the wait has earned the reader time, so it
then reads datagram by datagram until that is spent. A sender that sends more
per slice than the socket buffer holds loses the rest at the socket buffer
(``UdpRcvbufErrors``), never at the backlog: what the kernel does with both ends
on one core (``docs/testbed.md``, round 4, traces the kernel doing both).

Real-time threads: preemptive priority
--------------------------------------
A pod listed in ``[datapath] realtime`` runs its threads at real-time priority
(``chrt --fifo``, ``SCHED_FIFO``): the scheduler runs such a thread as soon as it
is runnable, preempting any normal-priority thread (``sched(7)``: "a
SCHED_FIFO thread that becomes runnable ... will always immediately preempt any
currently running SCHED_OTHER ... thread"). Its segments (its syscalls and the
softirq they run inline) therefore wait only for other real-time work: on a
core, real-time segments are served FIFO among themselves, ahead of every
normal segment, preempt-resume. Departures stay exact without a second event
per segment in the common case: a real-time segment's departure is known on
arrival (Lindley over real-time work alone); a normal segment on a core that
has real-time work gets the departure its core's whole unfinished work gives
(work conservation) and, when that time comes, is pushed back by the real-time
work that arrived meanwhile (one more event per such arrival), which is exactly
when it ends under preempt-resume priority (tested against the M/G/1
preemptive-priority formulas in ``tests/test_engine_cpu.py``). Simplifications:
softirq sections are not preemptible in Linux, so a real-time thread can wait
for the residual of one normal segment, not modelled; a normal segment's queue
occupancy (backlog, socket buffer) is released at its departure as first
computed, so a queue may free a preempted packet's space up to the preempting
work early; a real-time reader does not wait for a normal sender's slice (it
preempts it), but does for a real-time sender's slice.

Queues and drop reasons
-----------------------
A :class:`Queue` holds a packet from its enqueue until the segment that dequeues
it starts (backlog, NIC receive ring) or ends (socket receive buffer, freed when
``recvfrom`` has copied it). A full queue drops the packet with its own reason.
The process-context send queue is the application's own: unlimited.
"""

from __future__ import annotations

from collections import deque

from simpy.events import Event

from sim.engine.events import pusher
from sim.engine.stations import UNLIMITED as _HUGE


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

    def reserve(self, size_bytes: int) -> None:
        """Hold a packet whose release time is not known yet (its reader is descheduled)."""
        self.held.append((_HUGE, size_bytes))
        self.bytes += size_bytes

    def settle(self, until_s: float) -> None:
        """Give the oldest reserved packet its release time (the reserved are the last)."""
        held = self.held
        i = len(held) - 1
        while i > 0 and held[i - 1][0] == _HUGE:
            i -= 1
        held[i] = (until_s, held[i][1])

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
        self.threads: list[Thread] = []  # sending threads on this core (scheduler slices)
        self.last_dep = 0.0  # departure of the segment last taken (as first computed)
        self.has_rt = False  # a real-time thread runs here: normal work can be preempted
        self.rt_free_at = 0.0  # when the real-time work taken so far is done
        self.rt_work_s = 0.0  # real-time work taken so far, s
        self.preempted: dict[int, tuple] = {}  # packet -> (rt_work_s then, arrival, start, counted)

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

    def arrive(self, ev, rt: bool = False) -> None:
        """Take an arriving segment: queue check, FIFO start, schedule the next element.

        Parameters
        ----------
        ev : Arrival
            The packet's event, at the segment's arrival time.
        rt : bool, default False
            The segment runs in a real-time thread: it waits for real-time work only.
        """
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
        free = self.rt_free_at if rt else self.free_at
        start = now if now > free else free
        dep = start + a_s + b_s * size
        if rt:
            self._take_rt(now, dep - start)
            self.rt_free_at = dep
        else:
            self.free_at = dep
        self.last_dep = dep
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
            stay = dep - now
            self.sojourn_sum += stay
            self.net.hop_packets[r][h] += 1
            self.net.hop_sojourn[r][h] += stay
            if n >= self.max_in_system:
                self.max_in_system = n + 1
        if self.has_rt and not rt:  # real-time work arriving meanwhile pushes it back
            self.preempted[pkt] = (self.rt_work_s, now, start, now >= self.warmup)
            self.push(ev, dep, self._settle)
            return
        net = self.net  # _forward, inlined: this is the per-segment hot path
        if net.hops_on:
            net.record_hop(pkt, self.index, now, start, dep)
        h += 1
        nxt = net.route_arrive[r]
        if h < len(nxt):
            self.p_hop[pkt] = h
            self.push(ev, dep, nxt[h])
        else:
            net.route_end[r](pkt, dep)

    def _take_rt(self, now_s: float, work_s: float) -> None:
        """Add real-time work to the core's unfinished work (normal work waits for it)."""
        free = self.free_at
        self.free_at = (now_s if now_s > free else free) + work_s
        self.rt_work_s += work_s

    def _settle(self, ev) -> None:
        """End a normal segment, or push it back by the real-time work since its last check."""
        pkt = ev.pkt
        seen, arrive, start, counted = self.preempted[pkt]
        extra = self.rt_work_s - seen
        if extra > 0.0:
            self.preempted[pkt] = (self.rt_work_s, arrive, start, counted)
            if counted:
                self.wait_sum += extra
                self.sojourn_sum += extra
                self.net.hop_sojourn[self.p_route[pkt]][self.p_hop[pkt]] += extra
            self.push(ev, ev.at + extra, self._settle)
            return
        del self.preempted[pkt]
        self._forward(ev, arrive, start, ev.at)

    def _forward(self, ev, arrive_s: float, start_s: float, dep_s: float) -> None:
        """Send the packet on to its route's next element at ``dep_s`` (or end the route)."""
        pkt, net = ev.pkt, self.net
        r = self.p_route[pkt]
        if net.hops_on:
            net.record_hop(pkt, self.index, arrive_s, start_s, dep_s)
        h = self.p_hop[pkt] + 1
        nxt = net.route_arrive[r]
        if h < len(nxt):
            self.p_hop[pkt] = h
            self.push(ev, dep_s, nxt[h])
        else:
            net.route_end[r](pkt, dep_s)

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
    rt : bool, default False
        The thread runs at real-time priority (``[datapath] realtime``).
    pod : str, default ""
        The endpoint (pod, node, host) whose sends it makes.
    """

    def __init__(self, core: Core, rt: bool = False, pod: str = "") -> None:
        self.core = core
        self.rt = rt
        self.pod = pod
        core.has_rt = core.has_rt or rt
        self.index = core.index  # routes list the core, whose work this is
        self.busy_until = 0.0
        self.slice_start = 0.0  # start of the current run of back-to-back sends
        self.armed = False
        self.waiting: deque = deque()
        self.push = core.push
        core.threads.append(self)

    def holds(self, now_s: float) -> bool:
        """Whether the thread is in a run of back-to-back sends at ``now_s`` (holds the core)."""
        busy = self.armed or bool(self.waiting) or now_s < self.busy_until
        return busy and self.slice_start <= now_s

    def service_s(self, route: int, hop: int, size_bytes: float) -> float:
        """Work of the send segment, seconds (see :meth:`Core.service_s`)."""
        return self.core.service_s(route, hop, size_bytes)

    def arrive(self, ev) -> None:
        """Send a packet of the application: to the core now, or after the last send."""
        if self.armed or self.waiting or ev.at < self.busy_until:
            self.waiting.append(ev)
            if not self.armed:
                self._arm()
            return
        if ev.at > self.busy_until or not self.holds(ev.at):
            self.slice_start = ev.at  # the thread was idle: a new run begins
        self._run(ev)

    def _arm(self) -> None:
        self.armed = True
        self.push(self.waiting.popleft(), self.busy_until, self._release)

    def _release(self, ev) -> None:
        self.armed = False
        self._run(ev)

    def _run(self, ev) -> None:
        core = self.core
        core.arrive(ev, self.rt)
        self.busy_until = core.last_dep
        if self.waiting and not self.armed:
            self._arm()


class Reader:
    """A receiving thread: ``recvfrom`` of one socket, process context on its core.

    With no sending thread in a run of sends on its core, each datagram's
    ``recvfrom`` segment joins the core's FIFO on arrival (as any segment). While
    such a thread holds the core, a datagram that wakes the reader is read at
    once if the reader is owed time (wake-up preemption, see below); otherwise
    datagrams wait in the socket buffer (their bytes charged at once) until the
    thread's slice ends or it stops sending (one event per send segment
    meanwhile); then all of them are read back to back and the thread's next
    slice starts after them.

    Wake-up preemption (normal priority only): Linux's EEVDF scheduler runs a
    woken task at once when it is *eligible*, i.e. owed time (its lag, fair
    share minus time received, is positive), and otherwise lets the running task
    finish its slice (``check_preempt_wakeup_fair``, ``pick_eevdf`` in
    ``kernel/sched/fair.c``; ``Documentation/scheduler/sched-eevdf.rst``). The
    reader's lag, with the sender as the core's other task (equal weights, each
    owed half of the time both are runnable): a datagram read by preemption
    costs it half its ``recvfrom`` work (the sender waits meanwhile); waiting
    out a slice earns it half the wait, and the read-back after it costs half
    the work read. So a flood alternates datagram by datagram until the lag is
    spent, then the reader waits out one slice, as the kernel's trace shows
    (``docs/testbed.md``, round 4). The time owed is capped at one slice (EEVDF
    bounds lag by its slice or tick); a debt (a read-back longer than the wait
    before it) is not bounded, and later waits pay it back. Only another
    endpoint's thread is such a rival: the model's sending thread of the reader's
    own endpoint stands for sends a real receiver makes from its own context
    (TCP's acknowledgements, a server's replies), so there the reader waits as
    for any holder and keeps no lag. A real-time reader never waits for a
    normal sender; between real-time threads (``SCHED_FIFO``) there is no
    wake-up preemption.

    Parameters
    ----------
    core : Core
        The receiver's core.
    sock : Queue
        The socket receive buffer (bytes; ``until_start`` False).
    slice_s : float
        The scheduler's slice (``sched_slice_us``), seconds.
    truesize : (float, float)
        Bytes charged per datagram: ``a + b * size`` (the skb's truesize).
    rt : bool, default False
        The thread runs at real-time priority: it preempts normal-priority senders
        instead of waiting for their slice.
    pod : str, default ""
        The endpoint (pod, node, host) whose socket it reads.
    """

    def __init__(
        self,
        core: Core,
        sock: Queue,
        slice_s: float,
        truesize: tuple,
        rt: bool = False,
        pod: str = "",
    ) -> None:
        self.core = core
        self.rt = rt
        self.pod = pod
        core.has_rt = core.has_rt or rt
        self.index = core.index
        self.sock = sock
        self.slice_s = slice_s
        self.truesize = truesize
        self.pending: deque = deque()
        self.holder: Thread | None = None
        self.push = core.push
        self.lag_s = 0.0  # time owed to the reader (EEVDF lag), s
        self.read_at = -1.0  # when it last read by preempting the holder
        self.wait_from = 0.0  # when its datagrams began waiting for the holder

    def service_s(self, route: int, hop: int, size_bytes: float) -> float:
        """Work of the ``recvfrom`` segment, seconds (see :meth:`Core.service_s`)."""
        return self.core.service_s(route, hop, size_bytes)

    def _work_s(self, pkt: int) -> float:
        """``recvfrom`` work of packet ``pkt`` at its current hop, seconds."""
        core = self.core
        return core.service_s(core.p_route[pkt], core.p_hop[pkt], core.p_size[pkt])

    def _charge(self, pkt: int) -> int:
        a, b = self.truesize
        return int(a + b * self.core.p_size[pkt])

    def arrive(self, ev) -> None:
        """Admit a datagram to the socket buffer; read it now or after the holder's slice."""
        now, core = ev.at, self.core
        charge = self._charge(ev.pkt)
        if not self.sock.admit(now, charge):
            core.net.drop(ev.pkt, now, self.sock.reason)
            if now >= core.warmup:
                core.n_drops += 1
            return
        if self.pending:
            self.pending.append(ev)
            self.sock.reserve(charge)
            return
        holder = next((t for t in core.threads if t.holds(now) and t.rt >= self.rt), None)
        rival = holder is not None and not self.rt and holder.pod != self.pod
        preempt = rival and self.lag_s > 0.0
        if holder is None or preempt:
            if preempt:  # owed time: EEVDF runs the woken reader at once
                self.lag_s -= 0.5 * self._work_s(ev.pkt)
                self.read_at = now
            core.arrive(ev, self.rt)
            self.sock.hold(core.last_dep, charge)
            return
        if rival and self.read_at >= holder.slice_start:  # it alternated with the reader:
            holder.slice_start = now  # the slice the reader now waits out starts here
        self.holder = holder
        self.wait_from = now
        self.pending.append(ev)
        self.sock.reserve(charge)
        self._arm(now)

    def _arm(self, now_s: float) -> None:
        """Wake up when the holder's send segment ends or its slice does, whichever first."""
        h = self.holder
        at = min(h.busy_until, h.slice_start + self.slice_s)
        self.push(_Wake(self.core.net.env), at if at > now_s else now_s, self._wake)

    def _wake(self, wake) -> None:
        """Read now if the holder stopped sending or its slice is over; else wait on."""
        h = self.holder
        if h.holds(wake.at) and wake.at < h.slice_start + self.slice_s:
            self._arm(wake.at)
        else:
            self._drain(wake)

    def _drain(self, wake) -> None:
        """Read every waiting datagram (the holder's slice is over), then let the holder resume."""
        now, core = wake.at, self.core
        h = self.holder
        rival = h is not None and not self.rt and h.pod != self.pod
        owed = 0.5 * (now - self.wait_from)  # runnable, not running, beside the holder
        while self.pending:
            ev = self.pending.popleft()
            ev.at = now
            if rival:
                owed -= 0.5 * self._work_s(ev.pkt)
            core.arrive(ev, self.rt)
            self.sock.settle(core.last_dep)
        if rival:
            self.lag_s = min(self.lag_s + owed, self.slice_s)
        if self.holder is not None:
            self.holder.slice_start = core.last_dep
            self.holder = None


class _Wake(Event):
    """A bare triggered event for :class:`Reader`'s end-of-slice wake-up (no packet)."""

    def __init__(self, env) -> None:
        self.env = env
        self.callbacks: list = []
        self._value = None
        self._ok = True
        self.at = 0.0
