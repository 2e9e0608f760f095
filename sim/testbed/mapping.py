"""Map a scenario's addresses into the benchmarking range and describe its replica.

The replica of a scenario may only use 198.18.0.0/15 (RFC 2544), so every
address of the scenario is given an *image* there by a deterministic mapping:

1. The scenario's address space is cut into **regions**, each mapped as a
   whole, keeping every address's offset inside it:

   * the pod region: the cluster pod range, or, when that is too large to fit
     (the article's 10.0.0.0/14), the smallest aligned block of it that holds
     every node's pod subnet (10.0.0.0/23 for two /24s);
   * the node LAN, likewise shrunk to the smallest block holding the gateway
     and the nodes only when it does not fit;
   * one region per external host: its /24 (so the last octet is kept), or a
     longer prefix when the /24 would overlap another region or straddle a
     non-masquerade CIDR.

   Node pod subnets, pod addresses, bridge addresses, node and gateway
   addresses therefore keep their prefix lengths and offsets.

2. The non-masquerade CIDRs are merged (only their union decides SNAT) and
   each gets an image block in 198.18.0.0/16: the whole /16 when there is one
   CIDR, else an equal aligned share; an image keeps the CIDR's prefix length
   when it is /16 or longer (10.0.0.0/8 becomes 198.18.0.0/16). Everything
   outside every non-masquerade CIDR goes to 198.19.0.0/16.

3. Inside each image block the regions it holds are packed in address order,
   each aligned to its own size.

So every address is inside the image of a non-masquerade CIDR exactly when it
was inside that CIDR: the replica's masquerade decisions equal the model's.
Whatever cannot be placed this way raises :class:`MappingError` naming the
region and the fix.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv4Network, collapse_addresses

from sim.control.cluster import Cluster
from sim.testbed.errors import MappingError
from sim.testbed.topology import (
    BENCH_RANGE,
    DEFAULT_PREFIX,
    ExternalSpec,
    GatewaySpec,
    NodeSpec,
    PodSpec,
    Topology,
)

__all__ = [
    "INSIDE_IMAGE",
    "OUTSIDE_IMAGE",
    "AddressMapping",
    "Region",
    "Replica",
    "map_cluster",
]

INSIDE_IMAGE = IPv4Network("198.18.0.0/16")
"""Where the images of the non-masquerade CIDRs (and what they hold) go."""

OUTSIDE_IMAGE = IPv4Network("198.19.0.0/16")
"""Where everything outside every non-masquerade CIDR goes."""

_HOST_PREFIX = 24


@dataclass(frozen=True)
class Region:
    """One block of scenario addresses mapped as a whole.

    Attributes
    ----------
    label : str
        What it holds (``pod range``, ``node network``, ``host intranet``).
    original : IPv4Network
        The scenario block.
    image : IPv4Network
        Its image in 198.18.0.0/15 (same prefix length).
    scenario_block : IPv4Network
        The scenario network it stands for (the full pod range even when only
        a shrunk part of it is mapped).
    """

    label: str
    original: IPv4Network
    image: IPv4Network
    scenario_block: IPv4Network

    def contains(self, addr: IPv4Address) -> bool:
        """Whether the scenario address ``addr`` lies in this region."""
        return addr in self.original

    def map(self, addr: IPv4Address) -> IPv4Address:
        """Image of ``addr`` (which must lie in the region), keeping its offset."""
        offset = int(addr) - int(self.original.network_address)
        return IPv4Address(int(self.image.network_address) + offset)

    def unmap(self, addr: IPv4Address) -> IPv4Address:
        """Scenario address whose image is ``addr`` (which must lie in the image)."""
        offset = int(addr) - int(self.image.network_address)
        return IPv4Address(int(self.original.network_address) + offset)


@dataclass(frozen=True)
class AddressMapping:
    """The deterministic scenario -> replica address mapping.

    Attributes
    ----------
    regions : tuple of Region
        Every mapped block, in image order.
    non_masquerade : tuple of (IPv4Network, IPv4Network)
        ``(merged scenario CIDR, image)`` pairs.
    """

    regions: tuple[Region, ...]
    non_masquerade: tuple[tuple[IPv4Network, IPv4Network], ...]

    def _region_of(self, addr: IPv4Address) -> Region | None:
        for region in self.regions:
            if region.contains(addr):
                return region
        return None

    def map_address(self, addr: IPv4Address | str) -> IPv4Address:
        """Image of a scenario address; loopback addresses map to themselves.

        Raises
        ------
        MappingError
            If ``addr`` is in no mapped region.
        """
        a = IPv4Address(addr)
        if a.is_loopback:
            return a
        region = self._region_of(a)
        if region is None:
            raise MappingError(
                f"scenario address {a} lies in no mapped region",
                fix="only addresses of the scenario's pods, nodes, gateway and external hosts "
                "have images",
            )
        return region.map(a)

    def map_network(self, net: IPv4Network) -> IPv4Network:
        """Image of a scenario network that lies inside one region (same prefix length)."""
        region = self._region_of(net.network_address)
        if region is None or not net.subnet_of(region.original):
            raise MappingError(
                f"scenario network {net} does not lie inside one mapped region",
                fix="this is a bug in the mapping; please report it",
            )
        return IPv4Network((region.map(net.network_address), net.prefixlen))

    def unmap_address(self, addr: IPv4Address | str | None) -> IPv4Address | None:
        """Scenario address of a replica address (``None`` stays ``None``).

        Loopback addresses and addresses in no image are returned unchanged.
        """
        if addr is None:
            return None
        a = IPv4Address(addr)
        for region in self.regions:
            if a in region.image:
                return region.unmap(a)
        return a

    @property
    def replica_non_masquerade(self) -> tuple[IPv4Network, ...]:
        """The replica's non-masquerade CIDRs (the images)."""
        return tuple(img for _, img in self.non_masquerade)

    def lines(self) -> list[str]:
        """The mapping as printable lines (scenario block -> image)."""
        out = ["address mapping (scenario -> replica, offsets kept inside each block):"]
        width = max([len(str(r.original)) for r in self.regions] + [18])
        for r in self.regions:
            note = ""
            if r.original != r.scenario_block:
                note = f"  (used part of {r.scenario_block})"
            out.append(f"  {r.label:<22} {r.original!s:<{width}} -> {r.image}{note}")
        for orig, img in self.non_masquerade:
            out.append(f"  {'non-masquerade CIDR':<22} {orig!s:<{width}} -> {img}")
        out.append(
            f"  {'everything else':<22} {'(outside them)':<{width}} -> {OUTSIDE_IMAGE} "
            "(masqueraded)"
        )
        return out

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "regions": [
                {
                    "label": r.label,
                    "scenario": str(r.original),
                    "replica": str(r.image),
                    "scenario_block": str(r.scenario_block),
                }
                for r in self.regions
            ],
            "non_masquerade": [
                {"scenario": str(o), "replica": str(i)} for o, i in self.non_masquerade
            ],
        }


@dataclass(frozen=True)
class Replica:
    """A scenario's cluster, its address mapping and the topology that rebuilds it.

    Attributes
    ----------
    cluster : Cluster
        The model cluster (scenario addresses).
    mapping : AddressMapping
        Scenario -> replica addresses.
    topology : Topology
        What :func:`sim.testbed.netns.up` builds.
    """

    cluster: Cluster
    mapping: AddressMapping
    topology: Topology

    def namespace(self, endpoint: str) -> str:
        """Namespace of a pod, ``pod/container``, node or external host name.

        Raises
        ------
        MappingError
            For an unknown name.
        """
        name = endpoint.split("/", 1)[0]
        try:
            return self.topology.ns_of(name)
        except KeyError:
            raise MappingError(
                f"unknown endpoint {endpoint!r}",
                file=self.cluster.file,
                fix="name a pod, pod/container, node or external host of the scenario",
            ) from None

    def address(self, endpoint: str) -> IPv4Address:
        """Replica address of a pod (or container), node or external host."""
        cl = self.cluster
        name = endpoint.split("/", 1)[0]
        for table in (cl.pods, cl.nodes, cl.hosts):
            if name in table:
                return self.mapping.map_address(table[name].address)
        raise MappingError(
            f"unknown endpoint {endpoint!r}",
            file=cl.file,
            fix="name a pod, pod/container, node or external host of the scenario",
        )


# ---------------------------------------------------------------- building
def _smallest_block(addrs: list[IPv4Address], floor: IPv4Network | None = None) -> IPv4Network:
    """Smallest aligned block holding ``addrs`` as valid host addresses."""
    lo, hi = min(addrs), max(addrs)
    net = IPv4Network((lo, 32))
    while True:
        if hi in net and all(
            net.prefixlen >= 31 or a not in (net.network_address, net.broadcast_address)
            for a in addrs
        ):
            break
        net = net.supernet()
    if floor is not None and not net.subnet_of(floor):
        return floor
    return net


def _supernet_of(nets: list[IPv4Network]) -> IPv4Network:
    net = min(nets, key=lambda n: (n.network_address, n.prefixlen))
    while not all(n.subnet_of(net) for n in nets):
        net = net.supernet()
    return net


def _group_of(
    region: IPv4Network, cidrs: list[IPv4Network], label: str, file: str
) -> IPv4Network | None:
    for cidr in cidrs:
        if region.subnet_of(cidr):
            return cidr
        if region.overlaps(cidr):
            raise MappingError(
                f"{label} {region} straddles the non-masquerade CIDR {cidr} (part of it is "
                "inside, part outside), so one image block cannot keep the masquerade relation",
                file=file,
                field="masquerade.non_masquerade_cidrs",
                fix=f"make {cidr} contain all of {region} or none of it",
            )
    return None


def _share_images(cidrs: list[IPv4Network], file: str) -> dict[IPv4Network, IPv4Network]:
    k = len(cidrs)
    if k == 0:
        return {}
    bits = math.ceil(math.log2(k)) if k > 1 else 0
    share = INSIDE_IMAGE.prefixlen + bits
    if share > 30:
        raise MappingError(
            f"{k} disjoint non-masquerade CIDRs do not fit in {INSIDE_IMAGE}",
            file=file,
            field="masquerade.non_masquerade_cidrs",
            fix="use fewer non-masquerade CIDRs (merge adjacent ones)",
        )
    size = 2 ** (32 - share)
    out = {}
    for i, cidr in enumerate(cidrs):
        start = IPv4Address(int(INSIDE_IMAGE.network_address) + i * size)
        out[cidr] = IPv4Network((start, max(cidr.prefixlen, share)))
    return out


def _pack(
    items: list[tuple[str, IPv4Network, IPv4Network]], space: IPv4Network
) -> list[Region] | str:
    """Pack regions (label, block, scenario block) into ``space``; a message if they do not fit."""
    cursor = int(space.network_address)
    end = int(space.broadcast_address) + 1
    out = []
    for label, block, scenario_block in sorted(items, key=lambda t: t[1].network_address):
        size = block.num_addresses
        cursor = -(-cursor // size) * size
        if cursor + size > end:
            used = sum(b.num_addresses for _, b, _ in items)
            names = ", ".join(f"{lbl} {b}" for lbl, b, _ in items)
            return f"the blocks to map into {space} ({names}; {used} addresses) do not fit in it"
        out.append(
            Region(
                label, block, IPv4Network((IPv4Address(cursor), block.prefixlen)), scenario_block
            )
        )
        cursor += size
    return out


def _host_block(
    addr: IPv4Address, taken: list[IPv4Network], cidrs: list[IPv4Network]
) -> IPv4Network:
    for plen in range(_HOST_PREFIX, 33):
        block = IPv4Network((addr, plen), strict=False)
        if any(block.overlaps(t) for t in taken):
            continue
        if any(block.overlaps(c) and not block.subnet_of(c) for c in cidrs):
            continue
        return block
    return IPv4Network((addr, 32))


def _build_mapping(
    cl: Cluster, shrink_pods: bool, shrink_lan: bool
) -> AddressMapping | MappingError:
    plan, scn, file = cl.plan, cl.scenario, cl.file
    cidrs = list(collapse_addresses(scn.masquerade.non_masquerade_cidrs))
    images = _share_images(cidrs, file)

    pod_block = plan.pod_range
    lan_block = plan.node_network
    if shrink_pods:
        pod_block = _supernet_of([n.pod_subnet for n in plan.nodes])
    if shrink_lan:
        lan_block = _smallest_block(
            [plan.gateway_address, *(n.address for n in plan.nodes)], floor=plan.node_network
        )
    items = [
        ("pod range", pod_block, plan.pod_range),
        ("node network", lan_block, plan.node_network),
    ]
    taken = [pod_block, lan_block]
    host_blocks: dict[IPv4Network, list[str]] = {}
    for h in plan.hosts:
        block = _host_block(h.address, taken, cidrs)
        if block not in host_blocks:
            taken.append(block)
        host_blocks.setdefault(block, []).append(h.name)
    for block, names in host_blocks.items():
        label = ("host " if len(names) == 1 else "hosts ") + ",".join(names)
        items.append((label, block, block))

    groups: dict[IPv4Network | None, list] = {}
    for item in items:
        try:
            group = _group_of(item[1], cidrs, item[0], file)
        except MappingError as err:
            return err
        groups.setdefault(group, []).append(item)
    regions: list[Region] = []
    for cidr, members in groups.items():
        space = OUTSIDE_IMAGE if cidr is None else images[cidr]
        packed = _pack(members, space)
        if isinstance(packed, str):
            where = "outside every non-masquerade CIDR" if cidr is None else f"inside {cidr}"
            return MappingError(
                f"the scenario's networks cannot be mapped into 198.18.0.0/15: {packed} ({where})",
                file=file,
                fix="use smaller networks (longer prefixes) or fewer distinct networks; the "
                "replica has 198.18.0.0/16 for non-masqueraded and 198.19.0.0/16 for "
                "masqueraded destinations",
            )
        regions.extend(packed)
    regions.sort(key=lambda r: r.image.network_address)
    return AddressMapping(tuple(regions), tuple((c, images[c]) for c in cidrs))


def _check_relation(cl: Cluster, mapping: AddressMapping) -> None:
    """Every used address is inside an image exactly when inside a non-masq CIDR."""
    cidrs = cl.scenario.masquerade.non_masquerade_cidrs
    imgs = mapping.replica_non_masquerade
    addrs = [cl.plan.gateway_address]
    addrs += [n.address for n in cl.plan.nodes] + [n.bridge_address for n in cl.plan.nodes]
    addrs += [p.address for p in cl.plan.pods] + [h.address for h in cl.plan.hosts]
    for a in addrs:
        inside = any(a in c for c in cidrs)
        image = mapping.map_address(a)
        if inside != any(image in i for i in imgs) or image not in BENCH_RANGE:
            raise MappingError(
                f"address {a} maps to {image}, which does not keep its masquerade relation",
                file=cl.file,
                fix="this is a bug in the mapping; please report it",
            )


def map_cluster(cl: Cluster, prefix: str = DEFAULT_PREFIX) -> Replica:
    """Map a built cluster into 198.18.0.0/15 and describe its replica.

    Parameters
    ----------
    cl : Cluster
        The model cluster, from :func:`sim.control.build_cluster`.
    prefix : str, default "pns-"
        Namespace prefix of the replica.

    Returns
    -------
    Replica
        The cluster, the mapping and the :class:`Topology`.

    Raises
    ------
    MappingError
        If the scenario's networks cannot be placed (too large, straddling a
        non-masquerade CIDR, overlapping pod subnets) or the prefix is bad.
    """
    plan = cl.plan
    if cl.diagnostics or len({n.pod_subnet for n in plan.nodes}) < len(plan.nodes):
        raise MappingError(
            "the nodes' pod subnets overlap (docker-default addressing), which the replica "
            "cannot route: its gateway needs one pod subnet per node",
            file=cl.file,
            field="pod_network.mode",
            fix="use pod_network.mode = 'cluster-cidr' (or 'explicit' with distinct subnets)",
        )
    # Keep whole networks where possible; shrink the pod range first, then the LAN.
    for shrink_pods, shrink_lan in ((False, False), (True, False), (False, True), (True, True)):
        mapping = _build_mapping(cl, shrink_pods, shrink_lan)
        if not isinstance(mapping, MappingError):
            break
    if isinstance(mapping, MappingError):
        raise mapping
    _check_relation(cl, mapping)
    m = mapping.map_address
    lan_net = mapping._region_of(plan.gateway_address).image
    pod_region = mapping._region_of(plan.nodes[0].pod_subnet.network_address)
    try:
        topo = Topology(
            prefix=prefix,
            nodes=tuple(
                NodeSpec(
                    n.name,
                    IPv4Interface((m(n.address), lan_net.prefixlen)),
                    mapping.map_network(n.pod_subnet),
                    bridge_name=n.bridge,
                    bridge_address=IPv4Interface((m(n.bridge_address), n.pod_subnet.prefixlen)),
                )
                for n in plan.nodes
            ),
            pods=tuple(
                PodSpec(
                    p.name,
                    p.node,
                    IPv4Interface((m(p.address), cl.nodes[p.node].pod_subnet.prefixlen)),
                )
                for p in plan.pods
            ),
            externals=tuple(
                ExternalSpec(
                    h.name,
                    IPv4Interface((m(h.address), mapping._region_of(h.address).image.prefixlen)),
                    h.return_route_to_pods,
                )
                for h in plan.hosts
            ),
            gateway=GatewaySpec(IPv4Interface((m(plan.gateway_address), lan_net.prefixlen))),
            node_lan=lan_net,
            pod_cidr=pod_region.image,
            non_masquerade=mapping.replica_non_masquerade,
        )
    except ValueError as err:
        raise MappingError(
            f"the scenario cannot be built as a replica: {err}",
            file=cl.file,
            fix="adjust the scenario (names, addresses) or the namespace prefix",
        ) from None
    return Replica(cluster=cl, mapping=mapping, topology=topo)
