"""The event loop of the CPU-aware data path: :mod:`sim.engine.cpu` in SimPy's order.

Events are keyed ``(time, counter)`` as in :mod:`.kernel` and pushed in the order
the SimPy engine pushes them, so ties pop in its order. An event is a packet's
arrival at the element of its current hop (heap entry ``packet``), a sending
thread's *release* of a waiting packet (``-(packet + 1)``), as
:class:`sim.engine.cpu.Thread` schedules it, or a receiving thread's wake-up
(``-(packets + 1 + reader)``, :class:`sim.engine.cpu.Reader`'s ``_Wake``). The
element's step is the reference's, operation for operation:

* core (:meth:`sim.engine.cpu.Core.arrive`): the entry queue admits (prunes held
  packets up to now; count below its limit, bytes within its limit) or drops
  with its reason; the segment starts at ``max(now, free)`` and ends at ``start +
  a_s + b_s * size``; the queue holds the packet until the start or the end; the
  next hop follows at the end (no propagation);
* wire (:class:`sim.engine.stations.Station`'s fast path): drop-tail on packets,
  service ``a + b * size``, then propagation;
* sending thread (:meth:`sim.engine.cpu.Thread.arrive`): a send while the thread
  is armed, has waiting sends or is busy waits; otherwise it starts a run of
  sends (its slice) and runs on the core at once;
* receiving thread (:meth:`sim.engine.cpu.Reader.arrive`): the socket buffer
  admits the datagram's truesize or drops it; while the reader has datagrams
  waiting, or a sending thread of its core holds the core and the reader is
  owed no time (its lag), the datagram waits (its bytes reserved); else its
  ``recvfrom`` segment joins the core at once (costing a reader that preempts
  the holder half its work in lag). The wake-up re-arms while the holder still
  sends within its slice, else reads every waiting datagram back to back,
  credits the reader half its wait less half the work read, and starts the
  holder's next slice after them.

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
    R0,
    R_CORE,
    R_SLICE_S,
    R_SOCK,
    R_TH0,
    R_THN,
    R_TS_A,
    R_TS_B,
    RCAP,
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
from sim.engine.stations import UNLIMITED

# integer state of a queue, of a sending thread, of a receiving thread
QH_HEAD, QH_COUNT, QH_BYTES = range(3)
TH_HEAD, TH_COUNT, TH_ARMED = range(3)
RS_HEAD, RS_COUNT, RS_HOLDER = range(3)
# a reader's lag (s), last preemptive read, wait start, waiting for a rival (1.0) or not
RL_LAG, RL_READ, RL_WAIT, RL_RIVAL = range(4)
# float state of a sending thread: busy until, start of its run of sends (s)
TF_BUSY, TF_SLICE = range(2)
# a gate's verdict on an event (a drop is the reason, >= 0)
RUN, WAIT = -1, -2
# release time of a reserved socket-buffer entry (``Queue.reserve``)
RESERVED = float(UNLIMITED)


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


@njit(cache=True, inline="always")
def _admit(q, now, nbytes, q_i, qs, qt, qb):
    """``Queue.admit``: prune entries released by ``now``; whether ``nbytes`` more fit."""
    base, cap = q_i[q, Q0], q_i[q, QCAP]
    head, n, held = qs[q, QH_HEAD], qs[q, QH_COUNT], qs[q, QH_BYTES]
    while n > 0 and qt[base + head] <= now:
        held -= qb[base + head]
        head = head + 1 if head + 1 < cap else 0
        n -= 1
    qs[q, QH_HEAD], qs[q, QH_COUNT], qs[q, QH_BYTES] = head, n, held
    return n < q_i[q, Q_LIMIT] and held + nbytes <= q_i[q, Q_LIMIT_BYTES]


@njit(cache=True, inline="always")
def _put(q, until, nbytes, q_i, qs, qt, qb):
    """``Queue.hold`` (``until`` a time) or ``Queue.reserve`` (``until`` RESERVED)."""
    base, cap = q_i[q, Q0], q_i[q, QCAP]
    j = qs[q, QH_HEAD] + qs[q, QH_COUNT]
    j = j - cap if j >= cap else j
    qt[base + j], qb[base + j] = until, nbytes
    qs[q, QH_COUNT] += 1
    qs[q, QH_BYTES] += nbytes


@njit(cache=True)
def _settle(q, until, q_i, qs, qt):
    """``Queue.settle``: the oldest reserved entry (the reserved are the last) ends at ``until``."""
    base, cap, head = q_i[q, Q0], q_i[q, QCAP], qs[q, QH_HEAD]
    k = qs[q, QH_COUNT] - 1
    while k > 0 and qt[base + (head + k - 1) % cap] == RESERVED:
        k -= 1
    qt[base + (head + k) % cap] = until


@njit(cache=True, inline="always")
def _core(i, s, now, size, free, hop_a, hop_b, hop_queue, q_i, qs, qt, qb):
    """Take a segment arriving at core ``s`` (flat hop ``i``), as ``Core.arrive``.

    Returns ``(why, start, departure, busy, next time)``; ``why`` is -1 when the
    entry queue admits the packet, else the queue's drop reason.
    """
    q = hop_queue[i]
    if q >= 0 and not _admit(q, now, size, q_i, qs, qt, qb):
        return q_i[q, Q_REASON], 0.0, 0.0, 0.0, 0.0
    start = now if now > free[s] else free[s]
    dep = start + hop_a[i] + hop_b[i] * size
    free[s] = dep
    if q >= 0:  # held until the segment starts (backlog, ring) or ends (socket)
        _put(q, start if q_i[q, Q_UNTIL_START] else dep, size, q_i, qs, qt, qb)
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


@njit(cache=True, inline="always")
def _take(g, th_i, ts, tw):
    """Arm thread ``g``: remove and return its first waiting send."""
    base, cap, head = th_i[g, T0], th_i[g, TCAP], ts[g, TH_HEAD]
    ts[g, TH_HEAD] = head + 1 if head + 1 < cap else 0
    ts[g, TH_COUNT] -= 1
    ts[g, TH_ARMED] = 1
    return tw[base + head]


@njit(cache=True)
def _gate(code, g, pid, now, th_i, ts, tw, tf):
    """Pass an event by its sending thread: ``(verdict, release time, release code)``.

    The verdict is RUN or WAIT; a release time >= 0 arms the thread (its first
    waiting send, heap code ``release code``).
    """
    if code < 0:  # the thread's release of a waiting send
        ts[g, TH_ARMED] = 0
        return RUN, -1.0, 0
    if g < 0:
        return RUN, -1.0, 0
    if not (ts[g, TH_ARMED] != 0 or ts[g, TH_COUNT] != 0 or now < tf[g, TF_BUSY]):
        tf[g, TF_SLICE] = now  # the thread was idle: a run of sends begins
        return RUN, -1.0, 0
    base, cap = th_i[g, T0], th_i[g, TCAP]
    j = ts[g, TH_HEAD] + ts[g, TH_COUNT]
    tw[base + (j - cap if j >= cap else j)] = pid
    ts[g, TH_COUNT] += 1
    if ts[g, TH_ARMED] != 0:
        return WAIT, -1.0, 0
    return WAIT, tf[g, TF_BUSY], -(_take(g, th_i, ts, tw) + 1)


@njit(cache=True, inline="always")
def _holds(t, now, ts, tf):
    """``Thread.holds``: thread ``t`` is in a run of back-to-back sends at ``now``."""
    busy = ts[t, TH_ARMED] != 0 or ts[t, TH_COUNT] != 0 or now < tf[t, TF_BUSY]
    return busy and tf[t, TF_SLICE] <= now


@njit(cache=True, inline="always")
def _wake_at(rd, t, now, rd_f, tf):
    """``Reader._arm``: when thread ``t``'s send segment or slice ends, not before ``now``."""
    at = min(tf[t, TF_BUSY], tf[t, TF_SLICE] + rd_f[rd, R_SLICE_S])
    return at if at > now else now


@njit(cache=True)
def _read_gate(rd, pid, now, size, work, rd_i, rd_f, rs, rl, rp, core_threads, ts, tf,
               q_i, qs, qt, qb):  # fmt: skip
    """Pass a datagram by its reader (``Reader.arrive``): ``(verdict, charge, wake time)``.

    The verdict is the socket buffer's drop reason, RUN (its ``recvfrom``, of
    ``work`` seconds, joins the core now; ``charge`` bytes to hold) or WAIT; a
    wake time >= 0 arms the reader's wake-up.
    """
    charge = np.int64(rd_f[rd, R_TS_A] + rd_f[rd, R_TS_B] * size)
    q = rd_i[rd, R_SOCK]
    if not _admit(q, now, charge, q_i, qs, qt, qb):
        return q_i[q, Q_REASON], charge, -1.0
    wake = -1.0
    if rs[rd, RS_COUNT] == 0:
        holder, rival = -1, False
        for k in range(rd_i[rd, R_TH0], rd_i[rd, R_TH0] + rd_i[rd, R_THN]):
            c = core_threads[k]  # another endpoint's thread, or -(own + 1)
            if _holds(c if c >= 0 else -c - 1, now, ts, tf):
                holder, rival = (c, True) if c >= 0 else (-c - 1, False)
                break
        if holder < 0:
            return RUN, charge, -1.0
        if rival and rl[rd, RL_LAG] > 0.0:  # owed time: wake-up preemption
            rl[rd, RL_LAG] -= 0.5 * work
            rl[rd, RL_READ] = now
            return RUN, charge, -1.0
        if rival and rl[rd, RL_READ] >= tf[holder, TF_SLICE]:
            tf[holder, TF_SLICE] = now
        rs[rd, RS_HOLDER] = holder
        rl[rd, RL_WAIT] = now
        rl[rd, RL_RIVAL] = 1.0 if rival else 0.0
        wake = _wake_at(rd, holder, now, rd_f, tf)
    base, cap = rd_i[rd, R0], rd_i[rd, RCAP]
    j = rs[rd, RS_HEAD] + rs[rd, RS_COUNT]
    rp[base + (j - cap if j >= cap else j)] = pid
    rs[rd, RS_COUNT] += 1
    _put(q, RESERVED, charge, q_i, qs, qt, qb)
    return WAIT, charge, wake


@njit(cache=True)
def _drain(rd, now, warm_s, n_rows, tab, rs, rl, slice_s, rp, tf, st, queues, packets, rows):
    """``Reader._drain``: read every waiting datagram at ``now``; returns the row count."""
    rd_i, rt_start, rt_end, hop_a, hop_b, st_i = tab
    ss, sf, free, dt, hf = st
    q_i, qs, qt, _ = queues
    pk, _, p_done = packets
    h_pkt, h_st, h_t = rows
    s, q, base, cap = rd_i[rd, R_CORE], rd_i[rd, R_SOCK], rd_i[rd, R0], rd_i[rd, RCAP]
    rival = rl[rd, RL_RIVAL] != 0.0
    owed = 0.5 * (now - rl[rd, RL_WAIT])
    while rs[rd, RS_COUNT] > 0:
        head = rs[rd, RS_HEAD]
        pid = rp[base + head]
        rs[rd, RS_HEAD] = head + 1 if head + 1 < cap else 0
        rs[rd, RS_COUNT] -= 1
        r, size = pk[pid, P_ROUTE], pk[pid, P_SIZE]
        i = rt_start[r] + pk[pid, P_HOP]
        n = _in_system(s, now, -1.0, st_i, ss, dt)
        start = now if now > free[s] else free[s]
        if rival:
            owed -= 0.5 * (hop_a[i] + hop_b[i] * size)
        dep = start + hop_a[i] + hop_b[i] * size
        free[s] = dep
        _in_system(s, now, dep, st_i, ss, dt)
        if now >= warm_s:
            _account(s, i, n, now, start, dep, dep - start, ss, sf, hf)
        if h_pkt.size:
            _record(n_rows, pid, s, now, start, dep, h_pkt, h_st, h_t)
            n_rows += 1
        p_done[pid], pk[pid, P_REASON] = dep, rt_end[r]  # the route's last segment
        _settle(q, free[s], q_i, qs, qt)
    if rival:
        rl[rd, RL_LAG] = min(rl[rd, RL_LAG] + owed, slice_s)
    tf[rs[rd, RS_HOLDER], TF_SLICE] = free[s]  # the holder's next slice starts after them
    rs[rd, RS_HOLDER] = -1
    return n_rows


@njit(cache=True)
def _wake(rd, now, rd_f, rs, ts, tf):
    """``Reader._wake``: the time to wake up again, or -1 to read now."""
    t = rs[rd, RS_HOLDER]
    if _holds(t, now, ts, tf) and now < tf[t, TF_SLICE] + rd_f[rd, R_SLICE_S]:
        return _wake_at(rd, t, now, rd_f, tf)
    return -1.0


@njit(cache=True, inline="always")
def _step(i, s, now, size, st_f, st_i, hop_queue, hop_a, hop_b, ss, free, dt, q_i, qs, qt, qb):
    """Take a packet at core or wire ``s`` (hop ``i``): ``(why, start, dep, busy, next, n)``.

    ``n`` is the count in the station before it (see :func:`_core`, :func:`_wire`).
    """
    n = _in_system(s, now, -1.0, st_i, ss, dt)
    if st_i[s, IS_CORE]:
        why, start, dep, busy, t_next = _core(
            i, s, now, size, free, hop_a, hop_b, hop_queue, q_i, qs, qt, qb
        )
    else:
        why, start, dep, busy, t_next = _wire(s, n, now, size, st_f, st_i, free)
    if why < 0:
        _in_system(s, now, dep, st_i, ss, dt)
    return why, start, dep, busy, t_next, n


@njit(cache=True, inline="always")
def _onward(pid, r, h, i, s, n, now, start, dep, busy, t_next, warm_s, n_rows, n_heap, eid,
            rt_len, rt_end, ss, sf, hf, pk, p_done, h_pkt, h_st, h_t, ht, he, hp):  # fmt: skip
    """Count an accepted packet and send it on: ``(rows, heap, eid)`` counts after.

    Its per-hop row (if kept), then its next hop at ``t_next`` or its route's end.
    """
    if now >= warm_s:
        _account(s, i, n, now, start, dep, busy, ss, sf, hf)
    if h_pkt.size:
        _record(n_rows, pid, s, now, start, dep, h_pkt, h_st, h_t)
        n_rows += 1
    if h + 1 < rt_len[r]:
        pk[pid, P_HOP] = h + 1
        n_heap = _push(ht, he, hp, n_heap, t_next, eid, pid)
        eid += 1
    else:
        p_done[pid], pk[pid, P_REASON] = t_next, rt_end[r]
    return n_rows, n_heap, eid


@njit(cache=True, inline="always")
def _ran(g, sock, s, charge, free, th_i, ts, tw, tf, q_i, qs, qt, qb):
    """Finish ``Thread._run`` or ``Reader.arrive`` after their segment joined core ``s``.

    A sending thread is busy until the segment ends; returns its next release
    (time and heap code; time -1: none). A reader's socket ``sock`` holds the
    datagram until its ``recvfrom`` ends.
    """
    if sock >= 0:
        _put(sock, free[s], charge, q_i, qs, qt, qb)
    if g < 0:
        return -1.0, 0
    tf[g, TF_BUSY] = free[s]
    if ts[g, TH_COUNT] == 0 or ts[g, TH_ARMED] != 0:
        return -1.0, 0
    return tf[g, TF_BUSY], -(_take(g, th_i, ts, tw) + 1)


@njit(cache=True)
def _drop(pid, s, now, why, warm_s, pk, p_done, ss):
    """Drop packet ``pid`` at ``now`` for reason ``why``; counted at station ``s`` (if any)."""
    p_done[pid], pk[pid, P_REASON] = now, why
    if s >= 0 and now >= warm_s:
        ss[s, N_DROP] += 1


@njit(cache=True)
def _on_wake(rd, now, warm_s, n_rows, rt, tab, readers, gates, st, queues, packets, rows):
    """Wake reader ``rd`` up: ``(time to wake again or -1, rows)``; -1 read what waits."""
    rt_len, rt_end, rt_start, _ = rt
    _, st_i, _, _, hop_a, hop_b = tab
    rd_i, rd_f, rs, rp, _, rl = readers
    ts, tf = gates[3], gates[5]
    t_wake = _wake(rd, now, rd_f, rs, ts, tf)
    if t_wake < 0.0:
        t6 = (rd_i, rt_start, rt_end, hop_a, hop_b, st_i)
        st5 = (st[0], st[1], st[2], st[3], st[7])
        slice_s = rd_f[rd, R_SLICE_S]
        n_rows = _drain(
            rd, now, warm_s, n_rows, t6, rs, rl, slice_s, rp, tf, st5, queues, packets, rows
        )
    return t_wake, n_rows


@njit(cache=True, inline="always")
def _source(src, n_heap, eid, n_pid, a_send, a_size, a_route, a_start, nxt, pk, p_send, p_done,
            ht, he, hp):  # fmt: skip
    """Create source ``src``'s next packet, if any: the ``(heap, eid, pid)`` counts after."""
    if nxt[src] < a_start[src + 1]:
        _emit(n_pid, nxt[src], src, a_send, a_size, a_route, pk, p_send, p_done)
        n_heap = _push(ht, he, hp, n_heap, a_send[nxt[src]], eid, n_pid)
        eid, n_pid, nxt[src] = eid + 1, n_pid + 1, nxt[src] + 1
    return n_heap, eid, n_pid


@njit(cache=True)
def _loop(end_s, warm_s, arrivals, tab, rt, gates, readers, st, packets, rows, heap, ctr):
    """Run the event loop: see :func:`run_cpu_kernel` for the arguments.

    Every array is unpacked once here, and the packet path passes them on only
    to leaf or inlined functions (see :mod:`.kernel` on numba's reference
    counts); a reader's wake-up, one per run of sends, calls :func:`_on_wake`.
    """
    a_send, a_size, a_route, a_start, nxt = arrivals
    rt_len, rt_end, rt_start, hop_station = rt
    st_f, st_i, q_i, hop_queue, hop_a, hop_b = tab
    hop_gate, hop_reader, th_i, ts, tw, tf = gates
    rd_i, rd_f, rs, rp, core_threads, rl = readers
    ss, sf, free, dt, qs, qt, qb, hf = st
    pk, p_send, p_done = packets
    h_pkt, h_st, h_t = rows
    ht, he, hp = heap
    wake0, queues = a_send.size + 1, (q_i, qs, qt, qb)  # reader k's wake-up: -(wake0 + k)
    n_heap = eid = n_pid = n_rows = n_events = 0
    for src in range(nxt.size):  # each source's first packet
        n_heap, eid, n_pid = _source(
            src, n_heap, eid, n_pid, a_send, a_size, a_route, a_start, nxt, pk, p_send, p_done,
            ht, he, hp,
        )  # fmt: skip
    while n_heap > 0 and ht[0] < end_s:
        now, code = ht[0], hp[0]
        n_heap = _pop(ht, he, hp, n_heap)
        n_events += 1
        pid, r, h, size, i, s, charge, rd = -1, 0, -1, 0, 0, -1, 0, -1
        act, t_push, c_push = WAIT, -1.0, code
        if code <= -wake0:  # a reader's wake-up: wait on, or read what waits
            t_push, n_rows = _on_wake(
                -code - wake0, now, warm_s, n_rows, rt, tab, readers, gates, st, queues,
                packets, rows,
            )  # fmt: skip
        else:
            pid = code if code >= 0 else -code - 1
            r, h, size = pk[pid, P_ROUTE], pk[pid, P_HOP], pk[pid, P_SIZE]
            i = rt_start[r] + h
            s = hop_station[i] if rt_len[r] else -1
            rd = hop_reader[i] if s >= 0 else -1
        if rd >= 0:  # Reader.arrive
            act, charge, t_push = _read_gate(rd, pid, now, size, hop_a[i] + hop_b[i] * size,
                rd_i, rd_f, rs, rl, rp, core_threads, ts, tf, q_i, qs, qt, qb)  # fmt: skip
            c_push = -(wake0 + rd)
        elif pid >= 0:  # Thread.arrive or _release (no thread: run)
            g = hop_gate[i] if s >= 0 else -1
            act, t_push, c_push = _gate(code, g, pid, now, th_i, ts, tw, tf)
        if t_push >= 0.0:  # a thread's release or a reader's wake-up
            n_heap = _push(ht, he, hp, n_heap, t_push, eid, c_push)
            eid += 1
        if act == RUN and s < 0:  # dropped before the first element
            act = rt_end[r]
        elif act == RUN:
            act, start, dep, busy, t_next, n = _step(
                i, s, now, size, st_f, st_i, hop_queue, hop_a, hop_b, ss, free, dt,
                q_i, qs, qt, qb,
            )  # fmt: skip
            if act < 0:  # accepted
                n_rows, n_heap, eid = _onward(
                    pid, r, h, i, s, n, now, start, dep, busy, t_next, warm_s, n_rows, n_heap,
                    eid, rt_len, rt_end, ss, sf, hf, pk, p_done, h_pkt, h_st, h_t, ht, he, hp,
                )  # fmt: skip
            sock = rd_i[rd, R_SOCK] if rd >= 0 else -1
            t_push, c_push = _ran(
                hop_gate[i], sock, s, charge, free, th_i, ts, tw, tf, q_i, qs, qt, qb
            )
            if t_push >= 0.0:
                n_heap = _push(ht, he, hp, n_heap, t_push, eid, c_push)
                eid += 1
        if act >= 0:  # dropped: at a queue, a wire, the socket buffer or by the route
            _drop(pid, s, now, act, warm_s, pk, p_done, ss)
        if code >= 0 and h == 0:  # a source's event: its next packet
            n_heap, eid, n_pid = _source(
                pk[pid, P_SOURCE], n_heap, eid, n_pid, a_send, a_size, a_route, a_start, nxt,
                pk, p_send, p_done, ht, he, hp,
            )  # fmt: skip
    waiting = ts[:, TH_COUNT].sum() + rs[:, RS_COUNT].sum() - (rs[:, RS_HOLDER] >= 0).sum()
    ctr[N_HEAP], ctr[EID], ctr[NEXT_PID] = n_heap + waiting, eid, n_pid  # a wake-up: no packet
    ctr[N_ROWS], ctr[N_EVENTS] = n_rows, n_events


def _state(tab) -> tuple[tuple, tuple, tuple]:
    """Zeroed state: stations and queues, sending threads, receiving threads."""
    n_st, n_q = tab.st_i.shape[0], max(tab.q_i.shape[0], 1)
    n_th, n_rd = max(tab.th_i.shape[0], 1), max(tab.rd_i.shape[0], 1)
    st = (
        np.zeros((n_st, 7), np.int64), np.zeros((n_st, 3)), np.zeros(n_st), np.zeros(tab.n_dep),
        np.zeros((n_q, 3), np.int64), np.zeros(tab.n_held), np.zeros(tab.n_held, np.int64),
        np.zeros((tab.hop_station.size, 2)),
    )  # fmt: skip
    ts, tw, tf = np.zeros((n_th, 3), np.int64), np.zeros(tab.n_wait, np.int64), np.zeros((n_th, 2))
    rs = np.zeros((n_rd, 3), np.int64)
    rs[:, RS_HOLDER] = -1
    rl = np.zeros((n_rd, 4))
    rl[:, RL_READ] = -1.0
    gates = (tab.hop_gate, tab.hop_reader, tab.th_i, ts, tw, tf)
    readers = (tab.rd_i, tab.rd_f, rs, np.zeros(tab.n_pend, np.int64), tab.core_threads, rl)
    return st, gates, readers


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
        sf, free, dt, hf)`` (``hf`` as there), per-hop rows and counters
        (``ctr[N_HEAP]``: packets between hops or waiting for a thread at the end).
    """
    n_pkt = arrivals.send_s.size
    packets = (np.zeros((n_pkt, 5), np.int32), np.empty(n_pkt), np.empty(n_pkt))
    st, gates, readers = _state(tab)
    n_rows = tab.n_rows if hops else 0
    rows = (np.zeros(n_rows, np.int64), np.zeros(n_rows, np.int64), np.zeros((n_rows, 3)))
    n_ev = n_pkt + 1 + tab.rd_i.shape[0]  # a packet's event each, a wake-up per reader
    heap = (np.empty(n_ev), np.empty(n_ev, np.int64), np.empty(n_ev, np.int64))
    ctr = np.zeros(5, np.int64)
    nxt = arrivals.source_start[:-1].copy()
    arr = (arrivals.send_s, arrivals.size_bytes, arrivals.route, arrivals.source_start, nxt)
    flat = (tab.st_f, tab.st_i, tab.q_i, tab.hop_queue, tab.hop_a_s, tab.hop_b_s)
    rt = (tab.rt_len, tab.rt_end_reason, tab.rt_start, tab.hop_station)
    _loop(end_s, warm_s, arr, flat, rt, gates, readers, st, packets, rows, heap, ctr)
    return packets, (*st[:4], st[7]), rows, ctr


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
