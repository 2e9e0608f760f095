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
def _sift_down(dt, db, base, n, i):
    """Restore the min-heap ``dt[base:base+n]`` (with sizes ``db``) below ``i``."""
    t, b = dt[base + i], db[base + i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and dt[base + c + 1] < dt[base + c]:
            c += 1
        if dt[base + c] >= t:
            break
        dt[base + i], db[base + i] = dt[base + c], db[base + c]
        i = c
    dt[base + i], db[base + i] = t, b


@njit(cache=True)
def _prune(s, now, st_i, ss, dt, db):
    """Forget departures at or before ``now``; returns the number in the system."""
    base, cap = st_i[s, DEP0], st_i[s, DEPCAP]
    n = ss[s, COUNT]
    if st_i[s, SERVERS] == 1:
        head = ss[s, HEAD]
        while n > 0 and dt[base + head] <= now:
            ss[s, BYTES] -= db[base + head]
            head = head + 1 if head + 1 < cap else 0
            n -= 1
        ss[s, HEAD] = head
    else:
        while n > 0 and dt[base] <= now:
            ss[s, BYTES] -= db[base]
            n -= 1
            dt[base], db[base] = dt[base + n], db[base + n]
            _sift_down(dt, db, base, n, 0)
    ss[s, COUNT] = n
    return n


@njit(cache=True)
def _store(s, dep, size, st_i, ss, dt, db):
    """Add a departure at ``dep`` of ``size`` bytes to station ``s``'s store."""
    base, cap, n = st_i[s, DEP0], st_i[s, DEPCAP], ss[s, COUNT]
    if st_i[s, SERVERS] == 1:
        j = ss[s, HEAD] + n
        j = j - cap if j >= cap else j
        dt[base + j], db[base + j] = dep, size
    else:
        i = n
        while i > 0:
            up = (i - 1) >> 1
            if dt[base + up] <= dep:
                break
            dt[base + i], db[base + i] = dt[base + up], db[base + up]
            i = up
        dt[base + i], db[base + i] = dep, size
    ss[s, COUNT] = n + 1
    ss[s, BYTES] += size


@njit(cache=True)
def _start(s, now, service, st_i, free):
    """Take the earliest free server of ``s``; returns (start, departure) times."""
    k = st_i[s, FREE0]
    for j in range(st_i[s, FREE0] + 1, st_i[s, FREE0] + st_i[s, SERVERS]):
        if free[j] < free[k]:
            k = j
    start = now if now > free[k] else free[k]
    dep = start + service
    free[k] = dep
    return start, dep


@njit(cache=True)
def _serve(s, now, size, extra_s, warm_s, st_f, st_i, draws, ss, sf, free, dt, db):
    """Packet of ``size`` bytes arrives at ``s``: returns (start, departure), or -1 if dropped."""
    n = _prune(s, now, st_i, ss, dt, db)
    full = n >= st_i[s, LIMIT]
    if not full and st_i[s, LIMIT_BYTES] >= 0:
        full = ss[s, BYTES] + size > st_i[s, LIMIT_BYTES]
    if full:
        if now >= warm_s:
            ss[s, N_DROP] += 1
        return -1.0, -1.0
    service = st_f[s, A_S] + st_f[s, B_S] * size + extra_s
    if st_i[s, DRAW0] >= 0:
        service *= draws[st_i[s, DRAW0] + ss[s, DRAWN]]
        ss[s, DRAWN] += 1
    start, dep = _start(s, now, service, st_i, free)
    _store(s, dep, size, st_i, ss, dt, db)
    if now >= warm_s:
        ss[s, N_ARR] += 1
        sf[s, WAIT] += start - now
        sf[s, BUSY] += service
        sf[s, SOJOURN] += dep - now
        if n >= ss[s, MAX_N]:
            ss[s, MAX_N] = n + 1
    return start, dep


@njit(cache=True)
def _new_packet(pid, k, src, a_send, a_size, a_route, pk, p_send, p_done):
    """Packet ``pid`` is row ``k`` of the arrivals, from source ``src``."""
    pk[pid, 0] = a_route[k]
    pk[pid, 1] = a_size[k]
    pk[pid, 2] = 0  # hop
    pk[pid, 3] = src
    pk[pid, 4] = 0  # drop reason
    p_send[pid] = a_send[k]
    p_done[pid] = np.nan


@njit(cache=True)
def run_kernel(
    end_s,
    warm_s,
    a_send,
    a_size,
    a_route,
    a_start,
    st_f,
    st_i,
    draws,
    n_free,
    n_dep,
    rt_start,
    rt_len,
    rt_station,
    rt_extra,
    rt_end,
    record_hops,
    n_hop_rows,
):
    """Process every packet-hop event before ``end_s``.

    Parameters are :class:`~.arrivals.Arrivals` and :class:`~.tables.Tables`
    fields (times and warm-up in seconds); ``n_hop_rows`` sizes the per-hop
    records (0 unless ``record_hops``).

    Returns
    -------
    tuple
        ``pk`` (packets x [route, size, hop, source, reason]), ``p_send``,
        ``p_done`` (s), ``ss``/``sf`` station counters, per-hop columns
        (packet, station, arrive, start, depart) and their row count, the packets
        still between hops at the end, the station departure store and the
        number of events processed.
    """
    n_src = a_start.size - 1
    n_pkt = a_send.size
    pk = np.zeros((n_pkt, 5), dtype=np.int64)
    p_send = np.empty(n_pkt)
    p_done = np.empty(n_pkt)
    ss = np.zeros((st_f.shape[0], 7), dtype=np.int64)
    sf = np.zeros((st_f.shape[0], 3))
    free = np.zeros(n_free)
    dt = np.zeros(n_dep)
    db = np.zeros(n_dep, dtype=np.int64)
    h_pkt = np.zeros(n_hop_rows, dtype=np.int64)
    h_st = np.zeros(n_hop_rows, dtype=np.int64)
    h_t = np.zeros((n_hop_rows, 3))
    n_rows = 0
    ht = np.empty(n_pkt + 1)
    he = np.empty(n_pkt + 1, dtype=np.int64)
    hp = np.empty(n_pkt + 1, dtype=np.int64)
    nxt = a_start[:-1].copy()  # next arrivals row of each source
    n_heap = 0
    eid = 0
    pid_next = 0
    for src in range(n_src):
        if nxt[src] < a_start[src + 1]:
            _new_packet(pid_next, nxt[src], src, a_send, a_size, a_route, pk, p_send, p_done)
            n_heap = _push(ht, he, hp, n_heap, a_send[nxt[src]], eid, pid_next)
            nxt[src] += 1
            eid += 1
            pid_next += 1
    n_events = 0
    while n_heap > 0 and ht[0] < end_s:
        now, pid = ht[0], hp[0]
        n_heap = _pop(ht, he, hp, n_heap)
        n_events += 1
        r, h = pk[pid, 0], pk[pid, 2]
        if rt_len[r] == 0:  # dropped before the first station
            p_done[pid] = now
            pk[pid, 4] = rt_end[r]
        else:
            i = rt_start[r] + h
            s = rt_station[i]
            start, dep = _serve(
                s, now, pk[pid, 1], rt_extra[i], warm_s, st_f, st_i, draws, ss, sf, free, dt, db
            )
            if dep < 0.0:
                p_done[pid] = now
                pk[pid, 4] = st_i[s, REASON]
            else:
                if record_hops:
                    h_pkt[n_rows], h_st[n_rows] = pid, s
                    h_t[n_rows, 0], h_t[n_rows, 1], h_t[n_rows, 2] = now, start, dep
                    n_rows += 1
                if h + 1 < rt_len[r]:
                    pk[pid, 2] = h + 1
                    n_heap = _push(ht, he, hp, n_heap, dep + st_f[s, PROP_S], eid, pid)
                    eid += 1
                else:
                    p_done[pid] = dep + st_f[s, PROP_S]
                    pk[pid, 4] = rt_end[r]
        src = pk[pid, 3]
        if h == 0 and nxt[src] < a_start[src + 1]:  # the source's next packet
            _new_packet(pid_next, nxt[src], src, a_send, a_size, a_route, pk, p_send, p_done)
            n_heap = _push(ht, he, hp, n_heap, a_send[nxt[src]], eid, pid_next)
            nxt[src] += 1
            eid += 1
            pid_next += 1
    return pk, p_send, p_done, ss, sf, h_pkt, h_st, h_t, n_rows, n_heap, dt, n_events


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
