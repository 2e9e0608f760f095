"""Masquerade rules (the article's "no NAT for 10.0.0.0/8") and conntrack."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from sim.control import resolve
from sim.control.nat import Conntrack, MasqueradeRule

A = IPv4Address
POD = A("10.0.0.2")
NODE_IP = A("10.100.0.2")


def _rule(*non_masq: str) -> MasqueradeRule:
    return MasqueradeRule(
        node="node1",
        source=IPv4Network("10.0.0.0/24"),
        out_dev="eth0",
        to_address=NODE_IP,
        non_masquerade=tuple(IPv4Network(n) for n in non_masq),
    )


@pytest.mark.parametrize(
    ("dst", "masqueraded"),
    [
        ("9.255.255.255", True),
        ("10.0.0.0", False),
        ("10.0.1.2", False),
        ("10.255.255.255", False),
        ("11.0.0.0", True),
        ("93.184.216.34", True),
        ("172.16.0.1", True),
        ("192.168.1.1", True),
    ],
)
def test_10_slash_8_boundaries(dst: str, masqueraded: bool) -> None:
    assert _rule("10.0.0.0/8").applies(POD, A(dst), "eth0") is masqueraded


def test_rule_only_on_its_egress_device_and_source_subnet() -> None:
    rule = _rule("10.0.0.0/8")
    internet = A("93.184.216.34")
    assert rule.applies(POD, internet, "eth0")
    assert not rule.applies(POD, internet, "cbr0")
    assert not rule.applies(A("10.0.1.2"), internet, "eth0")  # another node's pod
    assert not rule.applies(NODE_IP, internet, "eth0")  # the node itself


def test_non_masquerade_set_is_a_parameter() -> None:
    assert _rule().applies(POD, A("10.0.1.2"), "eth0")  # nothing exempt
    wide = _rule("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
    for dst in ("172.16.0.1", "172.31.255.255", "192.168.0.1", "169.254.1.1"):
        assert not wide.applies(POD, A(dst), "eth0")
    assert wide.applies(POD, A("172.32.0.0"), "eth0")


def test_conntrack_translates_reply_back() -> None:
    ct = Conntrack()
    remote = A("93.184.216.34")
    ct.record(POD, NODE_IP, remote)
    assert ct.reply_target(remote, NODE_IP) == POD
    assert ct.reply_target(A("93.184.216.35"), NODE_IP) is None
    assert ct.reply_target(NODE_IP, remote) is None  # wrong direction


@pytest.mark.parametrize(
    ("cluster_cidr", "host", "masqueraded"),
    [
        ("10.0.0.0/14", "9.255.255.255", True),
        ("10.0.0.0/14", "11.0.0.0", True),
        ("10.0.0.0/14", "10.255.255.255", False),
        # 10.0.0.0 is inside the default pod range, so move the pod range away from it
        ("10.4.0.0/14", "10.0.0.0", False),
    ],
)
def test_10_slash_8_boundaries_via_resolve(
    article_raw: dict, build, cluster_cidr: str, host: str, masqueraded: bool
) -> None:
    article_raw["pod_network"]["cluster_cidr"] = cluster_cidr
    article_raw["external_hosts"].append({"name": "edge", "address": host})
    cl = build(article_raw)
    web = cl.pods["web"].address
    path = resolve(cl, "web", "edge")
    assert path.verdict == "delivered"
    assert path.hops[-1].dst == A(host)
    fwd = next(h for h in path.hops if h.station == "node1/forward")
    if masqueraded:
        assert path.seen_src == A("10.100.0.2")
        assert fwd.nat and fwd.src == A("10.100.0.2")
    else:
        assert path.seen_src == web
        assert not any(h.nat for h in path.hops)
        assert all(h.src == web for h in path.hops)
