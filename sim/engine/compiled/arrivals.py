"""Every open-loop source's packets (send time, size, route), generated before the run.

The sources are the SimPy engine's own: :func:`sim.engine.workloads.install_flows`
builds them and schedules each one's first packet. Their streams have then drawn
the first gap and size; this module continues each stream with the very calls
the SimPy engine would make, in the same block sizes (``rng.exponential(mean,
4096)``, ``rng.choice(sizes, 4096, p)``, ``_Gaps.next`` for on/off), and adds the
gaps in the same order (``numpy.cumsum`` adds sequentially, like ``t += gap``).
So every send time and size is the number the SimPy engine would have drawn.

Drawing more numbers than the run uses is harmless: each stream belongs to one
flow and one purpose (see :func:`sim.engine.network.stream`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from sim.engine.network import Network
from sim.engine.workloads import OpenLoop, TraceReplay

_BLOCK = 4096  # the SimPy engine's block size (sim.engine.workloads._BLOCK)


@dataclass(frozen=True)
class Arrivals:
    """Packets of every source, one source after the other.

    Attributes
    ----------
    send_s : ndarray of float64
        Send times, seconds; ascending within a source.
    size_bytes, route : ndarray of int64
        IP size (bytes) and route index of each packet.
    source_start : ndarray of int64
        Source ``k`` owns rows ``source_start[k]:source_start[k + 1]``; sources are
        in the order their first packets were scheduled (their packet ids).
    """

    send_s: np.ndarray
    size_bytes: np.ndarray
    route: np.ndarray
    source_start: np.ndarray


def installed_sources(net: Network) -> list[OpenLoop | TraceReplay]:
    """Return the sources ``install_flows`` started, in the order of their first packets.

    Invariant relied on (checked): after ``install_flows`` and before the run,
    SimPy's queue holds exactly one event per source that sends anything, its
    callback is the source's bound ``fire`` and its value the source's first
    packet id, ``0, 1, 2, ...`` in scheduling order.
    """
    entries = sorted(net.env._queue, key=lambda e: e[2])  # (time, priority, eid, event)
    out: list[OpenLoop | TraceReplay] = []
    for pid, (_, _, _, ev) in enumerate(entries):
        src = getattr(ev.callbacks[0], "__self__", None)
        if not isinstance(src, OpenLoop | TraceReplay) or ev._value != pid:
            raise RuntimeError(
                "the compiled engine found an event that is not an open-loop source's "
                f"first packet ({ev.callbacks[0]!r}); it runs open-loop flows only"
            )
        out.append(src)
    return out


def _gap_blocks(src: OpenLoop) -> Iterator[np.ndarray]:
    """Yield the gaps after the first, block by block, as the source would draw them."""
    g = src.gaps
    if g.kind == "constant":
        while True:
            yield np.full(_BLOCK, g.mean)
    elif g.kind == "poisson":
        yield np.asarray(g.buf[g.i :], dtype=np.float64)
        while True:
            yield g.rng.exponential(g.mean, size=_BLOCK)
    else:  # on/off: the period logic is sequential, so call the source's own code
        while True:
            yield np.fromiter((g.next() for _ in range(_BLOCK)), np.float64, _BLOCK)


def _send_times(src: OpenLoop) -> np.ndarray:
    """Send times ``t0, t0 + g1, ...`` below the source's stop time, seconds."""
    parts = [np.array([src.t])]
    t = src.t
    for gaps in _gap_blocks(src):
        ts = np.cumsum(np.concatenate(([t], gaps)))[1:]
        k = int(np.searchsorted(ts, src.stop, side="left"))  # times are ascending
        parts.append(ts[:k])
        if k < ts.size:
            break
        if ts.size:
            t = float(ts[-1])
    return np.concatenate(parts)


def _sizes(src: OpenLoop, first_bytes: int, n: int) -> np.ndarray:
    """Sizes of the source's ``n`` packets, the first already drawn, bytes."""
    sz = src.sizes
    if sz.fixed is not None:
        return np.full(n, sz.fixed, dtype=np.int64)
    parts = [np.array([first_bytes], dtype=np.int64), np.asarray(sz.buf[sz.i :], dtype=np.int64)]
    have = 1 + parts[1].size
    while have < n:
        block = sz.rng.choice(sz.sizes, size=_BLOCK, p=sz.probs).astype(np.int64)
        parts.append(block)
        have += block.size
    return np.concatenate(parts)[:n]


def generate(net: Network) -> Arrivals:
    """Generate the packets of every source ``install_flows`` started on ``net``."""
    times, sizes, routes, starts = [], [], [], [0]
    for pid, src in enumerate(installed_sources(net)):
        if isinstance(src, TraceReplay):
            rows = np.asarray(src.rows, dtype=np.float64).reshape(-1, 3)
            t, size, route = rows[:, 0], rows[:, 1].astype(np.int64), rows[:, 2].astype(np.int64)
        else:
            t = _send_times(src)
            size = _sizes(src, int(net.rec.size[pid]), t.size)
            route = np.full(t.size, src.route, dtype=np.int64)
        times.append(t)
        sizes.append(size)
        routes.append(route)
        starts.append(starts[-1] + t.size)
    cat = np.concatenate
    return Arrivals(
        send_s=cat(times) if times else np.zeros(0),
        size_bytes=cat(sizes) if sizes else np.zeros(0, dtype=np.int64),
        route=cat(routes) if routes else np.zeros(0, dtype=np.int64),
        source_start=np.asarray(starts, dtype=np.int64),
    )
