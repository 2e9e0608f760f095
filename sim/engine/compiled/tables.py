"""The network of a run as flat arrays for the kernel: stations and routes.

Built from the SimPy engine's own :class:`~sim.engine.network.Network` (stations,
costs, routes, drop reasons), so both engines read one model of the data plane.
Column indices are module constants the kernel compiles in.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine.compiled.arrivals import Arrivals
from sim.engine.network import Network
from sim.engine.stations import Station

_BLOCK = 4096  # exponential draws per block (sim.engine.stations._BLOCK)

# float parameters of a station
A_S, B_S, PROP_S = 0, 1, 2
# integer parameters of a station
SERVERS, LIMIT, LIMIT_BYTES, REASON, DRAW0, FREE0, DEP0, DEPCAP = range(8)


@dataclass(frozen=True)
class Tables:
    """Stations and routes of one run.

    Attributes
    ----------
    st_f : ndarray (stations, 3) of float64
        ``A_S`` per-packet and ``B_S`` per-byte service time, ``PROP_S``
        propagation; seconds.
    st_i : ndarray (stations, 8) of int64
        ``SERVERS``; ``LIMIT`` packets and ``LIMIT_BYTES`` bytes (-1: none);
        ``REASON`` drop-reason id; ``DRAW0`` first exponential draw in
        :attr:`draws` (-1: deterministic); ``FREE0`` first server slot;
        ``DEP0``/``DEPCAP`` slice of the departure store.
    draws : ndarray of float64
        Exp(1) draws of every exponential station, from its own stream.
    n_free, n_dep : int
        Sizes of the server-slot and departure stores.
    rt_start, rt_len : ndarray of int64
        Route ``r``'s hops are ``rt_station[rt_start[r]:][:rt_len[r]]``.
    rt_station : ndarray of int64
        Station of each hop.
    rt_extra_s : ndarray of float64
        Extra service time of each hop (SNAT/de-NAT), seconds.
    rt_end_reason : ndarray of int64
        0 if the route delivers, else the drop-reason id at its end.
    visits : ndarray of int64
        Upper bound on arrivals at each station (packets x occurrences on routes).
    """

    st_f: np.ndarray
    st_i: np.ndarray
    draws: np.ndarray
    n_free: int
    n_dep: int
    rt_start: np.ndarray
    rt_len: np.ndarray
    rt_station: np.ndarray
    rt_extra_s: np.ndarray
    rt_end_reason: np.ndarray
    visits: np.ndarray


def end_reason(net: Network, r: int) -> int:
    """Drop-reason id at the end of route ``r`` (0: delivered); as ``Network.add_route``."""
    path = net.routes[r]
    if path.verdict == "delivered":
        return 0
    reason = path.reason if path.verdict == "dropped" else f"misdelivered: {path.reason}"
    return net.rec.reason_id(reason)


def _visits(net: Network, arr: Arrivals) -> np.ndarray:
    per_route = np.bincount(arr.route, minlength=len(net.routes))
    visits = np.zeros(len(net.stations), dtype=np.int64)
    for r, hops in enumerate(net.route_stations):
        for s in hops:
            visits[s] += per_route[r]
    return visits


def _draws(stations: list[Station], visits: np.ndarray, st_i: np.ndarray) -> np.ndarray:
    """Each exponential station's draws, in the SimPy engine's blocks of 4096."""
    parts, n = [], 0
    for s, st in enumerate(stations):
        if st.rng is None:
            continue
        st_i[s, DRAW0] = n
        for _ in range(-(-int(visits[s]) // _BLOCK)):
            parts.append(st.rng.standard_exponential(_BLOCK))
            n += _BLOCK
    return np.concatenate(parts) if parts else np.zeros(1)


def build_tables(net: Network, arr: Arrivals) -> Tables:
    """Flatten ``net``'s stations and routes; size the stores for ``arr``'s packets."""
    stations = net.stations
    if any(type(st) is not Station for st in stations):
        raise RuntimeError("the compiled engine models FIFO stations only")
    visits = _visits(net, arr)
    st_f = np.array([[st.a, st.b, st.prop] for st in stations], dtype=np.float64).reshape(-1, 3)
    st_i = np.full((len(stations), 8), -1, dtype=np.int64)
    n_free = n_dep = 0
    for s, st in enumerate(stations):
        cap = int(min(st.limit, visits[s])) + 1  # never more in the system than this
        limit_bytes = -1 if st.limit_bytes is None else st.limit_bytes
        st_i[s, :DRAW0] = (st.servers, st.limit, limit_bytes, st.drop_reason)
        st_i[s, FREE0:] = (n_free, n_dep, cap)
        n_free += st.servers
        n_dep += cap
    draws = _draws(stations, visits, st_i)
    rt_len = np.array([len(h) for h in net.route_stations], dtype=np.int64)
    rt_start = np.cumsum(rt_len) - rt_len
    flat_st = [s for hops in net.route_stations for s in hops]
    flat_extra = [
        e for r, hops in enumerate(net.route_stations) for e in net.route_extra[r][: len(hops)]
    ]
    return Tables(
        st_f=st_f,
        st_i=st_i,
        draws=draws,
        n_free=max(n_free, 1),
        n_dep=max(n_dep, 1),
        rt_start=rt_start,
        rt_len=rt_len,
        rt_station=np.asarray(flat_st, dtype=np.int64),
        rt_extra_s=np.asarray(flat_extra, dtype=np.float64),
        rt_end_reason=np.array([end_reason(net, r) for r in range(len(net.routes))], np.int64),
        visits=visits,
    )
