"""The event loop of the compiled engine: packet-hop events in SimPy's order.

Same model as :mod:`sim.engine.stations` (read its docstring): a packet arriving
at a FIFO station gets its departure at once (Lindley: ``start = max(arrival,
earliest free server)``) and its arrival at the next hop is scheduled; one event
per packet-hop. Here the events live in a binary heap keyed ``(time, counter)``,
the counter incremented at every push, exactly as SimPy keys its queue
``(time, priority, counter)`` (every data-plane event has priority NORMAL). Pushes
happen in the SimPy engine's order, so events pop in its order, ties included:
two packets reaching a station at the same instant are served in the same order,
and every float is computed by the same operations in the same order. The loop
stops before the first event at ``end_s`` (SimPy's stop event is URGENT, so it
runs before NORMAL events at the same time).

A packet's first event is its source's "fire": after the first hop is handled,
the source's next packet is created and scheduled (ids in creation order, as the
SimPy engine's recorder numbers them).

Departure store of a station: the departures still ahead (time and size) of the
packets it accepted. One server: a FIFO ring (departures come in order); several:
a min-heap. Both are pruned to ``> now`` at each arrival, so their count is the
number in the system and the byte total the bytes in the system.

Why the code is shaped so: numba keeps a reference count on every array, and a
function that passes arrays it modifies on to another function pays two atomic
operations per array per call, which made the loop 5x slower. So the event loop
(:func:`_loop`) calls only *leaf* functions (which call nothing that takes an
array), leaves take and return the scalars they update (kept in registers:
another 1.7x), and the state lives in arrays allocated once in :func:`run_kernel`.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.engine.compiled.tables import (
    A_S,
    B_S,
    DEP0,
    DEPCAP,
    DRAW0,
    FREE0,
    LIMIT,
    LIMIT_BYTES,
    PROP_S,
    REASON,
    SERVERS,
)

# integer state of a station
N_ARR, N_DROP, MAX_N, HEAD, COUNT, BYTES, DRAWN = range(7)
# float state of a station, seconds
WAIT, BUSY, SOJOURN = range(3)
# columns of the packet table
P_ROUTE, P_SIZE, P_HOP, P_SOURCE, P_REASON = range(5)
# counters of a run
N_HEAP, EID, NEXT_PID, N_ROWS, N_EVENTS = range(5)


@njit(cache=True)
def _before(t1, e1, t2, e2):
    return t1 < t2 or (t1 == t2 and e1 < e2)


@njit(cache=True)
def _push(ht, he, hp, n, t, e, p):
    """Insert event ``(t, e)`` of packet ``p`` into the heap of size ``n``."""
    i = n
    while i > 0:
        up = (i - 1) >> 1
        if not _before(t, e, ht[up], he[up]):
            break
        ht[i], he[i], hp[i] = ht[up], he[up], hp[up]
        i = up
    ht[i], he[i], hp[i] = t, e, p
    return n + 1


@njit(cache=True)
def _pop(ht, he, hp, n):
    """Remove the root of the heap of size ``n``; returns the new size."""
    n -= 1
    t, e, p = ht[n], he[n], hp[n]
    i = 0
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _before(ht[c + 1], he[c + 1], ht[c], he[c]):
            c += 1
        if not _before(ht[c], he[c], t, e):
            break
        ht[i], he[i], hp[i] = ht[c], he[c], hp[c]
        i = c
    ht[i], he[i], hp[i] = t, e, p
    return n


@njit(cache=True)
def _prune_ring(dt, db, base, cap, head, n, now):
    """Pop departures at or before ``now`` from a FIFO ring; returns (head, n, bytes freed)."""
    freed = 0
    while n > 0 and dt[base + head] <= now:
        freed += db[base + head]
        head = head + 1 if head + 1 < cap else 0
        n -= 1
    return head, n, freed


@njit(cache=True)
def _prune_heap(dt, db, base, n, now):
    """Pop departures at or before ``now`` from a min-heap; returns (n, bytes freed)."""
    freed = 0
    while n > 0 and dt[base] <= now:
        freed += db[base]
        n -= 1
        t, b = dt[base + n], db[base + n]
        i = 0
        while 2 * i + 1 < n:
            c = 2 * i + 1
            if c + 1 < n and dt[base + c + 1] < dt[base + c]:
                c += 1
            if dt[base + c] >= t:
                break
            dt[base + i], db[base + i] = dt[base + c], db[base + c]
            i = c
        dt[base + i], db[base + i] = t, b
    return n, freed


@njit(cache=True)
def _start(free, k0, servers, now, service):
    """Take the earliest free of servers ``k0 .. k0+servers-1``; returns (start, departure)."""
    k = k0
    for j in range(k0 + 1, k0 + servers):
        if free[j] < free[k]:
            k = j
    start = now if now > free[k] else free[k]
    dep = start + service
    free[k] = dep
    return start, dep


@njit(cache=True)
def _store(dt, db, base, cap, head, n, multi, dep, size):
    """Add a departure to a store of ``n``: at the ring's tail, or into the heap."""
    if not multi:
        j = head + n
        j = j - cap if j >= cap else j
    else:
        j = n
        while j > 0 and dt[base + ((j - 1) >> 1)] > dep:
            up = (j - 1) >> 1
            dt[base + j], db[base + j] = dt[base + up], db[base + up]
            j = up
    dt[base + j], db[base + j] = dep, size


@njit(cache=True)
def _account(s, i, n, now, start, dep, service, ss, sf, hf):
    """Counters of an accepted packet (``n`` in the system before it), after warm-up.

    Station ``s``'s, and flat hop ``i``'s: ``hf[i]`` = (packets, sojourn sum in s).
    """
    ss[s, N_ARR] += 1
    sf[s, WAIT] += start - now
    sf[s, BUSY] += service
    sf[s, SOJOURN] += dep - now
    hf[i, 0] += 1.0
    hf[i, 1] += dep - now
    if n >= ss[s, MAX_N]:
        ss[s, MAX_N] = n + 1


@njit(cache=True)
def _emit(pid, k, src, a_send, a_size, a_route, pk, p_send, p_done):
    """Packet ``pid`` is arrivals row ``k``, from source ``src``."""
    pk[pid, P_ROUTE], pk[pid, P_SIZE], pk[pid, P_HOP] = a_route[k], a_size[k], 0
    pk[pid, P_SOURCE], pk[pid, P_REASON] = src, 0
    p_send[pid] = a_send[k]
    p_done[pid] = np.nan


@njit(cache=True)
def _record(n, pid, s, now, start, dep, h_pkt, h_st, h_t):
    """Write per-hop row ``n``."""
    h_pkt[n], h_st[n] = pid, s
    h_t[n, 0], h_t[n, 1], h_t[n, 2] = now, start, dep


@njit(cache=True)
def _loop(end_s, warm_s, arrivals, stations, routes, state, packets, rows, heap, ctr):
    """Run the event loop: see :func:`run_kernel` for the arguments."""
    a_send, a_size, a_route, a_start, nxt = arrivals
    st_f, st_i, draws = stations
    rt_start, rt_len, rt_station, rt_extra, rt_end = routes
    ss, sf, free, dt, db, hf = state
    pk, p_send, p_done = packets
    h_pkt, h_st, h_t = rows
    ht, he, hp = heap
    n_heap = eid = n_pid = n_rows = n_events = 0  # locals, kept in registers
    for src in range(nxt.size):  # each source's first packet
        if nxt[src] < a_start[src + 1]:
            _emit(n_pid, nxt[src], src, a_send, a_size, a_route, pk, p_send, p_done)
            n_heap = _push(ht, he, hp, n_heap, a_send[nxt[src]], eid, n_pid)
            eid, n_pid, nxt[src] = eid + 1, n_pid + 1, nxt[src] + 1
    while n_heap > 0 and ht[0] < end_s:
        now, pid = ht[0], hp[0]
        n_heap = _pop(ht, he, hp, n_heap)
        n_events += 1
        r, h = pk[pid, P_ROUTE], pk[pid, P_HOP]
        i = rt_start[r] + h
        s = rt_station[i] if rt_len[r] else -1
        n, size = 0, pk[pid, P_SIZE]
        if s >= 0:  # prune the station's departures to those after now
            base, cap, multi = st_i[s, DEP0], st_i[s, DEPCAP], st_i[s, SERVERS] > 1
            if multi:
                n, freed = _prune_heap(dt, db, base, ss[s, COUNT], now)
            else:
                ss[s, HEAD], n, freed = _prune_ring(
                    dt, db, base, cap, ss[s, HEAD], ss[s, COUNT], now
                )
            ss[s, COUNT], ss[s, BYTES] = n, ss[s, BYTES] - freed
        if s < 0:  # the route drops the packet before the first station
            p_done[pid], pk[pid, P_REASON] = now, rt_end[r]
        elif n >= st_i[s, LIMIT] or (0 <= st_i[s, LIMIT_BYTES] < ss[s, BYTES] + size):
            p_done[pid], pk[pid, P_REASON] = now, st_i[s, REASON]
            if now >= warm_s:
                ss[s, N_DROP] += 1
        else:
            service = st_f[s, A_S] + st_f[s, B_S] * size + rt_extra[i]
            if st_i[s, DRAW0] >= 0:
                service *= draws[st_i[s, DRAW0] + ss[s, DRAWN]]
                ss[s, DRAWN] += 1
            start, dep = _start(free, st_i[s, FREE0], st_i[s, SERVERS], now, service)
            _store(dt, db, base, cap, ss[s, HEAD], n, multi, dep, size)
            ss[s, COUNT], ss[s, BYTES] = n + 1, ss[s, BYTES] + size
            if now >= warm_s:
                _account(s, i, n, now, start, dep, service, ss, sf, hf)
            if h_pkt.size:
                _record(n_rows, pid, s, now, start, dep, h_pkt, h_st, h_t)
                n_rows += 1
            if h + 1 < rt_len[r]:
                pk[pid, P_HOP] = h + 1
                n_heap = _push(ht, he, hp, n_heap, dep + st_f[s, PROP_S], eid, pid)
                eid += 1
            else:
                p_done[pid], pk[pid, P_REASON] = dep + st_f[s, PROP_S], rt_end[r]
        src = pk[pid, P_SOURCE]
        if h == 0 and nxt[src] < a_start[src + 1]:  # a source's event: its next packet
            _emit(n_pid, nxt[src], src, a_send, a_size, a_route, pk, p_send, p_done)
            n_heap = _push(ht, he, hp, n_heap, a_send[nxt[src]], eid, n_pid)
            eid, n_pid, nxt[src] = eid + 1, n_pid + 1, nxt[src] + 1
    ctr[N_HEAP], ctr[EID], ctr[NEXT_PID], ctr[N_ROWS], ctr[N_EVENTS] = (
        n_heap,
        eid,
        n_pid,
        n_rows,
        n_events,
    )


def run_kernel(end_s, warm_s, arrivals, stations, routes, n_free, n_dep, n_hop_rows, tandem=False):
    """Process every packet-hop event before ``end_s``.

    Parameters
    ----------
    end_s, warm_s : float
        End of the run and of the warm-up, seconds.
    arrivals : tuple
        ``Arrivals`` columns: send_s, size_bytes, route, source_start.
    stations : tuple
        ``Tables`` fields st_f, st_i, draws.
    routes : tuple
        ``Tables`` fields rt_start, rt_len, rt_station, rt_extra_s, rt_end_reason.
    n_free, n_dep, n_hop_rows : int
        Sizes of the server slots, departure store and per-hop rows (0: none).
    tandem : bool
        Run :func:`.tandem.tandem_loop` instead of the event loop (same answers;
        only where :func:`.tandem.eligible`).

    Returns
    -------
    tuple
        ``packets`` (``pk``: packets x [route, size, hop, source, reason],
        ``p_send``, ``p_done`` in s), station state ``(ss, sf, free, dt, db, hf)``
        (``hf``: per flat hop, packets and sojourn sum after the warm-up, s),
        per-hop rows ``(packet, station, [arrive, start, depart])`` and the
        counters ``ctr`` (``ctr[N_HEAP]``: packets still between hops at the end).
    """
    n_pkt, n_st = arrivals[0].size, stations[0].shape[0]
    packets = (np.zeros((n_pkt, 5), np.int32), np.empty(n_pkt), np.empty(n_pkt))
    state = (
        np.zeros((n_st, 7), np.int64), np.zeros((n_st, 3)), np.zeros(n_free),
        np.zeros(n_dep), np.zeros(n_dep, np.int64), np.zeros((routes[2].size, 2)),
    )  # fmt: skip
    rows = (
        np.zeros(n_hop_rows, np.int64),
        np.zeros(n_hop_rows, np.int64),
        np.zeros((n_hop_rows, 3)),
    )
    ctr = np.zeros(5, np.int64)
    nxt = arrivals[3][:-1].copy()  # next arrivals row of each source
    if tandem:
        from sim.engine.compiled.tandem import tandem_loop

        at = np.empty(n_pkt)  # allocated here, where tracemalloc sees it
        tandem_loop(end_s, warm_s, (*arrivals, nxt), stations, routes, state, packets, at, ctr)
        return packets, state, rows, ctr
    heap = (np.empty(n_pkt + 1), np.empty(n_pkt + 1, np.int64), np.empty(n_pkt + 1, np.int64))
    _loop(end_s, warm_s, (*arrivals, nxt), stations, routes, state, packets, rows, heap, ctr)
    return packets, state, rows, ctr


@njit(cache=True)
def in_system_at(t_s, st_i, ss, dt):
    """Packets in each station at ``t_s`` (departures after it still in the store)."""
    out = np.zeros(st_i.shape[0], dtype=np.int64)
    for s in range(st_i.shape[0]):
        base, cap, head = st_i[s, DEP0], st_i[s, DEPCAP], ss[s, HEAD]
        for j in range(ss[s, COUNT]):
            k = head + j if st_i[s, SERVERS] == 1 else j
            k = k - cap if k >= cap else k
            if dt[base + k] > t_s:
                out[s] += 1
    return out
