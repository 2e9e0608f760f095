"""The SimPy contract that :mod:`sim.engine.events` relies on (its invariants 1-5).

If a SimPy release changes how its event heap is laid out or processed, these
tests fail before any engine result silently changes. SimPy is pinned to the
tested minor version in ``pyproject.toml``.
"""

from __future__ import annotations

import simpy

from sim.engine.events import Arrival, peek, pending_packets, pusher, scheduler


def test_tie_order_of_an_arrival_and_a_timeout_is_scheduling_order() -> None:
    """Same time, same priority: whichever was scheduled first runs first (invariant 4)."""
    env = simpy.Environment()
    schedule = scheduler(env)
    seen: list[str] = []
    schedule(1.0, 0, lambda ev: seen.append("arrival-0"))
    env.timeout(1.0).callbacks.append(lambda ev: seen.append("timeout"))
    schedule(1.0, 1, lambda ev: seen.append("arrival-1"))
    env.run()
    assert seen == ["arrival-0", "timeout", "arrival-1"]


def test_arrivals_at_one_instant_run_in_push_order_not_packet_order() -> None:
    env = simpy.Environment()
    schedule = scheduler(env)
    seen: list[int] = []
    for pkt in (5, 3, 9, 1):
        schedule(2.0, pkt, lambda ev: seen.append(ev.pkt))
    env.run()
    assert seen == [5, 3, 9, 1]


def test_a_processed_event_pushed_again_is_processed_again() -> None:
    """Re-pushing a processed :class:`Arrival` reuses it for the next hop (invariant 2)."""
    env = simpy.Environment()
    schedule = scheduler(env)
    push = pusher(env)
    hops: list[tuple[int, float, float, int]] = []
    events: list[Arrival] = []

    def second(ev) -> None:
        hops.append((2, ev.at, env.now, ev.value))
        events.append(ev)

    def first(ev) -> None:
        hops.append((1, ev.at, env.now, ev.value))
        events.append(ev)
        push(ev, 3.5, second)

    schedule(1.25, 42, first)
    env.run()
    assert hops == [(1, 1.25, 1.25, 42), (2, 3.5, 3.5, 42)]
    assert events[0] is events[1]  # the same event object, no allocation per hop
    assert events[0].triggered and events[0].processed and events[0].ok


def test_peek_sees_pushed_entries() -> None:
    """``env.peek`` and the boundary's ``peek`` see entries pushed outside ``schedule``."""
    env = simpy.Environment()
    assert peek(env) == float("inf")
    schedule = scheduler(env)
    schedule(5.0, 0, lambda ev: None)
    schedule(2.0, 1, lambda ev: None)
    assert env.peek() == peek(env) == 2.0
    env.step()
    assert env.now == 2.0 and peek(env) == 5.0


def test_now_seen_through_the_boundary_is_the_pushed_time_exactly() -> None:
    """``ev.at`` equals ``env.now`` to the bit, also for times that are not round."""
    env = simpy.Environment()
    schedule = scheduler(env)
    push = pusher(env)
    t0 = 0.1 + 0.2  # 0.30000000000000004: an absolute time is kept, never re-derived
    seen: list[tuple[float, float]] = []

    def later(ev) -> None:
        seen.append((ev.at, env.now))

    def hop(ev) -> None:
        seen.append((ev.at, env.now))
        push(ev, ev.at + 1e-7, later)

    schedule(t0, 0, hop)
    env.run()
    assert seen == [(t0, t0), (t0 + 1e-7, t0 + 1e-7)]


def test_pending_packets_and_run_until() -> None:
    """Arrivals after ``until`` stay queued and are found by ``pending_packets``."""
    env = simpy.Environment()
    schedule = scheduler(env)
    done: list[int] = []
    for pkt, t in ((0, 1.0), (1, 2.0), (2, 3.0)):
        schedule(t, pkt, lambda ev: done.append(ev.pkt))
    env.timeout(2.5)  # not an Arrival: never counted as a packet
    env.run(until=2.0)  # ``until`` is URGENT: an arrival at exactly 2.0 is not run
    assert done == [0]
    assert sorted(pending_packets(env)) == [1, 2]


def test_installed_simpy_is_the_tested_minor_version() -> None:
    """pyproject.toml pins ``simpy>=4.1,<4.2``; the contract above is what 4.1 does."""
    major, minor = (int(x) for x in simpy.__version__.split(".")[:2])
    assert (major, minor) == (4, 1)
