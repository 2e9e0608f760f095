"""Validation of the replica description (no root needed)."""

from dataclasses import replace
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

import pytest

from sim.testbed.topology import (
    IFNAMSIZ,
    ExternalSpec,
    GatewaySpec,
    NodeSpec,
    PodSpec,
    Topology,
    check_prefix,
    example_topology,
)


def test_example_topology_names_fit_ifnamsiz():
    topo = example_topology("pnt-4194304-")
    names = topo.namespaces()
    assert len(names) == len(set(names)) == 2 + 2 + 3 + 3
    assert all(n.startswith("pnt-4194304-") and len(n) <= IFNAMSIZ for n in names)
    assert topo.pod_ns("pod-c") == "pnt-4194304-p2"
    assert topo.node_ns("node2") == "pnt-4194304-n1"
    assert topo.external_ns("island") == "pnt-4194304-x2"
    assert topo.ns_of("gateway") == topo.gateway_ns
    assert topo.pod_peer_ifname("pod-b") == "vp1"
    assert topo.address_of("node1") == IPv4Address("198.18.100.11")


def test_example_masquerade_relation_is_meaningful():
    topo = example_topology()
    assert topo.masquerades(topo.address_of("internet"))
    assert not topo.masquerades(topo.address_of("intranet"))
    assert not topo.masquerades(topo.address_of("island"))
    assert not topo.masquerades(topo.address_of("pod-c"))
    assert not topo.external("island").return_route_to_pods


def test_strings_are_coerced_and_bridge_defaults_to_first_host():
    node = NodeSpec("n", "198.18.100.5/24", "198.18.4.0/24")
    assert node.lan_address == IPv4Interface("198.18.100.5/24")
    assert node.bridge_address == IPv4Interface("198.18.4.1/24")
    assert node.bridge_name == "cbr0"


@pytest.mark.parametrize(
    "make",
    [
        lambda: NodeSpec("n", "10.0.0.5/24", "198.18.4.0/24"),
        lambda: NodeSpec("n", "198.18.100.5/24", "192.168.0.0/24"),
        lambda: NodeSpec("n", "198.18.100.5/8", "198.18.4.0/24"),
        lambda: PodSpec("p", "n", "172.16.0.2/24"),
        lambda: ExternalSpec("x", "8.8.8.8/32", True),
        lambda: GatewaySpec("127.0.0.1/8"),
        lambda: replace(example_topology(), non_masquerade=(IPv4Network("10.0.0.0/8"),)),
        lambda: replace(example_topology(), pod_cidr=IPv4Network("100.64.0.0/10")),
    ],
)
def test_addresses_outside_benchmark_range_are_rejected(make):
    with pytest.raises(ValueError, match="198.18.0.0/15"):
        make()


@pytest.mark.parametrize("prefix", ["", "pns", "PNS-", "a b-", "pns/-", "-pns-", "pnt-12345678-"])
def test_bad_prefixes_are_rejected(prefix):
    with pytest.raises(ValueError, match="prefix"):
        check_prefix(prefix)


def test_prefix_too_long_for_many_pods():
    topo = example_topology("abcdefghijk-")  # 12 chars + "lan" = 15: fits
    node = NodeSpec("big", "198.18.100.11/24", "198.18.0.0/22")
    hosts = list(IPv4Network("198.18.0.0/22").hosts())[1:1001]
    pods = tuple(PodSpec(f"p{i}", "big", IPv4Interface((h, 22))) for i, h in enumerate(hosts))
    with pytest.raises(ValueError, match="15 characters"):  # "p999" + 12 > 15
        replace(topo, nodes=(node,), pods=pods)
    replace(topo, prefix="abcdefghij-", nodes=(node,), pods=pods)  # 11 + 4 = 15: fits


@pytest.mark.parametrize(
    "change, match",
    [
        (dict(pods=(PodSpec("pod-a", "nodeX", "198.18.0.10/24"),)), "does not exist"),
        (dict(pods=(PodSpec("pod-a", "node1", "198.18.1.10/24"),)), "pod_subnet"),
        (dict(pods=(PodSpec("pod-a", "node1", "198.18.0.1/24"),)), "used by both"),
        (dict(pods=(PodSpec("pod-a", "node1", "198.18.0.255/24"),)), "broadcast"),
        (dict(pods=(PodSpec("node1", "node1", "198.18.0.10/24"),)), "unique"),
        (dict(gateway=GatewaySpec("198.18.101.1/24")), "node_lan"),
        (dict(externals=(ExternalSpec("x", "198.18.100.50/24"),)), "overlaps node_lan"),
        (dict(externals=(ExternalSpec("x", "198.18.2.50/24"),)), "overlaps pod_cidr"),
        (
            dict(pod_cidr=IPv4Network("198.18.0.0/23"), node_lan=IPv4Network("198.18.0.0/16")),
            "overlaps",
        ),
    ],
)
def test_inconsistent_topologies_are_rejected(change, match):
    with pytest.raises(ValueError, match=match):
        replace(example_topology(), **change)


def test_overlapping_pod_subnets_are_rejected():
    topo = example_topology()
    nodes = (
        topo.nodes[0],
        replace(
            topo.nodes[1],
            pod_subnet=IPv4Network("198.18.0.0/23"),
            bridge_address=IPv4Interface("198.18.1.1/23"),
        ),
    )
    with pytest.raises(ValueError, match="overlaps"):
        replace(topo, nodes=nodes, pods=())


@pytest.mark.parametrize("name", ["eth0", "lo", "vp0", "a-very-long-bridge-name", "br 0"])
def test_bad_bridge_names_are_rejected(name):
    with pytest.raises(ValueError, match="interface name"):
        NodeSpec("n", "198.18.100.5/24", "198.18.4.0/24", bridge_name=name)


def test_topology_is_frozen():
    topo = example_topology()
    with pytest.raises(AttributeError):
        topo.prefix = "x-"  # type: ignore[misc]
    assert isinstance(topo, Topology)
