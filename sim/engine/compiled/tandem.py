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
    BYTES,
    COUNT,
    DRAWN,
    HEAD,
    N_DROP,
    N_EVENTS,
    N_HEAP,
    NEXT_PID,
    P_HOP,
    P_REASON,
    P_SIZE,
    _account,
    _emit,
    _prune_ring,
    _start,
    _store,
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
    return np.unique(st).size == st.size and bool((tab.st_i[st, 0] == 1).all())


@njit(cache=True)
def _emit_all(end_s, a_send, a_size, a_route, pk, p_send, p_done):
    """Create the packets the run creates: the first, then one per first event run."""
    n_pid = 0
    while n_pid < a_send.size and (n_pid == 0 or a_send[n_pid - 1] < end_s):
        _emit(n_pid, n_pid, 0, a_send, a_size, a_route, pk, p_send, p_done)
        n_pid += 1
    return n_pid


@njit(cache=True)
def tandem_loop(end_s, warm_s, arrivals, stations, routes, state, packets, ctr):
    """Run every station of the route in turn; arguments as :func:`.kernel.run_kernel`."""
    a_send, a_size, a_route, a_start, nxt = arrivals
    st_f, st_i, draws = stations
    rt_start, rt_len, rt_station, rt_extra, rt_end = routes
    ss, sf, free, dt, db = state
    pk, p_send, p_done = packets
    n_pid = _emit_all(end_s, a_send, a_size, a_route, pk, p_send, p_done)
    r = a_route[0] if n_pid else 0
    length = rt_len[r]
    at = p_send[:n_pid].copy()  # time of each packet's next event; NaN once done
    pending, events = n_pid, 0
    for p in range(n_pid if length == 0 else 0):  # dropped before the first station
        if at[p] < end_s:
            p_done[p], pk[p, P_REASON] = at[p], rt_end[r]
            pending, events = pending - 1, events + 1
    for h in range(length):
        i = rt_start[r] + h
        s = rt_station[i]
        base, cap, k0 = st_i[s, DEP0], st_i[s, DEPCAP], st_i[s, FREE0]
        head, n, nbytes, drawn = ss[s, HEAD], ss[s, COUNT], ss[s, BYTES], ss[s, DRAWN]
        for p in range(n_pid):
            now = at[p]
            if not now < end_s:  # done (NaN), or its event lies past the end
                continue
            events += 1
            size = pk[p, P_SIZE]
            head, n, freed = _prune_ring(dt, db, base, cap, head, n, now)
            nbytes -= freed
            if n >= st_i[s, LIMIT] or (0 <= st_i[s, LIMIT_BYTES] < nbytes + size):
                p_done[p], pk[p, P_REASON], at[p] = now, st_i[s, REASON], np.nan
                pending -= 1
                if now >= warm_s:
                    ss[s, N_DROP] += 1
                continue
            service = st_f[s, A_S] + st_f[s, B_S] * size + rt_extra[i]
            if st_i[s, DRAW0] >= 0:
                service *= draws[st_i[s, DRAW0] + drawn]
                drawn += 1
            start, dep = _start(free, k0, 1, now, service)
            _store(dt, db, base, cap, head, n, False, dep, size)
            if now >= warm_s:
                _account(s, n, now, start, dep, service, ss, sf)
            n, nbytes = n + 1, nbytes + size
            if h + 1 < length:
                pk[p, P_HOP], at[p] = h + 1, dep + st_f[s, PROP_S]
            else:
                p_done[p], pk[p, P_REASON], at[p] = dep + st_f[s, PROP_S], rt_end[r], np.nan
                pending -= 1
        ss[s, HEAD], ss[s, COUNT], ss[s, BYTES], ss[s, DRAWN] = head, n, nbytes, drawn
    ctr[N_HEAP], ctr[NEXT_PID], ctr[N_EVENTS] = pending, n_pid, events
