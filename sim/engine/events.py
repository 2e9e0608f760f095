"""The SimPy boundary: the only module that touches SimPy's internals.

Why the data plane goes under SimPy's public API
------------------------------------------------
A process per packet and a ``Resource`` per hop cost several events and generator
switches per hop. Here a packet's arrival at a station (or a core segment) is one
:class:`Arrival` event whose callback is the station's ``arrive``; the station
computes the departure at once (FIFO, Lindley: ``start = max(arrival, server
free)``) and re-schedules the *same* event for the next hop. One SimPy event per
packet-hop, no allocation per hop.

Everything that relies on SimPy internals is here, and :func:`pusher`,
:func:`scheduler`, :func:`pending_packets`, :func:`events_scheduled` and :func:`peek`
are the whole interface.
Stations never read ``env._now`` or ``ev._value``: an :class:`Arrival` carries its
packet (``pkt``) and the time it was scheduled for (``at``), both our attributes.

Invariants relied on (SimPy 4.1, ``simpy/core.py`` and ``simpy/events.py``; pinned
``simpy>=4.1,<4.2`` in ``pyproject.toml``; checked by ``tests/test_simpy_contract.py``)
-----------------------------------------------------------------------------------
1. ``Environment._queue`` is a ``heapq`` list of ``(time, priority, eid, event)``
   and ``Environment._eid`` an ``itertools.count``; ``Environment.schedule`` pushes
   exactly ``(now + delay, priority, next(_eid), event)``. Pushing such a tuple
   ourselves is therefore the same as ``schedule`` with an absolute time (which
   keeps departure times exact: no ``now + (t - now)`` rounding).
2. ``Environment.step`` pops the smallest tuple, sets ``_now`` to its time, takes
   ``event.callbacks``, sets it to None, calls each callback with the event, then
   only reads ``event._ok`` (and ``_value`` if not ok). So a processed event whose
   ``callbacks`` is given a fresh list and that is pushed again is processed again:
   re-pushing is safe.
3. An event is "triggered" when ``_ok`` is set and ``_value`` is not ``PENDING``;
   :class:`Arrival` is built triggered, like :class:`simpy.events.Timeout`.
4. Ties: entries compare by ``(time, priority, eid)``; all ours have priority
   ``NORMAL`` (the ``until`` of ``env.run`` is ``URGENT``), so simultaneous events run
   in the order they were scheduled, whether pushed here or by ``env.timeout``.
   Two packets arriving at one station at the same instant are served in the order
   their arrival events were scheduled.
5. ``env.peek()`` returns ``_queue[0][0]``: it sees entries pushed here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from heapq import heappush

from simpy import Environment
from simpy.core import NORMAL
from simpy.events import Event

#: Priority of every data-plane event (see invariant 4).
PRIORITY = NORMAL


class Arrival(Event):
    """Packet ``pkt`` arriving at ``at`` seconds, handled by ``callback(event)``.

    Constructed already triggered (``_ok``), like :class:`simpy.events.Timeout`,
    but without a delay check and with the callback attached. ``pkt`` and ``at``
    are read by the stations; SimPy's ``_value`` mirrors ``pkt`` for ``ev.value``.
    """

    __slots__ = ("pkt", "at")

    def __init__(self, env: Environment, pkt: int, at_s: float, callback) -> None:
        self.env = env
        self.callbacks = [callback]
        self._value = pkt
        self._ok = True
        self.pkt = pkt
        self.at = at_s


def scheduler(env: Environment) -> Callable[[float, int, Callable], None]:
    """Return ``schedule(at_s, packet, callback)`` that queues a new :class:`Arrival`.

    Parameters
    ----------
    env : simpy.Environment
        The run's environment.
    """
    queue = env._queue
    eid = env._eid

    def schedule(at_s: float, packet: int, callback) -> None:
        heappush(queue, (at_s, PRIORITY, next(eid), Arrival(env, packet, at_s, callback)))

    return schedule


def pusher(env: Environment) -> Callable[[Arrival, float, Callable], None]:
    """Return ``push(ev, at_s, callback)`` that re-schedules a processed :class:`Arrival`.

    The hot path: one call per packet-hop, reusing the event (invariant 2).

    Parameters
    ----------
    env : simpy.Environment
        The run's environment.
    """
    queue = env._queue
    eid = env._eid

    def push(ev: Arrival, at_s: float, callback) -> None:
        ev.at = at_s
        ev.callbacks = [callback]
        heappush(queue, (at_s, PRIORITY, next(eid), ev))

    return push


def pending_packets(env: Environment) -> Iterator[int]:
    """Packets of the :class:`Arrival` events still in SimPy's queue (any order)."""
    for entry in env._queue:
        ev = entry[3]
        if isinstance(ev, Arrival):
            yield ev.pkt


def events_scheduled(env: Environment) -> int:
    """SimPy events scheduled so far (every ``schedule`` and push takes one ``eid``).

    Reads (and advances) ``Environment._eid`` (invariant 1): call it once, after
    the run.
    """
    return next(env._eid)


def peek(env: Environment) -> float:
    """Time of the next event, seconds (``inf`` if none); sees entries pushed here."""
    return env.peek()
