"""Station by station: the event loop's answers for one source on a tandem route.

When one source sends every packet along one route of distinct single-server
FIFO stations, the event loop of :mod:`.kernel` processes each station's
arrivals in packet order: packet ``p`` reaches station ``k`` no later than packet
``p + 1`` (FIFO, one server: departures are in order; the same propagation
follows), and at equal times ``p``'s event was pushed first (its previous event
ran first, by induction from the send times), so it pops first. Every station
therefore sees the same arrivals, in the same order, with the same state, as in
the event loop, and a loop over stations, then packets (Lindley's recursion,
Lindley 1952) gives identical floats without a heap. The first packet is
created at the start and packet ``p + 1`` when ``p``'s first event runs, i.e.
if ``p`` is sent before the end; an event at or after ``end_s`` never runs, so
its packet stays in flight at that hop.

Not for per-hop records (the event loop writes them in event order) nor for
merging flows or several servers (arrivals at a station would interleave in an
order only the event loop knows); :func:`eligible` says when it applies.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from sim.engine.compiled.kernel import (
    BUSY,
    BYTES,
    COUNT,
    DRAWN,
    HEAD,
    MAX_N,
    N_ARR,
    N_DROP,
    N_EVENTS,
    N_HEAP,
    NEXT_PID,
    P_HOP,
    P_REASON,
    P_SIZE,
    SOJOURN,
    WAIT,
    _emit,
)
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


def eligible(source_start: np.ndarray, route: np.ndarray, tab, hops: bool) -> bool:
    """Whether a run is one source on one route of distinct single-server stations.

    Parameters
    ----------
    source_start, route : ndarray
        :class:`~.arrivals.Arrivals` columns.
    tab : Tables
        The run's stations and routes.
    hops : bool
        Per-hop records asked for (then the event loop runs).
    """
    if hops or source_start.size != 2 or route.size == 0 or (route != route[0]).any():
        return False
    r = int(route[0])
    st = tab.rt_station[tab.rt_start[r] : tab.rt_start[r] + tab.rt_len[r]]
    return np.unique(st).size == st.size and bool((tab.st_i[st, SERVERS] == 1).all())


@njit(cache=True)
def _emit_all(end_s, a_send, a_size, a_route, pk, p_send, p_done):
    """Create the packets the run creates: the first, then one per first event run."""
    n_pid = 0
    while n_pid < a_send.size and (n_pid == 0 or a_send[n_pid - 1] < end_s):
        _emit(n_pid, n_pid, 0, a_send, a_size, a_route, pk, p_send, p_done)
        n_pid += 1
    return n_pid


@njit(cache=True)
def _station(s, i, last, end_s, warm_s, stations, rt_extra, end_reason, state, packets, at):
    """Run every packet's visit of station ``s`` (flat hop ``i``); return those that left.

    The inner loop calls nothing (numba counts references of arrays passed to a
    call): the station's state lives in locals, written back at the end.
    """
    st_f, st_i, draws = stations
    ss, sf, free, dt, db, hf = state
    pk, p_send, p_done = packets
    a, b, prop, extra = st_f[s, A_S], st_f[s, B_S], st_f[s, PROP_S], rt_extra[i]
    limit, limit_bytes, reason = st_i[s, LIMIT], st_i[s, LIMIT_BYTES], st_i[s, REASON]
    base, cap, draw0 = st_i[s, DEP0], st_i[s, DEPCAP], st_i[s, DRAW0]
    head, n, nbytes, drawn = ss[s, HEAD], ss[s, COUNT], ss[s, BYTES], ss[s, DRAWN]
    n_arr, n_drop, max_n = ss[s, N_ARR], ss[s, N_DROP], ss[s, MAX_N]
    wait, busy, sojourn = sf[s, WAIT], sf[s, BUSY], sf[s, SOJOURN]
    hop_n, hop_s = hf[i, 0], hf[i, 1]
    free_s = free[st_i[s, FREE0]]
    gone = 0
    for p in range(at.size):
        now = at[p]
        if not now < end_s:  # done (NaN), or its event lies past the end
            continue
        size = pk[p, P_SIZE]
        while n > 0 and dt[base + head] <= now:  # departures up to now leave
            nbytes -= db[base + head]
            head = head + 1 if head + 1 < cap else 0
            n -= 1
        if n >= limit or (0 <= limit_bytes < nbytes + size):
            p_done[p], pk[p, P_REASON], at[p] = now, reason, np.nan
            gone += 1
            if now >= warm_s:
                n_drop += 1
            continue
        service = a + b * size + extra
        if draw0 >= 0:
            service *= draws[draw0 + drawn]
            drawn += 1
        start = now if now > free_s else free_s
        dep = start + service
        free_s = dep
        j = head + n
        j = j - cap if j >= cap else j
        dt[base + j], db[base + j] = dep, size
        if now >= warm_s:
            n_arr += 1
            wait += start - now
            busy += service
            sojourn += dep - now
            hop_n += 1.0
            hop_s += dep - now
            if n >= max_n:
                max_n = n + 1
        n, nbytes = n + 1, nbytes + size
        if last:
            p_done[p], pk[p, P_REASON], at[p] = dep + prop, end_reason, np.nan
            gone += 1
        else:
            pk[p, P_HOP] += 1
            at[p] = dep + prop
    ss[s, HEAD], ss[s, COUNT], ss[s, BYTES], ss[s, DRAWN] = head, n, nbytes, drawn
    ss[s, N_ARR], ss[s, N_DROP], ss[s, MAX_N] = n_arr, n_drop, max_n
    sf[s, WAIT], sf[s, BUSY], sf[s, SOJOURN] = wait, busy, sojourn
    hf[i, 0], hf[i, 1] = hop_n, hop_s
    free[st_i[s, FREE0]] = free_s
    return gone


@njit(cache=True)
def tandem_loop(end_s, warm_s, arrivals, stations, routes, state, packets, at, ctr):
    """Run every station of the route in turn; arguments as :func:`.kernel.run_kernel`.

    ``at`` (one float per packet) holds each packet's next event time, s.
    """
    a_send, a_size, a_route, a_start, nxt = arrivals
    rt_start, rt_len, rt_station, rt_extra, rt_end = routes
    pk, p_send, p_done = packets
    n_pid = _emit_all(end_s, a_send, a_size, a_route, pk, p_send, p_done)
    r = a_route[0] if n_pid else 0
    length = rt_len[r]
    at = at[:n_pid]  # time of each packet's next event; NaN once done
    at[:] = p_send[:n_pid]
    pending, events = n_pid, 0
    for p in range(n_pid if length == 0 else 0):  # dropped before the first station
        if at[p] < end_s:
            p_done[p], pk[p, P_REASON] = at[p], rt_end[r]
            pending, events = pending - 1, events + 1
    for h in range(length):
        events += int((at < end_s).sum())
        i = rt_start[r] + h
        last = h + 1 == length
        pending -= _station(
            rt_station[i], i, last, end_s, warm_s, stations, rt_extra, rt_end[r], state, packets, at
        )
    ctr[N_HEAP], ctr[NEXT_PID], ctr[N_EVENTS] = pending, n_pid, events
