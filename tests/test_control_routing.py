"""RoutingTable: longest-prefix match, metric, install order, explicit miss."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from sim.control.routing import Route, RoutingTable


def _table(*routes: Route) -> RoutingTable:
    t = RoutingTable("test")
    for r in routes:
        t.add(r)
    return t


def _r(dest: str, dev: str, metric: int = 0, via: str | None = None) -> Route:
    return Route(IPv4Network(dest), dev, via=IPv4Address(via) if via else None, metric=metric)


A = IPv4Address


@pytest.mark.parametrize("reverse", [False, True])
def test_longest_prefix_wins_regardless_of_install_order(reverse: bool) -> None:
    routes = [
        _r("0.0.0.0/0", "default"),
        _r("10.0.0.0/8", "eight"),
        _r("10.0.0.0/14", "fourteen"),
        _r("10.0.1.0/24", "twentyfour"),
        _r("10.0.1.2/32", "host"),
    ]
    t = _table(*(reversed(routes) if reverse else routes))
    assert t.lookup(A("10.0.1.2")).dev == "host"
    assert t.lookup(A("10.0.1.3")).dev == "twentyfour"
    assert t.lookup(A("10.0.2.1")).dev == "fourteen"
    assert t.lookup(A("10.4.0.1")).dev == "eight"
    assert t.lookup(A("11.0.0.0")).dev == "default"


def test_longer_prefix_beats_lower_metric() -> None:
    t = _table(_r("10.0.0.0/8", "short", metric=0), _r("10.1.0.0/16", "long", metric=100))
    assert t.lookup(A("10.1.2.3")).dev == "long"


@pytest.mark.parametrize("reverse", [False, True])
def test_equal_prefix_lower_metric_wins(reverse: bool) -> None:
    routes = [_r("10.0.0.0/24", "high", metric=20), _r("10.0.0.0/24", "low", metric=5)]
    t = _table(*(reversed(routes) if reverse else routes))
    assert t.lookup(A("10.0.0.7")).dev == "low"


def test_equal_prefix_and_metric_first_installed_wins() -> None:
    t = _table(_r("10.0.0.0/24", "first", metric=3), _r("10.0.0.0/24", "second", metric=3))
    assert t.lookup(A("10.0.0.9")).dev == "first"
    t2 = _table(_r("10.0.0.0/24", "second", metric=3), _r("10.0.0.0/24", "first", metric=3))
    assert t2.lookup(A("10.0.0.9")).dev == "second"


def test_miss_returns_none() -> None:
    t = _table(_r("10.0.0.0/24", "a"), _r("192.168.0.0/16", "b"))
    assert t.lookup(A("10.0.1.0")) is None
    assert t.lookup(A("8.8.8.8")) is None
    assert RoutingTable("empty").lookup(A("10.0.0.1")) is None


def test_host_route_32_matches_only_its_address() -> None:
    t = _table(_r("10.200.0.10/32", "host"))
    assert t.lookup(A("10.200.0.10")).dev == "host"
    assert t.lookup(A("10.200.0.11")) is None
    assert t.lookup(A("10.200.0.9")) is None


def test_default_route_0_matches_everything_but_loses_to_any_longer() -> None:
    t = _table(_r("0.0.0.0/0", "default", via="10.100.0.1"))
    for addr in ("0.0.0.0", "1.2.3.4", "10.0.0.1", "255.255.255.255"):
        route = t.lookup(A(addr))
        assert route is not None and route.dev == "default"
        assert route.via == A("10.100.0.1")
    t.add(_r("1.0.0.0/8", "one"))
    assert t.lookup(A("1.2.3.4")).dev == "one"
    assert t.lookup(A("2.2.3.4")).dev == "default"


def test_route_str_and_lines() -> None:
    t = _table(Route(IPv4Network("0.0.0.0/0"), "eth0", via=A("10.0.0.1"), note="gw"))
    assert str(t.routes[0]) == "default via 10.0.0.1 dev eth0"
    assert t.lines() == ["default via 10.0.0.1 dev eth0    # gw"]
