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
    BUSY,
    COUNT,
    EID,
    HEAD,
    MAX_N,
    N_ARR,
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
    SOJOURN,
    WAIT,
    _emit,
    _pop,
    _push,
    _record,
)

# integer state of a queue and of a thread
QH_HEAD, QH_COUNT, QH_BYTES = range(3)
TH_HEAD, TH_COUNT, TH_ARMED = range(3)


@njit(cache=True)
def _admit(q, now, size, q_i, qs, qt, qb):
    """Prune queue ``q``'s held packets up to ``now``; whether ``size`` bytes fit."""
    base, cap = q_i[q, Q0], q_i[q, QCAP]
    head, n, nbytes = qs[q, QH_HEAD], qs[q, QH_COUNT], qs[q, QH_BYTES]
    while n > 0 and qt[base + head] <= now:
        nbytes -= qb[base + head]
        head = head + 1 if head + 1 < cap else 0
        n -= 1
    qs[q, QH_HEAD], qs[q, QH_COUNT], qs[q, QH_BYTES] = head, n, nbytes
    return n < q_i[q, Q_LIMIT] and nbytes + size <= q_i[q, Q_LIMIT_BYTES]


@njit(cache=True)
def _hold(q, until, size, q_i, qs, qt, qb):
    """Keep a packet of ``size`` bytes in queue ``q`` until ``until``."""
    base, cap = q_i[q, Q0], q_i[q, QCAP]
    j = qs[q, QH_HEAD] + qs[q, QH_COUNT]
    j = j - cap if j >= cap else j
    qt[base + j], qb[base + j] = until, size
    qs[q, QH_COUNT] += 1
    qs[q, QH_BYTES] += size


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
def _visit(pid, now, warm_s, tab, st, pk, p_done):
    """Arrival of ``pid`` at its hop's core or wire; returns (next time, start, departure).

    Next time -1: dropped (recorded here).
    """
    st_f, st_i, q_i, hop_station, hop_queue, hop_a, hop_b, rt_start = tab
    ss, sf, free, dt, qs, qt, qb = st
    i = rt_start[pk[pid, P_ROUTE]] + pk[pid, P_HOP]
    s, size = hop_station[i], pk[pid, P_SIZE]
    if st_i[s, IS_CORE]:
        q = hop_queue[i]
        if q >= 0 and not _admit(q, now, size, q_i, qs, qt, qb):
            p_done[pid], pk[pid, P_REASON] = now, q_i[q, Q_REASON]
            if now >= warm_s:
                ss[s, N_DROP] += 1
            return -1.0, 0.0, 0.0
        start = now if now > free[s] else free[s]
        dep = start + hop_a[i] + hop_b[i] * size
        free[s] = dep
        if q >= 0:
            _hold(q, start if q_i[q, Q_UNTIL_START] else dep, size, q_i, qs, qt, qb)
        n = _in_system(s, now, dep, st_i, ss, dt)
        service, nxt = dep - start, dep
    else:
        n = _in_system(s, now, -1.0, st_i, ss, dt)
        if n >= st_i[s, LIMIT]:
            p_done[pid], pk[pid, P_REASON] = now, st_i[s, REASON]
            if now >= warm_s:
                ss[s, N_DROP] += 1
            return -1.0, 0.0, 0.0
        service = st_f[s, A_S] + st_f[s, B_S] * size
        start = now if now > free[s] else free[s]
        dep = start + service
        free[s] = dep
        _in_system(s, now, dep, st_i, ss, dt)
        nxt = dep + st_f[s, PROP_S]
    if now >= warm_s:
        ss[s, N_ARR] += 1
        sf[s, WAIT] += start - now
        sf[s, BUSY] += service
        sf[s, SOJOURN] += dep - now
        if n >= ss[s, MAX_N]:
            ss[s, MAX_N] = n + 1
    return nxt, start, dep


@njit(cache=True)
def _step(pid, now, warm_s, tab, st, pk, p_done, rt, rows, n_rows, heap, n_heap, eid):
    """Handle ``pid``'s arrival at a core or wire, then push its next hop or end it."""
    rt_len, rt_end, rt_start, hop_station = rt
    nxt, start, dep = _visit(pid, now, warm_s, tab, st, pk, p_done)
    if nxt < 0.0:
        return n_rows, n_heap, eid
    r, h = pk[pid, P_ROUTE], pk[pid, P_HOP]
    h_pkt, h_st, h_t = rows
    if h_pkt.size:
        _record(n_rows, pid, hop_station[rt_start[r] + h], now, start, dep, h_pkt, h_st, h_t)
        n_rows += 1
    if h + 1 < rt_len[r]:
        pk[pid, P_HOP] = h + 1
        n_heap = _push(heap[0], heap[1], heap[2], n_heap, nxt, eid, pid)
        eid += 1
    else:
        p_done[pid], pk[pid, P_REASON] = nxt, rt_end[r]
    return n_rows, n_heap, eid


@njit(cache=True)
def _arm(g, busy, th_i, ts, tw, heap, n_heap, eid):
    """Thread ``g`` schedules its first waiting send at its busy-until time."""
    base, cap, head = th_i[g, T0], th_i[g, TCAP], ts[g, TH_HEAD]
    pid = tw[base + head]
    ts[g, TH_HEAD] = head + 1 if head + 1 < cap else 0
    ts[g, TH_COUNT] -= 1
    ts[g, TH_ARMED] = 1
    return _push(heap[0], heap[1], heap[2], n_heap, busy[g], eid, -(pid + 1)), eid + 1


@njit(cache=True)
def _wait(g, pid, th_i, ts, tw):
    """Append ``pid`` to thread ``g``'s waiting sends."""
    base, cap = th_i[g, T0], th_i[g, TCAP]
    j = ts[g, TH_HEAD] + ts[g, TH_COUNT]
    j = j - cap if j >= cap else j
    tw[base + j] = pid
    ts[g, TH_COUNT] += 1


@njit(cache=True)
def _loop(end_s, warm_s, arrivals, tab, rt, gates, st, packets, rows, heap, ctr):
    """Run the event loop: see :func:`run_cpu_kernel` for the arguments."""
    a_send, a_size, a_route, a_start, nxt = arrivals
    hop_gate, th_i, ts, tw, busy = gates
    rt_len, rt_end, rt_start, hop_station = rt
    pk, p_send, p_done = packets
    free = st[2]
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
        g = hop_gate[rt_start[r] + h] if rt_len[r] else -1
        run = True
        if code < 0:  # the thread's release of a waiting send
            ts[g, TH_ARMED] = 0
        elif rt_len[r] == 0:  # dropped before the first element
            p_done[pid], pk[pid, P_REASON], run = now, rt_end[r], False
        elif g >= 0 and (ts[g, TH_ARMED] or ts[g, TH_COUNT] or now < busy[g]):
            _wait(g, pid, th_i, ts, tw)
            if not ts[g, TH_ARMED]:
                n_heap, eid = _arm(g, busy, th_i, ts, tw, heap, n_heap, eid)
            run = False
        if run:
            n_rows, n_heap, eid = _step(
                pid, now, warm_s, tab, st, pk, p_done, rt, rows, n_rows, heap, n_heap, eid
            )
            if g >= 0:
                busy[g] = free[hop_station[rt_start[r]]]
                if ts[g, TH_COUNT] and not ts[g, TH_ARMED]:
                    n_heap, eid = _arm(g, busy, th_i, ts, tw, heap, n_heap, eid)
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
