"""Address allocation: node IPs, per-node pod subnets, bridge and pod addresses.

Kubernetes' fix (the article): a cluster-wide pod range (GKE: 10.0.0.0/14) is split
into one subnet per node (GKE: a /24 per node); the node's bridge ``cbr0`` takes the
first address of its subnet and is the pods' default gateway; pods take the next
addresses. All containers of a pod share the pod's one IP (the ``pause``
container's namespace).

With Docker's defaults every node's ``docker0`` has 172.17.0.0/16 (bridge
172.17.0.1, first container 172.17.0.2): the subnets overlap across nodes and a
pod address no longer tells which node it lives on. That mode is allowed (it is
the article's "pathological worst case") and reported as a diagnostic.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network

from sim.errors import ScenarioError
from sim.spec.scenario import Container, Pod, Scenario

DOCKER_DEFAULT_SUBNET = IPv4Network("172.17.0.0/16")


@dataclass(frozen=True)
class NodeAddr:
    """Addresses of one node."""

    name: str
    address: IPv4Address
    pod_subnet: IPv4Network
    bridge: str
    bridge_address: IPv4Address
    pods: tuple[str, ...]


@dataclass(frozen=True)
class PodAddr:
    """Address of one pod (shared by all its containers)."""

    name: str
    node: str
    address: IPv4Address
    containers: tuple[Container, ...]


@dataclass(frozen=True)
class HostAddr:
    """An external host."""

    name: str
    address: IPv4Address
    return_route_to_pods: bool


@dataclass(frozen=True)
class AddressPlan:
    """Every address of the cluster, plus diagnostics (warnings) about it."""

    node_network: IPv4Network
    gateway_address: IPv4Address
    pod_range: IPv4Network
    nodes: tuple[NodeAddr, ...]
    pods: tuple[PodAddr, ...]
    hosts: tuple[HostAddr, ...]
    diagnostics: tuple[str, ...]


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def host_range(net: IPv4Network) -> tuple[int, int]:
    """First and last host address of ``net`` as integers, computed, not enumerated.

    Matches :meth:`IPv4Network.hosts`: a /31 has two hosts and a /32 one; larger
    networks exclude the network and broadcast addresses. Never lists the network
    (``list(net.hosts())`` of a /8 takes seconds and gigabytes).
    """
    first, last = int(net.network_address), int(net.broadcast_address)
    if net.prefixlen >= 31:
        return first, last
    return first + 1, last - 1


def _fixed_node_addresses(
    scn: Scenario, file: str, gw: IPv4Address
) -> tuple[dict[IPv4Address, str], dict[str, IPv4Address]]:
    """Check the nodes' given addresses; returns the taken addresses and the nodes'."""
    net = scn.node_network.cidr
    taken = {gw: "the gateway"}
    out: dict[str, IPv4Address] = {}
    for i, node in enumerate(scn.nodes):
        if node.address is None:
            continue
        if node.address not in net or node.address in (net.network_address, net.broadcast_address):
            raise ScenarioError(
                f"address {node.address} is not a host address of the node network {net}",
                file=file,
                field=f"nodes.{i}.address",
                fix=f"pick a host address inside {net}, or leave it out to allocate one",
            )
        if node.address in taken:
            raise ScenarioError(
                f"address {node.address} is already used by {taken[node.address]}",
                file=file,
                field=f"nodes.{i}.address",
                fix="give every node a distinct address",
            )
        taken[node.address] = f"node {node.name!r}"
        out[node.name] = node.address
    return taken, out


def _node_addresses(scn: Scenario, file: str) -> tuple[IPv4Address, dict[str, IPv4Address]]:
    net = scn.node_network.cidr
    first, last = host_range(net)
    gw = scn.node_network.gateway if scn.node_network.gateway is not None else IPv4Address(first)
    if gw not in net:
        raise ScenarioError(
            f"gateway {gw} is outside the node network {net}",
            file=file,
            field="node_network.gateway",
            fix=f"pick an address inside {net}",
        )
    taken, out = _fixed_node_addresses(scn, file, gw)
    # free addresses in order, skipping taken ones: at most len(taken) skips per node
    cand = first
    for i, node in enumerate(scn.nodes):
        if node.address is not None:
            continue
        while cand <= last and IPv4Address(cand) in taken:
            cand += 1
        if cand > last:
            raise ScenarioError(
                f"node network {net} has no free address left for node {node.name!r}",
                file=file,
                field=f"nodes.{i}.address",
                fix="use a larger node_network.cidr",
            )
        out[node.name] = IPv4Address(cand)
        cand += 1
    return gw, out


def _pod_subnets(scn: Scenario, file: str) -> tuple[IPv4Network, dict[str, IPv4Network], list[str]]:
    pn = scn.pod_network
    diags: list[str] = []
    if pn.mode == "docker-default":
        subnets = {n.name: DOCKER_DEFAULT_SUBNET for n in scn.nodes}
        if len(scn.nodes) > 1:
            names = ", ".join(n.name for n in scn.nodes)
            diags.append(
                f"overlapping pod subnets: every node ({names}) has {DOCKER_DEFAULT_SUBNET} on "
                f"{pn.bridge_name}, so cross-node pod addressing is ambiguous: no node or router "
                "can tell which node a 172.17.x.x address lives on (the article's pathological "
                "worst case); the gateway gets no pod routes"
            )
        return DOCKER_DEFAULT_SUBNET, subnets, diags
    cluster = pn.cluster_cidr
    if pn.mode == "cluster-cidr":
        if pn.node_prefix_length < cluster.prefixlen:
            raise ScenarioError(
                f"node_prefix_length /{pn.node_prefix_length} is shorter than the cluster "
                f"CIDR {cluster}",
                file=file,
                field="pod_network.node_prefix_length",
                fix=f"use a prefix length of at least {cluster.prefixlen}",
            )
        capacity = 2 ** (pn.node_prefix_length - cluster.prefixlen)
        if len(scn.nodes) > capacity:
            raise ScenarioError(
                f"cluster CIDR {cluster} holds only {capacity} /{pn.node_prefix_length} node "
                f"subnets but there are {len(scn.nodes)} nodes",
                file=file,
                field="pod_network.cluster_cidr",
                fix="use a larger cluster_cidr or a longer node_prefix_length",
            )
        gen = cluster.subnets(new_prefix=pn.node_prefix_length)
        return cluster, {n.name: next(gen) for n in scn.nodes}, diags
    # explicit
    subnets: dict[str, IPv4Network] = {}
    for i, node in enumerate(scn.nodes):
        sub = node.pod_subnet
        assert sub is not None  # checked by the loader
        if not sub.subnet_of(cluster):
            raise ScenarioError(
                f"pod subnet {sub} does not fit in the cluster CIDR {cluster}",
                file=file,
                field=f"nodes.{i}.pod_subnet",
                fix=f"pick a subnet inside {cluster}, or widen pod_network.cluster_cidr",
            )
        for other, osub in subnets.items():
            if sub.overlaps(osub):
                raise ScenarioError(
                    f"pod subnet {sub} of node {node.name!r} overlaps {osub} of node {other!r}; "
                    "a pod address would no longer say which node it lives on",
                    file=file,
                    field=f"nodes.{i}.pod_subnet",
                    fix="give every node a distinct, non-overlapping pod subnet",
                )
        subnets[node.name] = sub
    return cluster, subnets, diags


def _check_pod_range(scn: Scenario, pod_range: IPv4Network, file: str) -> None:
    """Refuse a pod range that overlaps the node network."""
    net = scn.node_network.cidr
    if pod_range.overlaps(net):
        field = "pod_network.cluster_cidr" if scn.pod_network.mode != "docker-default" else None
        raise ScenarioError(
            f"pod range {pod_range} overlaps the node network {net}",
            file=file,
            field=field or "node_network.cidr",
            fix="keep pod addresses and node addresses in separate ranges",
        )


def _node_pods(
    scn: Scenario, node: str, on_node: list[Pod], sub: IPv4Network, file: str
) -> list[PodAddr]:
    """Address the pods ``on_node`` of ``node`` in its subnet, after the bridge's address."""
    limit = scn.pod_network.max_pods_per_node
    first, _ = host_range(sub)
    fits = sub.num_addresses - 3 if sub.prefixlen < 31 else 0
    cap = fits if limit is None else min(fits, limit)
    if len(on_node) > cap:
        pname = on_node[cap].name
        why = (
            f"max_pods_per_node is {limit}"
            if limit is not None and limit < fits
            else f"its pod subnet {sub} holds {fits} pod(s) beside the bridge"
        )
        raise ScenarioError(
            f"too many pods for node {node!r}: pod {pname!r} is the {_ordinal(cap + 1)} but {why}",
            file=file,
            field=f"pods.{[p.name for p in scn.pods].index(pname)}.node",
            fix="use a larger node subnet (smaller node_prefix_length), more nodes, or fewer pods",
        )
    return [
        PodAddr(p.name, node, IPv4Address(first + 1 + k), p.containers)
        for k, p in enumerate(on_node)
    ]


def _hosts(scn: Scenario, pod_range: IPv4Network, file: str) -> list[HostAddr]:
    """Check the external hosts' addresses against the cluster's ranges and each other."""
    net = scn.node_network.cidr
    hosts: list[HostAddr] = []
    seen: dict[IPv4Address, str] = {}
    for i, h in enumerate(scn.external_hosts):
        clash = None
        if h.address in net:
            clash = f"the node network {net}"
        elif h.address in pod_range:
            clash = f"the pod range {pod_range}"
        elif h.address in seen:
            clash = f"external host {seen[h.address]!r}"
        if clash:
            raise ScenarioError(
                f"external host address {h.address} is inside {clash}",
                file=file,
                field=f"external_hosts.{i}.address",
                fix="external hosts need addresses outside the cluster's ranges, one each",
            )
        seen[h.address] = h.name
        rr = h.return_route_to_pods
        hosts.append(HostAddr(h.name, h.address, h.address.is_private if rr is None else rr))
    return hosts


def allocate(scn: Scenario, file: str = "<scenario>") -> AddressPlan:
    """Allocate every address of ``scn``.

    Raises
    ------
    ScenarioError
        Pods that do not fit a subnet, subnets outside the cluster CIDR or
        overlapping each other or the node network, clashing external addresses.
    """
    gw, node_ips = _node_addresses(scn, file)
    pod_range, subnets, diags = _pod_subnets(scn, file)
    _check_pod_range(scn, pod_range, file)
    per_node: dict[str, list[Pod]] = {n.name: [] for n in scn.nodes}
    for pod in scn.pods:
        per_node[pod.node].append(pod)
    pods: list[PodAddr] = []
    nodes: list[NodeAddr] = []
    for node in scn.nodes:
        sub = subnets[node.name]
        pods += _node_pods(scn, node.name, per_node[node.name], sub, file)
        bridge_addr = IPv4Address(host_range(sub)[0])
        nodes.append(
            NodeAddr(
                node.name,
                node_ips[node.name],
                sub,
                scn.pod_network.bridge_name,
                bridge_addr,
                tuple(p.name for p in per_node[node.name]),
            )
        )
    order = {p.name: i for i, p in enumerate(scn.pods)}
    pods.sort(key=lambda p: order[p.name])
    return AddressPlan(
        node_network=scn.node_network.cidr,
        gateway_address=gw,
        pod_range=pod_range,
        nodes=tuple(nodes),
        pods=tuple(pods),
        hosts=tuple(_hosts(scn, pod_range, file)),
        diagnostics=tuple(diags),
    )
