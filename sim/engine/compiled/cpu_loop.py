"""The event loop of the CPU-aware data path: :mod:`sim.engine.cpu` in SimPy's order.

Events are keyed ``(time, counter)`` as in :mod:`.kernel` and pushed in the order
the SimPy engine pushes them, so ties pop in its order. An event is a packet's
arrival at the element of its current hop, or a sending thread's *release* of a
waiting packet (heap entry ``-(packet + 1)``), as :class:`sim.engine.cpu.Thread`
schedules it. The element's step is the reference's, operation for operation:

* core (:meth:`sim.engine.cpu.Core.arrive`): the entry queue admits (prunes held
  packets up to now; count below its limit, bytes within its limit) or drops
  with its reason; the segment starts at ``max(now, free)`` and ends at ``start +
  a_s + b_s * size``; the queue holds the packet until the start or the end; the
  next hop follows at the end (no propagation);
* wire (:class:`sim.engine.stations.Station`'s fast path): drop-tail on packets,
  service ``a + b * size``, then propagation;
* thread (:meth:`sim.engine.cpu.Thread.arrive`): a send while the thread is armed,
  has waiting sends or is busy waits; otherwise it runs on the core at once.

A source's next packet is created after its packet's first event, as in
:mod:`.kernel`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.engine.compiled.cpu import (
    A_S,
    B_S,
    DEP0,
    DEPCAP,
    IS_CORE,
    LIMIT,
    PROP_S,
    Q0,
    Q_LIMIT,
    Q_LIMIT_BYTES,
    Q_REASON,
    Q_UNTIL_START,
    QCAP,
    REASON,
    T0,
    TCAP,
)
from sim.engine.compiled.kernel import (
    COUNT,
    EID,
    HEAD,
    N_DROP,
    N_EVENTS,
    N_HEAP,
    N_ROWS,
    NEXT_PID,
    P_HOP,
    P_REASON,
    P_ROUTE,
    P_SIZE,
    P_SOURCE,
    _account,
    _emit,
    _pop,
    _push,
    _record,
)

# integer state of a queue and of a thread
QH_HEAD, QH_COUNT, QH_BYTES = range(3)
TH_HEAD, TH_COUNT, TH_ARMED = range(3)


@njit(cache=True)
def _in_system(s, now, dep, st_i, ss, dt):
    """Prune station ``s``'s departures up to ``now``, add ``dep``; return the count before."""
    base, cap = st_i[s, DEP0], st_i[s, DEPCAP]
    head, n = ss[s, HEAD], ss[s, COUNT]
    while n > 0 and dt[base + head] <= now:
        head = head + 1 if head + 1 < cap else 0
        n -= 1
    if dep >= 0.0:
        j = head + n
        j = j - cap if j >= cap else j
        dt[base + j] = dep
        ss[s, COUNT] = n + 1
    else:
        ss[s, COUNT] = n
    ss[s, HEAD] = head
    return n


@njit(cache=True)
def _core(i, s, now, size, free, hop_a, hop_b, hop_queue, q_i, qs, qt, qb):
    """Take a segment arriving at core ``s`` (flat hop ``i``), as ``Core.arrive``.

    Returns ``(why, start, departure, busy, next time)``; ``why`` is -1 when the
    entry queue admits the packet, else the queue's drop reason.
    """
    q = hop_queue[i]
    if q >= 0:  # the entry queue: prune held packets up to now, then admit
        base, cap = q_i[q, Q0], q_i[q, QCAP]
        head, n, nbytes = qs[q, QH_HEAD], qs[q, QH_COUNT], qs[q, QH_BYTES]
        while n > 0 and qt[base + head] <= now:
            nbytes -= qb[base + head]
            head = head + 1 if head + 1 < cap else 0
            n -= 1
        qs[q, QH_HEAD], qs[q, QH_COUNT], qs[q, QH_BYTES] = head, n, nbytes
        if not (n < q_i[q, Q_LIMIT] and nbytes + size <= q_i[q, Q_LIMIT_BYTES]):
            return q_i[q, Q_REASON], 0.0, 0.0, 0.0, 0.0
    start = now if now > free[s] else free[s]
    dep = start + hop_a[i] + hop_b[i] * size
    free[s] = dep
    if q >= 0:  # held until the segment starts (backlog, ring) or ends (socket)
        j = head + n
        j = j - cap if j >= cap else j
        qt[base + j], qb[base + j] = start if q_i[q, Q_UNTIL_START] else dep, size
        qs[q, QH_COUNT], qs[q, QH_BYTES] = n + 1, nbytes + size
    return -1, start, dep, dep - start, dep


@njit(cache=True)
def _wire(s, n, now, size, st_f, st_i, free):
    """Take a packet arriving at wire ``s`` with ``n`` in it, as ``Station``'s fast path.

    Returns ``(why, start, departure, service, next time)`` as :func:`_core`.
    """
    if n >= st_i[s, LIMIT]:
        return st_i[s, REASON], 0.0, 0.0, 0.0, 0.0
    service = st_f[s, A_S] + st_f[s, B_S] * size
    start = now if now > free[s] else free[s]
    dep = start + service
    free[s] = dep
    return -1, start, dep, service, dep + st_f[s, PROP_S]


@njit(cache=True)
def _take(g, th_i, ts, tw):
    """Arm thread ``g``: remove and return its first waiting send."""
    base, cap, head = th_i[g, T0], th_i[g, TCAP], ts[g, TH_HEAD]
    ts[g, TH_HEAD] = head + 1 if head + 1 < cap else 0
    ts[g, TH_COUNT] -= 1
    ts[g, TH_ARMED] = 1
    return tw[base + head]


@njit(cache=True)
def _wait(g, pid, th_i, ts, tw):
    """Append ``pid`` to thread ``g``'s waiting sends."""
    base, cap = th_i[g, T0], th_i[g, TCAP]
    j = ts[g, TH_HEAD] + ts[g, TH_COUNT]
    j = j - cap if j >= cap else j
    tw[base + j] = pid
    ts[g, TH_COUNT] += 1


@njit(cache=True)
def _gate(code, g, pid, now, th_i, ts, tw, busy):
    """Pass an event by its sending thread: -1 run it, -2 it waits, else a send to arm."""
    if code < 0:  # the thread's release of a waiting send
        ts[g, TH_ARMED] = 0
        return -1
    if g < 0 or not (ts[g, TH_ARMED] or ts[g, TH_COUNT] or now < busy[g]):
        return -1
    base, cap = th_i[g, T0], th_i[g, TCAP]
    j = ts[g, TH_HEAD] + ts[g, TH_COUNT]
    tw[base + (j - cap if j >= cap else j)] = pid
    ts[g, TH_COUNT] += 1
    if ts[g, TH_ARMED]:
        return -2
    return _take(g, th_i, ts, tw)


@njit(cache=True)
def _loop(end_s, warm_s, arrivals, tab, rt, gates, st, packets, rows, heap, ctr):
    """Run the event loop: see :func:`run_cpu_kernel` for the arguments.

    Every array is unpacked once here and the loop calls only leaf functions
    (see :mod:`.kernel` on numba's reference counts).
    """
    a_send, a_size, a_route, a_start, nxt = arrivals
    hop_gate, th_i, ts, tw, busy = gates
    rt_len, rt_end, rt_start, hop_station = rt
    st_f, st_i, q_i, _, hop_queue, hop_a, hop_b, _ = tab
    ss, sf, free, dt, qs, qt, qb = st
    pk, p_send, p_done = packets
    h_pkt, h_st, h_t = rows
    ht, he, hp = heap
    n_heap = eid = n_pid = n_rows = n_events = 0
    for src in range(nxt.size):  # each source's first packet
        if nxt[src] < a_start[src + 1]:
            _emit(n_pid, nxt[src], src, a_send, a_size, a_route, pk, p_send, p_done)
            n_heap = _push(ht, he, hp, n_heap, a_send[nxt[src]], eid, n_pid)
            eid, n_pid, nxt[src] = eid + 1, n_pid + 1, nxt[src] + 1
    while n_heap > 0 and ht[0] < end_s:
        now, code = ht[0], hp[0]
        n_heap = _pop(ht, he, hp, n_heap)
        n_events += 1
        pid = code if code >= 0 else -code - 1
        r, h = pk[pid, P_ROUTE], pk[pid, P_HOP]
        i = rt_start[r] + h
        g = hop_gate[i] if rt_len[r] else -1
        act = _gate(code, g, pid, now, th_i, ts, tw, busy)
        if act >= 0:  # the thread arms: its first waiting send, at its busy-until time
            n_heap = _push(ht, he, hp, n_heap, busy[g], eid, -(act + 1))
            eid += 1
        elif act == -1 and rt_len[r] == 0:  # dropped before the first element
            p_done[pid], pk[pid, P_REASON] = now, rt_end[r]
        elif act == -1:
            s, size = hop_station[i], pk[pid, P_SIZE]
            n = _in_system(s, now, -1.0, st_i, ss, dt)
            if st_i[s, IS_CORE]:
                why, start, dep, service, t_next = _core(
                    i, s, now, size, free, hop_a, hop_b, hop_queue, q_i, qs, qt, qb
                )
            else:
                why, start, dep, service, t_next = _wire(s, n, now, size, st_f, st_i, free)
            if why >= 0:
                p_done[pid], pk[pid, P_REASON] = now, why
                ss[s, N_DROP] += 1 if now >= warm_s else 0
            else:
                _in_system(s, now, dep, st_i, ss, dt)
                if now >= warm_s:
                    _account(s, n, now, start, dep, service, ss, sf)
                if h_pkt.size:
                    _record(n_rows, pid, s, now, start, dep, h_pkt, h_st, h_t)
                    n_rows += 1
                if h + 1 < rt_len[r]:
                    pk[pid, P_HOP] = h + 1
                    n_heap = _push(ht, he, hp, n_heap, t_next, eid, pid)
                    eid += 1
                else:
                    p_done[pid], pk[pid, P_REASON] = t_next, rt_end[r]
            if g >= 0:  # Thread._run: busy until its segment ends; arm the next send
                busy[g] = free[s]
                if ts[g, TH_COUNT] and not ts[g, TH_ARMED]:
                    n_heap = _push(ht, he, hp, n_heap, busy[g], eid, -(_take(g, th_i, ts, tw) + 1))
                    eid += 1
        src = pk[pid, P_SOURCE]
        if code >= 0 and h == 0 and nxt[src] < a_start[src + 1]:  # a source's next packet
            _emit(n_pid, nxt[src], src, a_send, a_size, a_route, pk, p_send, p_done)
            n_heap = _push(ht, he, hp, n_heap, a_send[nxt[src]], eid, n_pid)
            eid, n_pid, nxt[src] = eid + 1, n_pid + 1, nxt[src] + 1
    ctr[N_HEAP], ctr[EID], ctr[NEXT_PID] = n_heap + ts[:, TH_COUNT].sum(), eid, n_pid
    ctr[N_ROWS], ctr[N_EVENTS] = n_rows, n_events


def _state(tab) -> tuple[tuple, tuple]:
    """Zeroed state: stations ``(ss, sf, free, dt, qs, qt, qb)``; threads' gates."""
    n_st, n_q, n_th = tab.st_i.shape[0], max(tab.q_i.shape[0], 1), max(tab.th_i.shape[0], 1)
    st = (
        np.zeros((n_st, 7), np.int64), np.zeros((n_st, 3)), np.zeros(n_st), np.zeros(tab.n_dep),
        np.zeros((n_q, 3), np.int64), np.zeros(tab.n_held), np.zeros(tab.n_held, np.int64),
    )  # fmt: skip
    ts, tw, busy = np.zeros((n_th, 3), np.int64), np.zeros(tab.n_wait, np.int64), np.zeros(n_th)
    return st, (tab.hop_gate, tab.th_i, ts, tw, busy)


def run_cpu_kernel(end_s, warm_s, arrivals, tab, hops):
    """Process every event before ``end_s`` on the CPU data path.

    Parameters
    ----------
    end_s, warm_s : float
        End of the run and of the warm-up, seconds.
    arrivals : Arrivals
        Every source's packets.
    tab : CpuTables
        The run's cores, wires, queues, threads and routes.
    hops : bool
        Keep per-hop rows.

    Returns
    -------
    tuple
        ``(pk, p_send, p_done)`` as :func:`.kernel.run_kernel`, station state ``(ss,
        sf, free, dt)``, per-hop rows and counters (``ctr[N_HEAP]``: packets between
        hops or waiting for their thread at the end).
    """
    n_pkt = arrivals.send_s.size
    packets = (np.zeros((n_pkt, 5), np.int32), np.empty(n_pkt), np.empty(n_pkt))
    st, gates = _state(tab)
    n_rows = tab.n_rows if hops else 0
    rows = (np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64), np.zeros((n_rows, 3)))
    heap = (np.empty(n_pkt + 1), np.empty(n_pkt + 1, np.int64), np.empty(n_pkt + 1, np.int64))
    ctr = np.zeros(5, np.int64)
    nxt = arrivals.source_start[:-1].copy()
    arr = (arrivals.send_s, arrivals.size_bytes, arrivals.route, arrivals.source_start, nxt)
    flat = (
        tab.st_f,
        tab.st_i,
        tab.q_i,
        tab.hop_station,
        tab.hop_queue,
        tab.hop_a_s,
        tab.hop_b_s,
        tab.rt_start,
    )
    rt = (tab.rt_len, tab.rt_end_reason, tab.rt_start, tab.hop_station)
    _loop(end_s, warm_s, arr, flat, rt, gates, st, packets, rows, heap, ctr)
    return packets, st[:4], rows, ctr


@njit(cache=True)
def pending_at(t_s, st_i, ss, dt):
    """Segments or packets in each core or wire at ``t_s`` (departures after it)."""
    out = np.zeros(st_i.shape[0], dtype=np.int64)
    for s in range(st_i.shape[0]):
        base, cap, head = st_i[s, DEP0], st_i[s, DEPCAP], ss[s, HEAD]
        for j in range(ss[s, COUNT]):
            k = head + j
            k = k - cap if k >= cap else k
            if dt[base + k] > t_s:
                out[s] += 1
    return out
