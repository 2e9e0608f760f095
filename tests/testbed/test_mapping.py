"""Scenario -> replica address mapping (no root needed)."""

from ipaddress import IPv4Address, IPv4Network

import pytest

from sim.control import build_cluster
from sim.spec.load import scenario_from_dict
from sim.testbed.errors import MappingError
from sim.testbed.mapping import BENCH_RANGE, INSIDE_IMAGE, OUTSIDE_IMAGE, map_cluster
from sim.testbed.render import render


def _cluster(raw, overrides=None):
    return build_cluster(scenario_from_dict(raw, "variant.toml", overrides), "variant.toml")


def _used(cl):
    p = cl.plan
    return (
        [p.gateway_address]
        + [n.address for n in p.nodes]
        + [n.bridge_address for n in p.nodes]
        + [x.address for x in p.pods]
        + [h.address for h in p.hosts]
    )


def test_article_mapping_is_the_documented_one(article_raw):
    r = render(_cluster(article_raw))
    m = r.mapping.address
    assert m("10.0.0.2") == IPv4Address("198.18.0.2")  # web
    assert m("10.0.1.2") == IPv4Address("198.18.1.2")  # api
    assert m("10.100.0.1") == IPv4Address("198.18.2.1")  # gateway
    assert m("10.100.0.3") == IPv4Address("198.18.2.3")  # node2
    assert m("10.200.0.10") == IPv4Address("198.18.3.10")  # intranet, inside 10/8
    assert m("93.184.216.34") == IPv4Address("198.19.0.34")  # internet, outside
    assert r.mapping.replica_non_masquerade == (IPv4Network("198.18.0.0/16"),)
    assert r.mapping.network(IPv4Network("10.0.0.0/14")) == IPv4Network("198.18.0.0/23")
    assert r.mapping.network(IPv4Network("10.100.0.0/24")) == IPv4Network("198.18.2.0/24")
    assert r.mapping.network(IPv4Network("10.0.1.0/24")) == IPv4Network("198.18.1.0/24")
    text = "\n".join(r.mapping.lines())
    assert "10.0.0.0/8" in text and "198.18.0.0/16" in text and "10.0.0.0/14" in text


def test_mapping_is_deterministic_and_invertible(article_raw):
    cl = _cluster(article_raw)
    a, b = map_cluster(cl), map_cluster(_cluster(article_raw))
    assert a == b
    for addr in _used(cl):
        assert a.unmap(a.address(addr)) == addr
    assert a.address("127.0.0.1") == IPv4Address("127.0.0.1")
    with pytest.raises(MappingError, match="no mapped region"):
        a.address("8.8.8.8")


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"masquerade.non_masquerade_cidrs": []},
        {"masquerade.non_masquerade_cidrs": ["10.0.0.0/16"]},
        {"masquerade.non_masquerade_cidrs": ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]},
        {"masquerade.non_masquerade_cidrs": ["10.0.0.0/8", "93.184.216.0/24"]},
        {"external_hosts.intranet.address": "10.4.0.10"},  # next to the /14 pod range
    ],
)
def test_masquerade_relation_prefixes_and_range_are_kept(article_raw, overrides):
    cl = _cluster(article_raw, overrides)
    m = map_cluster(cl)
    cidrs = cl.scenario.masquerade.non_masquerade_cidrs
    images = m.replica_non_masquerade
    for addr in _used(cl):
        img = m.address(addr)
        assert img in BENCH_RANGE
        inside = any(addr in c for c in cidrs)
        assert inside == any(img in i for i in images), addr
        assert img in (INSIDE_IMAGE if inside else OUTSIDE_IMAGE)
    for node in cl.plan.nodes:
        assert m.network(node.pod_subnet).prefixlen == node.pod_subnet.prefixlen
    for reg in m.regions:
        assert reg.image.prefixlen == reg.original.prefixlen
        assert reg.image.subnet_of(BENCH_RANGE)


def test_docker_default_maps_every_node_subnet_to_one_image(docker_path):
    from sim.control import load_cluster

    cl = load_cluster(docker_path)
    m = map_cluster(cl)
    images = {m.network(n.pod_subnet) for n in cl.plan.nodes}
    assert images == {IPv4Network("198.19.0.0/16")}  # 172.17.0.0/16, outside 10/8: masqueraded


def test_networks_too_large_are_refused_clearly(article_raw):
    article_raw["nodes"].append({"name": "node3", "address": "10.100.0.4"})
    cl = _cluster(article_raw, {"pod_network.node_prefix_length": 16})
    with pytest.raises(MappingError) as err:
        map_cluster(cl)
    msg = str(err.value)
    assert "cannot be mapped into 198.18.0.0/15" in msg and "Fix:" in msg and "\n" not in msg


def test_straddling_non_masquerade_cidr_is_refused_clearly(article_raw):
    cl = _cluster(article_raw, {"masquerade.non_masquerade_cidrs": ["10.0.0.0/25"]})
    with pytest.raises(MappingError, match="straddles the non-masquerade CIDR 10.0.0.0/25"):
        map_cluster(cl)
