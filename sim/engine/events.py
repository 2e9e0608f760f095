"""The one SimPy event the data plane schedules: a packet arriving at a station.

Why not ``env.timeout`` + a process per packet: a process per packet and a
``Resource`` per hop costs several events and generator switches per hop. Here a
packet's arrival at a station is a single :class:`Arrival` event whose callback
is the station's ``arrive``; the station computes the departure at once (FIFO,
Lindley: ``start = max(arrival, server free)``) and schedules the arrival at the
next hop. One SimPy event per packet-hop.

Simultaneous events run in SimPy's order ``(time, priority, insertion counter)``:
two packets arriving at one station at the same instant are served in the order
their arrival events were scheduled (documented and tested).
"""

from __future__ import annotations

from heapq import heappush

from simpy import Environment
from simpy.core import NORMAL
from simpy.events import Event


class Arrival(Event):
    """A packet ``value`` arriving, handled by ``callback(event)``.

    Constructed already triggered (``_ok``), like :class:`simpy.events.Timeout`,
    but without a delay check and with the callback attached.
    """

    def __init__(self, env: Environment, value: int, callback) -> None:
        self.env = env
        self.callbacks = [callback]
        self._value = value
        self._ok = True


def scheduler(env: Environment):
    """Return ``schedule(at_s, packet, callback)`` that queues an :class:`Arrival`.

    The time is absolute (seconds), which keeps departure times exact (no
    ``now + (t - now)`` rounding). It pushes onto SimPy's own event queue with the
    same ``(time, priority, counter, event)`` entries ``Environment.schedule`` makes.
    """
    queue = env._queue  # SimPy 4 internal heap; same entries as Environment.schedule
    eid = env._eid

    def schedule(at_s: float, packet: int, callback) -> None:
        heappush(queue, (at_s, NORMAL, next(eid), Arrival(env, packet, callback)))

    return schedule
