"""Address plan and routing tables: the article's facts, one by one.

The article: "Understanding Kubernetes networking: pods" (Mark Betz).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network

import pytest

from sim.control import endpoint, load_cluster
from sim.errors import ScenarioError

A = IPv4Address
N = IPv4Network


def _nodes_raw(n_nodes: int, pods_per_node: int = 1, **pod_network) -> dict:
    return {
        "name": "many",
        "pod_network": pod_network,
        "nodes": [{"name": f"n{i}"} for i in range(1, n_nodes + 1)],
        "pods": [
            {"name": f"p{i}-{k}", "node": f"n{i}"}
            for i in range(1, n_nodes + 1)
            for k in range(pods_per_node)
        ],
    }


# -- pods: one namespace, one IP -------------------------------------------------------


def test_all_containers_of_a_pod_share_the_pod_ip(article_path) -> None:
    cl = load_cluster(article_path)
    web = cl.pods["web"]
    assert [c.name for c in web.containers] == ["nginx", "scrapyd"]
    addrs = {endpoint(cl, f"web/{c.name}").address for c in web.containers}
    assert addrs == {web.address} == {A("10.0.0.2")}
    assert endpoint(cl, "web").address == web.address
    # and no other pod has it
    assert [p.name for p in cl.plan.pods if p.address == web.address] == ["web"]


def test_pod_addresses_are_distinct_in_cluster_cidr_mode(article_path) -> None:
    cl = load_cluster(article_path)
    addrs = [p.address for p in cl.plan.pods]
    assert len(set(addrs)) == len(addrs)


# -- bridge ----------------------------------------------------------------------------


def test_bridge_is_first_address_of_node_subnet_and_pods_default_gateway(article_path) -> None:
    cl = load_cluster(article_path)
    for node in cl.plan.nodes:
        assert node.bridge == "cbr0"
        assert node.bridge_address == node.pod_subnet.network_address + 1
        for pname in node.pods:
            pod = cl.pods[pname]
            assert pod.address in node.pod_subnet
            assert pod.address != node.bridge_address
            default = cl.tables[f"pod:{pname}"].lookup(A("93.184.216.34"))
            assert default is not None and default.dest == N("0.0.0.0/0")
            assert default.via == node.bridge_address
            assert default.dev == "eth0"
    assert cl.nodes["node1"].bridge_address == A("10.0.0.1")
    assert cl.nodes["node2"].bridge_address == A("10.0.1.1")
    # pods take the next addresses in order
    assert cl.pods["web"].address == A("10.0.0.2")
    assert cl.pods["client"].address == A("10.0.0.3")
    assert cl.pods["api"].address == A("10.0.1.2")


def test_docker_default_addresses(docker_path) -> None:
    cl = load_cluster(docker_path)
    for node in cl.plan.nodes:
        assert node.bridge == "docker0"
        assert node.pod_subnet == N("172.17.0.0/16")
        assert node.bridge_address == A("172.17.0.1")
        addrs = [cl.pods[p].address for p in node.pods]
        assert addrs == [A(f"172.17.0.{k}") for k in range(2, 2 + len(addrs))]
    assert cl.pods["web"].address == A("172.17.0.2")
    assert cl.pods["client"].address == A("172.17.0.3")
    assert cl.pods["api"].address == A("172.17.0.2")
    assert cl.pods["worker"].address == A("172.17.0.3")


def test_docker_problem_detected_only_with_several_nodes(docker_path, build) -> None:
    cl = load_cluster(docker_path)
    assert len(cl.diagnostics) == 1
    diag = cl.diagnostics[0]
    for word in ("overlapping", "ambiguous", "172.17.0.0/16", "node1", "node2"):
        assert word in diag
    # the gateway cannot route ambiguous pod addresses: no route into 172.17/16
    assert cl.tables["gateway"].lookup(A("172.17.0.2")) is None
    single = build(
        {"pod_network": {"mode": "docker-default"}, "nodes": [{"name": "solo"}], "pods": []}
    )
    assert single.diagnostics == ()


def test_cluster_cidr_mode_has_no_diagnostics(article_path) -> None:
    assert load_cluster(article_path).diagnostics == ()


# -- Kubernetes' fix: cluster CIDR split per node, gateway routes ----------------------


def test_cluster_cidr_split_one_slash24_per_node(build) -> None:
    cl = build(_nodes_raw(5))
    subnets = [n.pod_subnet for n in cl.plan.nodes]
    assert cl.plan.pod_range == N("10.0.0.0/14")
    assert subnets == [N(f"10.0.{k}.0/24") for k in range(5)]
    for i, a in enumerate(subnets):
        assert a.subnet_of(N("10.0.0.0/14"))
        for b in subnets[i + 1 :]:
            assert not a.overlaps(b)


def test_gateway_has_exactly_one_route_per_node_pod_subnet(build) -> None:
    cl = build(_nodes_raw(4))
    gw = cl.tables["gateway"]
    pod_routes = [r for r in gw.routes if r.dest.subnet_of(cl.plan.pod_range)]
    assert len(pod_routes) == 4
    for node in cl.plan.nodes:
        mine = [r for r in pod_routes if r.dest == node.pod_subnet]
        assert len(mine) == 1
        assert mine[0].via == node.address
        # and lookups of a pod address on that node land on it
        pod = cl.pods[node.pods[0]]
        assert gw.lookup(pod.address).via == node.address


def test_gke_limit_of_110_pods_per_node(article_raw, build) -> None:
    article_raw["pods"] = [{"name": f"p{k}", "node": "node1"} for k in range(110)]
    cl = build(article_raw)
    assert len(cl.nodes["node1"].pods) == 110
    assert cl.pods["p109"].address == A("10.0.0.111")
    article_raw["pods"].append({"name": "p110", "node": "node1"})
    with pytest.raises(ScenarioError, match="max_pods_per_node is 110"):
        build(article_raw)


def test_subnet_capacity_uses_every_address_but_network_broadcast_bridge(build) -> None:
    # a /29 has 8 addresses: network, broadcast, bridge, and 5 pods
    cl = build(_nodes_raw(1, 5, node_prefix_length=29))
    assert [p.address for p in cl.plan.pods][-1] == A("10.0.0.6")
    with pytest.raises(ScenarioError, match="holds 5 pod"):
        build(_nodes_raw(1, 6, node_prefix_length=29))


def test_too_many_nodes_for_cluster_cidr(build) -> None:
    build(_nodes_raw(2, cluster_cidr="10.0.0.0/23"))
    with pytest.raises(ScenarioError) as info:
        build(_nodes_raw(3, cluster_cidr="10.0.0.0/23"))
    assert info.value.field == "pod_network.cluster_cidr"
    assert "holds only 2" in str(info.value)


# -- node network ----------------------------------------------------------------------


def test_node_network_addresses(article_path, build) -> None:
    cl = load_cluster(article_path)
    assert cl.plan.node_network == N("10.100.0.0/24")
    assert cl.plan.gateway_address == A("10.100.0.1")
    assert cl.nodes["node1"].address == A("10.100.0.2")
    assert cl.nodes["node2"].address == A("10.100.0.3")
    for name in ("node1", "node2"):
        t = cl.tables[f"node:{name}"]
        default = t.lookup(A("93.184.216.34"))
        assert default.dest == N("0.0.0.0/0") and default.via == A("10.100.0.1")
        assert default.dev == "eth0"
    # the same allocation when addresses are left out
    auto = build(_nodes_raw(2))
    assert auto.plan.gateway_address == A("10.100.0.1")
    assert [n.address for n in auto.plan.nodes] == [A("10.100.0.2"), A("10.100.0.3")]


def test_node_routes_local_pod_subnet_to_bridge(article_path) -> None:
    cl = load_cluster(article_path)
    for node in cl.plan.nodes:
        r = cl.tables[f"node:{node.name}"].lookup(node.pod_subnet.network_address + 2)
        assert r.dest == node.pod_subnet and r.dev == node.bridge and r.via is None
    # node1 has no specific route to node2's pods: they go via the gateway
    r = cl.tables["node:node1"].lookup(cl.pods["api"].address)
    assert r.via == A("10.100.0.1")


def test_pod_table_loopback_and_own_address(article_path) -> None:
    cl = load_cluster(article_path)
    t = cl.tables["pod:web"]
    assert t.lookup(A("127.0.0.1")).dev == "lo"
    assert t.lookup(A("10.0.0.2")).dev == "lo"
    same_node = t.lookup(A("10.0.0.3"))
    assert same_node.dev == "eth0" and same_node.via is None


# -- external hosts --------------------------------------------------------------------


def test_external_host_return_route_defaults(article_raw, build) -> None:
    article_raw["external_hosts"] = [
        {"name": "corp", "address": "10.200.0.20"},
        {"name": "pub", "address": "8.8.8.8"},
    ]
    cl = build(article_raw)
    assert cl.hosts["corp"].return_route_to_pods is True
    assert cl.hosts["pub"].return_route_to_pods is False
    assert cl.tables["host:corp"].lookup(A("10.0.0.2")).via == A("10.100.0.1")
    assert cl.tables["host:pub"].lookup(A("10.0.0.2")) is None


@pytest.mark.parametrize("addr", ["10.100.0.50", "10.1.2.3"])
def test_external_host_inside_cluster_ranges_rejected(article_raw, build, addr) -> None:
    article_raw["external_hosts"].append({"name": "bad", "address": addr})
    with pytest.raises(ScenarioError) as info:
        build(article_raw)
    assert info.value.field == "external_hosts.2.address"
    assert info.value.file == "variant.toml"


def test_describe_lists_plan_routes_and_rules(article_path) -> None:
    text = "\n".join(load_cluster(article_path).describe())
    assert "node1: eth0 10.100.0.2, pod subnet 10.0.0.0/24, cbr0 10.0.0.1" in text
    assert "10.0.1.0/24 via 10.100.0.3 dev lan" in text
    assert "node1: SNAT 10.0.0.0/24 -> 10.100.0.2 on eth0, except to 10.0.0.0/8" in text
    assert "WARNING" not in text


# -- address plans are computed, never enumerated (issue 9) ----------------------------


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", "0.0.0.0/1", "0.0.0.0/0"])
def test_huge_node_network_is_not_enumerated(build, monkeypatch, cidr) -> None:
    """A /1 node network used to be listed host by host (3 GB): now it is arithmetic."""
    import tracemalloc

    def refuse(self):
        raise AssertionError(f"{self} enumerated")

    monkeypatch.setattr(N, "hosts", refuse)
    raw = _nodes_raw(3, cluster_cidr="10.0.0.0/14")
    raw["node_network"] = {"cidr": cidr}
    tracemalloc.start()
    try:
        if cidr == "10.0.0.0/8":
            with pytest.raises(ScenarioError, match="overlaps the node network"):
                build(raw)
            return
        raw["pod_network"] = {"cluster_cidr": "192.168.0.0/16"} if cidr != "0.0.0.0/0" else {}
        if cidr == "0.0.0.0/0":
            with pytest.raises(ScenarioError, match="overlaps"):
                build(raw)
            return
        cl = build(raw)
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 20_000_000
    # same answer hosts() gives: the gateway is the first host, nodes the next ones
    assert cl.plan.gateway_address == A("0.0.0.1")
    assert [n.address for n in cl.plan.nodes] == [A("0.0.0.2"), A("0.0.0.3"), A("0.0.0.4")]


@pytest.mark.parametrize(
    ("cidr", "given", "expect"),
    [
        ("10.100.0.0/31", {}, ["10.100.0.1"]),  # hosts() of a /31: both addresses
        ("10.100.0.7/32", {}, None),  # only the gateway fits
        ("10.100.0.0/29", {"gateway": "10.100.0.3"}, ["10.100.0.1", "10.100.0.2"]),
    ],
)
def test_node_allocation_matches_hosts_semantics(build, cidr, given, expect) -> None:
    n = 1 if cidr.endswith("/31") or cidr.endswith("/32") else 2
    raw = _nodes_raw(n, cluster_cidr="10.0.0.0/14")
    raw["node_network"] = {"cidr": cidr, **given}
    if expect is None:
        with pytest.raises(ScenarioError, match="no free address left"):
            build(raw)
        return
    cl = build(raw)
    assert [str(x.address) for x in cl.plan.nodes] == expect
