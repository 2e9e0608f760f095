"""The CPU-aware data path (``[datapath] model = "cpu"``) as flat arrays for :mod:`.cpu_loop`.

The reference is :mod:`sim.engine.cpu` (cores serving segments FIFO, queues with
their limits and drop reasons, sender threads) on routes compiled by
:mod:`sim.engine.cpu_routes`. The tables below are read from those very objects
after :func:`sim.engine.workloads.install_flows` compiled the routes, so both
engines run one model: each hop of a route is a core segment (work ``a_s + b_s *
size``, the queue it enters through, the sending thread in front of a route's
first segment, the receiving thread in front of its last) or a wire (a FIFO
:class:`~sim.engine.stations.Station`). A receiving thread
(:class:`~sim.engine.cpu.Reader`) owns its socket buffer (a queue of the table,
charged skb truesize) and looks for a sending thread holding its core among the
core's threads, in the core's order.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.engine.compiled.arrivals import Arrivals
from sim.engine.compiled.tables import end_reason
from sim.engine.cpu import Core, Reader, Thread
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
# integer parameters of a reader: its core, socket queue, threads of its core
# (slice of ``core_threads``), pending store slice
R_CORE, R_SOCK, R_TH0, R_THN, R0, RCAP = range(6)
# float parameters of a reader: scheduler slice (s), truesize = a + b * size (bytes)
R_SLICE_S, R_TS_A, R_TS_B = range(3)


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
    rd_i : ndarray (readers, 6) of int64
        ``R_CORE``, ``R_SOCK`` (its socket buffer's queue), ``R_TH0``/``R_THN``
        (its core's sending threads in ``core_threads``, in the core's order),
        ``R0``/``RCAP`` slice of the pending store.
    rd_f : ndarray (readers, 3) of float64
        ``R_SLICE_S`` scheduler slice, seconds; ``R_TS_A``/``R_TS_B`` truesize
        charged per datagram, bytes and bytes per byte.
    core_threads : ndarray of int64
        Thread indices, by reader.
    rt_start, rt_len, rt_end_reason : ndarray of int64
        As :class:`~.tables.Tables`.
    hop_station, hop_queue, hop_gate, hop_reader : ndarray of int64
        Station of each flat hop, the queue its segment enters through, the
        sending and the receiving thread in front of it (-1: none).
    hop_a_s, hop_b_s : ndarray of float64
        Work of each core segment, seconds and seconds per byte.
    n_dep, n_held, n_wait, n_pend, n_rows : int
        Sizes of the departure, held, waiting and pending stores and of the
        per-hop rows.
    """

    st_f: np.ndarray
    st_i: np.ndarray
    q_i: np.ndarray
    th_i: np.ndarray
    rd_i: np.ndarray
    rd_f: np.ndarray
    core_threads: np.ndarray
    rt_start: np.ndarray
    rt_len: np.ndarray
    rt_end_reason: np.ndarray
    hop_station: np.ndarray
    hop_queue: np.ndarray
    hop_gate: np.ndarray
    hop_reader: np.ndarray
    hop_a_s: np.ndarray
    hop_b_s: np.ndarray
    n_dep: int
    n_held: int
    n_wait: int
    n_pend: int
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


class _Index:
    """Objects numbered in order of first use, with the packets that visit each."""

    def __init__(self) -> None:
        self.objs: list = []
        self.visits: list[int] = []
        self._at: dict[int, int] = {}

    def add(self, obj, n: int) -> int:
        """Count ``n`` more visits of ``obj`` (numbered on first use); return its number."""
        k = self._at.setdefault(id(obj), len(self.objs))
        if k == len(self.objs):
            self.objs.append(obj)
            self.visits.append(0)
        self.visits[k] += n
        return k


def _hops(net: Network, per_route: np.ndarray) -> dict:
    """Each flat hop's station, segment work, queue, threads; visits per element."""
    plane = net.plane
    queues, threads, readers = _Index(), _Index(), _Index()
    for core in net.stations:  # every sending thread, in its core's order
        for th in getattr(core, "threads", ()):
            threads.add(th, 0)
    cols: dict[str, list] = {k: [] for k in ("st", "q", "gate", "rd", "a", "b")}
    visits = np.zeros(len(net.stations), dtype=np.int64)
    for r, sts in enumerate(net.route_stations):
        n = int(per_route[r])
        for h, s in enumerate(sts):
            visits[s] += n
            obj = net.route_arrive[r][h].__self__
            work = plane.work[r][h]
            q, gate, rd, a_s, b_s = -1, -1, -1, 0.0, 0.0
            if work is not None:
                a_s, b_s, queue = work
                q = queues.add(queue, n) if queue is not None else -1
            if isinstance(obj, Thread):
                gate = threads.add(obj, n)
            elif isinstance(obj, Reader):
                if h != len(sts) - 1 or q >= 0:
                    raise RuntimeError("the compiled CPU path reads at a route's last segment")
                rd = readers.add(obj, n)
                queues.add(obj.sock, n)
            for k, v in zip(cols, (s, q, gate, rd, a_s, b_s), strict=True):
                cols[k].append(v)
    return {"cols": cols, "visits": visits, "q": queues, "th": threads, "rd": readers}


def _readers(readers: _Index, queues: _Index, threads: _Index) -> tuple:
    """Reader parameters, their cores' threads and the pending store's size."""
    rd_i, n_pend = _slices(readers.visits, 6)
    rd_f = np.zeros((max(len(readers.objs), 1), 3))
    core_threads: list[int] = []
    for k, rd in enumerate(readers.objs):
        # another endpoint's thread as its index, the reader's own as -(index + 1)
        ths = [
            threads.add(th, 0) if th.pod != rd.pod else -threads.add(th, 0) - 1
            for th in rd.core.threads
        ]
        rd_i[k, :R0] = (rd.index, queues.add(rd.sock, 0), len(core_threads), len(ths))
        core_threads += ths
        rd_f[k] = (rd.slice_s, *rd.truesize)
    return rd_i, rd_f, np.asarray(core_threads + [0], dtype=np.int64), n_pend


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
    q_i, n_held = _slices(hops["q"].visits, 6)
    for k, q in enumerate(hops["q"].objs):
        q_i[k, :Q0] = (q.limit, q.limit_bytes, q.reason, int(q.until_start))
    th_i, n_wait = _slices(hops["th"].visits, 2)
    rd_i, rd_f, core_threads, n_pend = _readers(hops["rd"], hops["q"], hops["th"])
    rt_len = np.array([len(h) for h in net.route_stations], dtype=np.int64)
    cols = {k: np.asarray(v, dtype=np.int64) for k, v in hops["cols"].items() if k not in "ab"}
    return CpuTables(
        st_f=st_f,
        st_i=st_i,
        q_i=q_i,
        th_i=th_i,
        rd_i=rd_i,
        rd_f=rd_f,
        core_threads=core_threads,
        rt_start=np.cumsum(rt_len) - rt_len,
        rt_len=rt_len,
        rt_end_reason=np.array([end_reason(net, r) for r in range(len(net.routes))], np.int64),
        hop_station=cols["st"],
        hop_queue=cols["q"],
        hop_gate=cols["gate"],
        hop_reader=cols["rd"],
        hop_a_s=np.asarray(hops["cols"]["a"], dtype=np.float64),
        hop_b_s=np.asarray(hops["cols"]["b"], dtype=np.float64),
        n_dep=n_dep,
        n_held=n_held,
        n_wait=n_wait,
        n_pend=n_pend,
        n_rows=int(hops["visits"].sum()),
    )
