"""Path resolution: hops, header rewrites and verdicts (issue's "Done when" list)."""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest

from sim.control import endpoint, load_cluster, resolve, resolve_reply
from sim.errors import ResolveError

A = IPv4Address
WEB, API, CLIENT = A("10.0.0.2"), A("10.0.1.2"), A("10.0.0.3")
NODE1, NODE2 = A("10.100.0.2"), A("10.100.0.3")
INTERNET, INTRANET = A("93.184.216.34"), A("10.200.0.10")


@pytest.fixture(scope="module")
def article(article_path):
    return load_cluster(article_path)


@pytest.fixture(scope="module")
def docker(docker_path):
    return load_cluster(docker_path)


def _index(stations: list[str], name: str) -> int:
    assert name in stations, f"{name} not in {stations}"
    return stations.index(name)


# -- cross-node ------------------------------------------------------------------------


def test_cross_node_path_keeps_pod_addresses(article) -> None:
    path = resolve(article, "web", "api")
    assert path.verdict == "delivered" and path.reason == ""
    assert path.delivered_to == "api"
    s = path.stations
    order = [
        "node1/veth-web:from-pod",
        "node1/cbr0",
        "node1/eth0:tx",
        "gateway/forward",
        "node2/eth0:rx",
        "node2/cbr0",
        "node2/veth-api:to-pod",
    ]
    idx = [_index(s, x) for x in order]
    assert idx == sorted(idx)
    assert s[-1] == "node2/veth-api:to-pod"
    for h in path.hops:
        assert (h.src, h.dst) == (WEB, API), h
        assert not h.nat
    assert path.seen_src == WEB


def test_packet_on_node_eth0_for_local_pod_goes_bridge_then_veth(article) -> None:
    s = resolve(article, "web", "api").stations
    rx = _index(s, "node2/eth0:rx")
    assert s[rx + 1 :] == ["node2/forward", "node2/cbr0", "node2/veth-api:to-pod"]


def test_cross_node_reply_mirrors_forward(article) -> None:
    reply = resolve_reply(article, resolve(article, "web", "api"))
    assert reply.verdict == "delivered" and reply.delivered_to == "web"
    assert reply.stations[0] == "node2/veth-api:from-pod"
    assert reply.stations[-1] == "node1/veth-web:to-pod"
    assert all((h.src, h.dst) == (API, WEB) and not h.nat for h in reply.hops)


# -- same node -------------------------------------------------------------------------


def test_same_node_path_is_veth_bridge_veth(article) -> None:
    path = resolve(article, "web", "client")
    assert path.verdict == "delivered" and path.delivered_to == "client"
    assert path.stations == [
        "node1/veth-web:from-pod",
        "node1/cbr0",
        "node1/veth-client:to-pod",
    ]
    assert [h.kind for h in path.hops] == ["veth", "bridge", "veth"]
    assert not any("eth0" in st or st.startswith("gateway") for st in path.stations)
    assert all((h.src, h.dst) == (WEB, CLIENT) for h in path.hops)


@pytest.mark.parametrize(("src", "dst"), [("client", "web"), ("web", "client")])
def test_same_node_never_touches_eth0_or_forward(article, src, dst) -> None:
    for path in (resolve(article, src, dst), resolve_reply(article, resolve(article, src, dst))):
        assert path.verdict == "delivered"
        assert {h.kind for h in path.hops} == {"veth", "bridge"}


def test_veth_pair_per_pod_named_on_both_directions(article) -> None:
    fwd = resolve(article, "web", "api").stations
    rep = resolve_reply(article, resolve(article, "web", "api")).stations
    assert "node1/veth-web:from-pod" in fwd and "node2/veth-api:to-pod" in fwd
    assert "node2/veth-api:from-pod" in rep and "node1/veth-web:to-pod" in rep
    # each pod has its own veth: client's traffic does not cross web's
    assert not any("veth-web" in st for st in resolve(article, "client", "api").stations)


# -- inside one pod --------------------------------------------------------------------


def test_containers_of_a_pod_talk_over_localhost(article) -> None:
    path = resolve(article, "web/nginx", "web/scrapyd")
    assert path.verdict == "delivered"
    assert path.delivered_to == "web/scrapyd"
    assert len(path.hops) == 1
    assert "lo" in path.hops[0].station and path.hops[0].station == "web/lo"
    assert path.hops[0].kind == "loopback"
    assert path.hops[0].src == path.hops[0].dst == A("127.0.0.1")
    reply = resolve_reply(article, path)
    assert reply.verdict == "delivered" and reply.stations == ["web/lo"]


def test_container_endpoints(article) -> None:
    ep = endpoint(article, "web/scrapyd")
    assert (ep.kind, ep.pod, ep.address) == ("container", "web", WEB)
    with pytest.raises(ResolveError, match="no container 'nope'"):
        endpoint(article, "web/nope")
    with pytest.raises(ResolveError, match="unknown pod 'nope'"):
        endpoint(article, "nope/nginx")


# -- masquerade ------------------------------------------------------------------------


def test_internet_is_masqueraded_from_node_forward_on(article) -> None:
    path = resolve(article, "web", "internet")
    assert path.verdict == "delivered" and path.delivered_to == "internet"
    fwd = _index(path.stations, "node1/forward")
    assert all(h.src == WEB for h in path.hops[:fwd])
    assert all(h.src == NODE1 for h in path.hops[fwd:])
    assert all(h.dst == INTERNET for h in path.hops)
    assert [h.station for h in path.hops if h.nat] == ["node1/forward"]
    assert path.seen_src == NODE1
    assert path.conntrack.reply_target(INTERNET, NODE1) == WEB


def test_internet_reply_translated_back_by_conntrack(article) -> None:
    reply = resolve_reply(article, resolve(article, "web", "internet"))
    assert reply.verdict == "delivered" and reply.delivered_to == "web"
    assert reply.hops[0].station == "internet/eth0:tx"
    assert (reply.hops[0].src, reply.hops[0].dst) == (INTERNET, NODE1)
    assert reply.seen_dst == WEB and reply.seen_src == INTERNET
    assert reply.stations[-1] == "node1/veth-web:to-pod"
    assert [h.station for h in reply.hops if h.nat] == ["node1/forward"]


def test_intranet_in_10_slash_8_keeps_pod_source(article) -> None:
    path = resolve(article, "web", "intranet")
    assert path.verdict == "delivered"
    assert all(h.src == WEB and not h.nat for h in path.hops)
    reply = resolve_reply(article, path)
    assert reply.verdict == "delivered" and reply.seen_dst == WEB


def test_intranet_without_return_route_loses_replies(article_path) -> None:
    cl = load_cluster(article_path, {"external_hosts.intranet.return_route_to_pods": False})
    fwd = resolve(cl, "web", "intranet")
    assert fwd.verdict == "delivered" and fwd.seen_src == WEB
    reply = resolve_reply(cl, fwd)
    assert reply.verdict == "dropped"
    assert "no route" in reply.reason and "return route" in reply.reason
    assert reply.delivered_to is None


def test_public_host_without_return_route_still_answers_masqueraded(article) -> None:
    # internet has no route to pods, but it never needs one: it sees the node IP
    assert article.hosts["internet"].return_route_to_pods is False
    assert resolve_reply(article, resolve(article, "web", "internet")).verdict == "delivered"


def test_non_masquerade_cidrs_parameter_exempts_internet(article_path) -> None:
    cl = load_cluster(
        article_path,
        {"masquerade.non_masquerade_cidrs": ["10.0.0.0/8", "93.184.216.0/24"]},
    )
    path = resolve(cl, "web", "internet")
    assert path.verdict == "delivered"
    assert path.seen_src == WEB and not any(h.nat for h in path.hops)
    # the public host has no route back to pod addresses: replies are lost
    assert resolve_reply(cl, path).verdict == "dropped"


def test_empty_non_masquerade_masquerades_cross_node_pod_traffic(article_path) -> None:
    cl = load_cluster(article_path, {"masquerade.non_masquerade_cidrs": []})
    path = resolve(cl, "web", "api")
    assert path.verdict == "delivered"
    assert path.seen_src == NODE1
    assert [h.station for h in path.hops if h.nat] == ["node1/forward"]
    # same-node traffic never reaches the masquerade rule (not on eth0)
    same = resolve(cl, "web", "client")
    assert same.seen_src == WEB and not any(h.nat for h in same.hops)
    # the reply belongs to the tracked connection: node2 does not SNAT it again,
    # node1 (whose address the SNAT used) translates it back to web
    reply = resolve_reply(cl, path)
    assert reply.verdict == "delivered" and reply.delivered_to == "web"
    assert reply.seen_src == API and reply.seen_dst == WEB
    assert [h.station for h in reply.hops if h.nat] == ["node1/forward"]


def test_node_to_pod_and_back(article) -> None:
    path = resolve(article, "node1", "web")
    assert path.verdict == "delivered"
    assert path.stations == ["node1/forward", "node1/cbr0", "node1/veth-web:to-pod"]
    assert resolve_reply(article, path).verdict == "delivered"


def test_resolve_by_ip_address(article) -> None:
    path = resolve(article, "client", "10.0.1.2")
    assert path.dst.name == "api" and path.verdict == "delivered"
    with pytest.raises(ResolveError, match="unknown endpoint"):
        resolve(article, "client", "nobody")


# -- docker0 problem -------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [("web", "api"), ("client", "batch")])
def test_docker_default_cross_node_not_delivered(docker, src, dst) -> None:
    path = resolve(docker, src, dst)
    assert path.verdict != "delivered"
    assert path.delivered_to != dst
    assert path.reason


def test_docker_default_same_node_still_works(docker) -> None:
    path = resolve(docker, "web", "client")
    assert path.verdict == "delivered"
    assert path.stations == ["node1/veth-web:from-pod", "node1/docker0", "node1/veth-client:to-pod"]


def test_docker_default_address_is_ambiguous(docker) -> None:
    with pytest.raises(ResolveError, match="ambiguous"):
        endpoint(docker, "172.17.0.2")


def test_node_to_its_own_pod_speaks_from_the_bridge_address_and_gets_the_reply():
    """Linux picks the source from the outgoing interface: cbr0's address (10.0.0.1)."""
    from sim.control import load_cluster, resolve, resolve_reply

    cl = load_cluster("experiments/scenarios/article.toml")
    fwd = resolve(cl, "node1", "web")
    assert fwd.verdict == "delivered"
    assert [str(h.src) for h in fwd.hops] == ["10.0.0.1"] * len(fwd.hops)
    rep = resolve_reply(cl, fwd)
    assert rep.verdict == "delivered", rep.reason
    assert rep.delivered_to == "node1"
    assert all("eth0" not in h.station for h in rep.hops)


def test_packet_to_the_bridge_address_is_delivered_to_the_node():
    from sim.control import load_cluster, resolve

    cl = load_cluster("experiments/scenarios/article.toml")
    p = resolve(cl, "web", "10.0.0.1")
    assert p.verdict == "delivered" and p.delivered_to == "node1"
    assert p.stations == ["node1/veth-web:from-pod", "node1/cbr0", "node1/forward"]
