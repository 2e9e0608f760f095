"""The CPU-aware data path (``[datapath] model = "cpu"``) as flat arrays for :mod:`.cpu_loop`.

The reference is :mod:`sim.engine.cpu` (cores serving segments FIFO, queues with
their limits and drop reasons, sender threads) on routes compiled by
:mod:`sim.engine.cpu_routes`. The tables below are read from those very objects
after :func:`sim.engine.workloads.install_flows` compiled the routes, so both
engines run one model: each hop of a route is a core segment (work ``a_s + b_s *
size``, the queue it enters through, the sending thread in front of a route's
first segment) or a wire (a FIFO :class:`~sim.engine.stations.Station`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine.compiled.arrivals import Arrivals
from sim.engine.compiled.tables import end_reason
from sim.engine.cpu import Core, Thread
from sim.engine.network import Network
from sim.engine.stations import Station

# float parameters of a station (core or wire)
A_S, B_S, PROP_S = 0, 1, 2
# integer parameters of a station; IS_CORE 1 for a core, 0 for a wire
IS_CORE, LIMIT, REASON, DEP0, DEPCAP = range(5)
# integer parameters of a queue
Q_LIMIT, Q_LIMIT_BYTES, Q_REASON, Q_UNTIL_START, Q0, QCAP = range(6)
# integer parameters of a thread
T0, TCAP = range(2)


@dataclass(frozen=True)
class CpuTables:
    """Cores, wires, queues, threads and routes of one ``model = "cpu"`` run.

    Attributes
    ----------
    st_f : ndarray (stations, 3) of float64
        Wires: ``A_S`` per-packet and ``B_S`` per-byte service, ``PROP_S``
        propagation, seconds (zero for cores).
    st_i : ndarray (stations, 5) of int64
        ``IS_CORE``; wires' ``LIMIT`` packets and ``REASON``; ``DEP0``/``DEPCAP``
        slice of the departure store.
    q_i : ndarray (queues, 6) of int64
        ``Q_LIMIT`` packets, ``Q_LIMIT_BYTES`` bytes, ``Q_REASON``,
        ``Q_UNTIL_START`` (1: held until the segment starts, 0: until it ends),
        ``Q0``/``QCAP`` slice of the held store.
    th_i : ndarray (threads, 2) of int64
        ``T0``/``TCAP`` slice of the waiting store.
    rt_start, rt_len, rt_end_reason : ndarray of int64
        As :class:`~.tables.Tables`.
    hop_station, hop_queue, hop_gate : ndarray of int64
        Station of each flat hop, the queue its segment enters through and the
        thread in front of it (-1: none).
    hop_a_s, hop_b_s : ndarray of float64
        Work of each core segment, seconds and seconds per byte.
    n_dep, n_held, n_wait, n_rows : int
        Sizes of the departure, held and waiting stores and of the per-hop rows.
    """

    st_f: np.ndarray
    st_i: np.ndarray
    q_i: np.ndarray
    th_i: np.ndarray
    rt_start: np.ndarray
    rt_len: np.ndarray
    rt_end_reason: np.ndarray
    hop_station: np.ndarray
    hop_queue: np.ndarray
    hop_gate: np.ndarray
    hop_a_s: np.ndarray
    hop_b_s: np.ndarray
    n_dep: int
    n_held: int
    n_wait: int
    n_rows: int


def _stations(stations: list, visits: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Station parameters and departure-store slices."""
    st_f = np.zeros((len(stations), 3))
    st_i = np.zeros((len(stations), 5), dtype=np.int64)
    n_dep = 0
    for s, st in enumerate(stations):
        if isinstance(st, Core):
            cap = int(visits[s]) + 1
            st_i[s] = (1, -1, -1, n_dep, cap)
        else:
            if type(st) is not Station or st.servers != 1 or st.limit_bytes is not None:
                raise RuntimeError("the compiled CPU path models single-server wires only")
            if st.rng is not None or st.loss:
                raise RuntimeError("the compiled CPU path models deterministic wires only")
            cap = int(min(st.limit, visits[s])) + 1
            st_f[s] = (st.a, st.b, st.prop)
            st_i[s] = (0, st.limit, st.drop_reason, n_dep, cap)
        n_dep += cap
    return st_f, st_i, max(n_dep, 1)


def _hops(net: Network, per_route: np.ndarray) -> dict:
    """Each flat hop's station, segment work, queue and gate; visits per element."""
    plane = net.plane
    queues: dict[int, int] = {}
    q_objs, q_visits = [], []
    threads: dict[int, int] = {}
    th_visits: list[int] = []
    cols: dict[str, list] = {k: [] for k in ("st", "q", "gate", "a", "b")}
    visits = np.zeros(len(net.stations), dtype=np.int64)
    for r, sts in enumerate(net.route_stations):
        for h, s in enumerate(sts):
            visits[s] += per_route[r]
            obj = net.route_arrive[r][h].__self__
            work = plane.work[r][h]
            q, gate, a_s, b_s = -1, -1, 0.0, 0.0
            if work is not None:
                a_s, b_s, queue = work
                if queue is not None:
                    q = queues.setdefault(id(queue), len(q_objs))
                    if q == len(q_objs):
                        q_objs.append(queue)
                        q_visits.append(0)
                    q_visits[q] += per_route[r]
            if isinstance(obj, Thread):
                gate = threads.setdefault(id(obj), len(th_visits))
                if gate == len(th_visits):
                    th_visits.append(0)
                th_visits[gate] += per_route[r]
            for k, v in zip(cols, (s, q, gate, a_s, b_s), strict=True):
                cols[k].append(v)
    return {"cols": cols, "visits": visits, "queues": (q_objs, q_visits), "threads": th_visits}


def _slices(counts: list[int], width: int) -> tuple[np.ndarray, int]:
    """Rows ``(start, capacity)`` of stores holding at most ``counts[k]`` entries each."""
    out = np.zeros((len(counts), width), dtype=np.int64)
    n = 0
    for k, c in enumerate(counts):
        out[k, -2:] = (n, int(c) + 1)
        n += int(c) + 1
    return out, max(n, 1)


def build_cpu_tables(net: Network, arr: Arrivals) -> CpuTables:
    """Flatten ``net``'s cores, wires, queues and threads (``net.plane`` set)."""
    per_route = np.bincount(arr.route, minlength=len(net.routes))
    hops = _hops(net, per_route)
    st_f, st_i, n_dep = _stations(net.stations, hops["visits"])
    q_objs, q_visits = hops["queues"]
    q_i, n_held = _slices(q_visits, 6)
    for k, q in enumerate(q_objs):
        q_i[k, :Q0] = (q.limit, q.limit_bytes, q.reason, int(q.until_start))
    th_i, n_wait = _slices(hops["threads"], 2)
    rt_len = np.array([len(h) for h in net.route_stations], dtype=np.int64)
    cols = hops["cols"]
    return CpuTables(
        st_f=st_f,
        st_i=st_i,
        q_i=q_i,
        th_i=th_i,
        rt_start=np.cumsum(rt_len) - rt_len,
        rt_len=rt_len,
        rt_end_reason=np.array([end_reason(net, r) for r in range(len(net.routes))], np.int64),
        hop_station=np.asarray(cols["st"], dtype=np.int64),
        hop_queue=np.asarray(cols["q"], dtype=np.int64),
        hop_gate=np.asarray(cols["gate"], dtype=np.int64),
        hop_a_s=np.asarray(cols["a"], dtype=np.float64),
        hop_b_s=np.asarray(cols["b"], dtype=np.float64),
        n_dep=n_dep,
        n_held=n_held,
        n_wait=n_wait,
        n_rows=int(hops["visits"].sum()),
    )
