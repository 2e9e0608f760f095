"""Map a scenario's addresses into the benchmarking range 198.18.0.0/15.

The replica may only use 198.18.0.0/15 (RFC 2544, "Benchmarking Methodology
for Network Interconnect Devices", section C.2.2), so every scenario address
gets an *image* there, deterministically:

1. **Regions**, each mapped as a whole with every offset kept: the pod range
   (or, when it is too large, the smallest aligned block holding every node's
   pod subnet), the node network (shrunk likewise only when needed), and one
   block per external host (its /24, or a longer prefix when the /24 would
   overlap another region or straddle a non-masquerade CIDR).
2. The **non-masquerade CIDRs** are merged and each gets an image in
   198.18.0.0/16 (the whole /16 for one CIDR, an equal aligned share for
   several); everything outside them goes to 198.19.0.0/16.
3. Inside each image the regions it holds are packed in address order, each
   aligned to its own size.

So an address is inside the image of a non-masquerade CIDR exactly when it
was inside the CIDR: the replica masquerades what the model masquerades. In
``docker-default`` mode every node has the same pod subnet; it has one image,
reused inside every node's namespace, as Docker reuses 172.17.0.0/16.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from sim.control.cluster import Cluster
from sim.testbed.errors import MappingError

BENCH_RANGE = IPv4Network("198.18.0.0/15")
"""The only address range the replica uses (RFC 2544)."""

INSIDE_IMAGE = IPv4Network("198.18.0.0/16")
"""Where the images of the non-masquerade CIDRs (and what they hold) go."""

OUTSIDE_IMAGE = IPv4Network("198.19.0.0/16")
"""Where everything outside every non-masquerade CIDR goes."""

_HOST_PREFIX = 24
_Item = tuple[str, IPv4Network, IPv4Network]  # label, mapped block, scenario block


@dataclass(frozen=True)
class Region:
    """A block of scenario addresses mapped as a whole, offsets kept.

    Attributes
    ----------
    label : str
        What it holds (``pod range``, ``node network``, ``host intranet``).
    original : IPv4Network
        The scenario block mapped.
    image : IPv4Network
        Its image in 198.18.0.0/15 (same prefix length).
    scenario_block : IPv4Network
        The scenario network it stands for (the whole pod range even when only
        its used part is mapped).
    """

    label: str
    original: IPv4Network
    image: IPv4Network
    scenario_block: IPv4Network

    def map(self, addr: IPv4Address) -> IPv4Address:
        """Image of ``addr`` (inside :attr:`original`)."""
        return IPv4Address(int(self.image.network_address) + int(addr) - int(self.original[0]))

    def unmap(self, addr: IPv4Address) -> IPv4Address:
        """Scenario address whose image is ``addr`` (inside :attr:`image`)."""
        return IPv4Address(int(self.original.network_address) + int(addr) - int(self.image[0]))


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

    def _region(self, addr: IPv4Address) -> Region | None:
        return next((r for r in self.regions if addr in r.original), None)

    def address(self, addr: IPv4Address | str) -> IPv4Address:
        """Image of a scenario address (loopback maps to itself).

        Raises
        ------
        MappingError
            If ``addr`` is in no mapped region.
        """
        a = IPv4Address(addr)
        if a.is_loopback:
            return a
        region = self._region(a)
        if region is None:
            raise MappingError(
                f"scenario address {a} lies in no mapped region",
                fix="only addresses of the scenario's pods, nodes, gateway and hosts have images",
            )
        return region.map(a)

    def network(self, net: IPv4Network) -> IPv4Network:
        """Image of a scenario network: a region's scenario block or a part of a region."""
        if net.prefixlen == 0:
            return net
        for r in self.regions:
            if net == r.scenario_block:
                return r.image
            if net.subnet_of(r.original):
                return IPv4Network((r.map(net.network_address), net.prefixlen))
        raise MappingError(
            f"scenario network {net} lies in no mapped region",
            fix="this is a bug in the mapping; please report it",
        )

    def unmap(self, addr: IPv4Address | str | None) -> IPv4Address | None:
        """Scenario address of a replica address (others, and ``None``, unchanged)."""
        if addr is None:
            return None
        a = IPv4Address(addr)
        return next((r.unmap(a) for r in self.regions if a in r.image), a)

    @property
    def replica_non_masquerade(self) -> tuple[IPv4Network, ...]:
        """The images of the non-masquerade CIDRs."""
        return tuple(img for _, img in self.non_masquerade)

    def lines(self) -> list[str]:
        """Return the mapping as printable lines (scenario block -> image)."""
        out = ["address mapping (scenario -> replica, offsets kept inside each block):"]
        width = max([len(str(r.original)) for r in self.regions] + [18])
        for r in self.regions:
            note = f"  (used part of {r.scenario_block})" if r.original != r.scenario_block else ""
            out.append(f"  {r.label:<22} {r.original!s:<{width}} -> {r.image}{note}")
        for orig, img in self.non_masquerade:
            out.append(f"  {'non-masquerade CIDR':<22} {orig!s:<{width}} -> {img}")
        out.append(f"  {'everything else':<22} {'(outside them)':<{width}} -> {OUTSIDE_IMAGE}")
        return out

    def to_dict(self) -> dict:
        """JSON-ready form (recorded in measurements)."""
        return {
            "regions": [
                {"label": r.label, "scenario": str(r.original), "replica": str(r.image)}
                for r in self.regions
            ],
            "non_masquerade": [
                {"scenario": str(o), "replica": str(i)} for o, i in self.non_masquerade
            ],
        }


def _block_of(addrs: list[IPv4Address]) -> IPv4Network:
    """Smallest aligned block holding ``addrs`` as host addresses."""
    net = IPv4Network((min(addrs), 32))
    while max(addrs) not in net or (
        net.prefixlen < 31 and any(a in (net[0], net[-1]) for a in addrs)
    ):
        net = net.supernet()
    return net


def _share_images(cidrs: list[IPv4Network], file: str) -> dict[IPv4Network, IPv4Network]:
    share = INSIDE_IMAGE.prefixlen + (math.ceil(math.log2(len(cidrs))) if len(cidrs) > 1 else 0)
    if share > 30:
        raise MappingError(
            f"{len(cidrs)} disjoint non-masquerade CIDRs do not fit in {INSIDE_IMAGE}",
            file=file,
            field="masquerade.non_masquerade_cidrs",
            fix="use fewer non-masquerade CIDRs (merge adjacent ones)",
        )
    size = 2 ** (32 - share)
    return {
        c: IPv4Network((int(INSIDE_IMAGE[0]) + i * size, max(c.prefixlen, share)))
        for i, c in enumerate(cidrs)
    }


def _group(item: _Item, cidrs: list[IPv4Network], file: str) -> IPv4Network | None:
    label, block, _ = item
    for cidr in cidrs:
        if block.subnet_of(cidr):
            return cidr
        if block.overlaps(cidr):
            raise MappingError(
                f"{label} {block} straddles the non-masquerade CIDR {cidr} (part inside, part "
                "outside), so one image block cannot keep the masquerade relation",
                file=file,
                field="masquerade.non_masquerade_cidrs",
                fix=f"make {cidr} contain all of {block} or none of it",
            )
    return None


def _pack(items: list[_Item], space: IPv4Network) -> list[Region] | None:
    """Pack blocks into ``space`` in address order, each aligned to its size."""
    cursor, end, out = int(space[0]), int(space[-1]) + 1, []
    for label, block, scenario_block in sorted(items, key=lambda t: t[1].network_address):
        cursor = -(-cursor // block.num_addresses) * block.num_addresses
        if cursor + block.num_addresses > end:
            return None
        out.append(Region(label, block, IPv4Network((cursor, block.prefixlen)), scenario_block))
        cursor += block.num_addresses
    return out


def _host_block(addr: IPv4Address, taken: list[IPv4Network], cidrs: list[IPv4Network]):
    for plen in range(_HOST_PREFIX, 33):
        block = IPv4Network((addr, plen), strict=False)
        if not any(block.overlaps(t) for t in taken) and not any(
            block.overlaps(c) and not block.subnet_of(c) for c in cidrs
        ):
            return block
    return IPv4Network((addr, 32))


def _items(cl: Cluster, shrink_pods: bool, shrink_lan: bool, cidrs) -> list[_Item]:
    plan = cl.plan
    pods = plan.pod_range
    if shrink_pods:
        pods = min(n.pod_subnet for n in plan.nodes)
        while not all(n.pod_subnet.subnet_of(pods) for n in plan.nodes):
            pods = pods.supernet()
    lan = plan.node_network
    if shrink_lan:
        lan = _block_of([plan.gateway_address, *(n.address for n in plan.nodes)])
    items = [("pod range", pods, plan.pod_range), ("node network", lan, plan.node_network)]
    hosts: dict[IPv4Network, list[str]] = {}
    for h in plan.hosts:
        block = _host_block(h.address, [pods, lan, *hosts], cidrs)
        hosts.setdefault(block, []).append(h.name)
    for block, names in hosts.items():
        items.append((("host " if len(names) == 1 else "hosts ") + ",".join(names), block, block))
    return items


def _try_mapping(cl: Cluster, shrink_pods: bool, shrink_lan: bool) -> AddressMapping | MappingError:
    cidrs = list(collapse_addresses(cl.scenario.masquerade.non_masquerade_cidrs))
    images = _share_images(cidrs, cl.file)
    groups: dict[IPv4Network | None, list[_Item]] = {}
    try:
        for item in _items(cl, shrink_pods, shrink_lan, cidrs):
            groups.setdefault(_group(item, cidrs, cl.file), []).append(item)
    except MappingError as err:
        return err
    regions: list[Region] = []
    for cidr, members in groups.items():
        packed = _pack(members, OUTSIDE_IMAGE if cidr is None else images[cidr])
        if packed is None:
            names = ", ".join(f"{label} {b}" for label, b, _ in members)
            where = f"inside {cidr}" if cidr else "outside every non-masquerade CIDR"
            return MappingError(
                f"the scenario's networks cannot be mapped into {BENCH_RANGE}: {names} ({where}) "
                "do not fit in their image",
                file=cl.file,
                fix="use smaller networks (longer prefixes) or fewer distinct networks; the "
                "replica has 198.18.0.0/16 for non-masqueraded and 198.19.0.0/16 for masqueraded "
                "destinations",
            )
        regions.extend(packed)
    regions.sort(key=lambda r: r.image.network_address)
    return AddressMapping(tuple(regions), tuple((c, images[c]) for c in cidrs))


def map_cluster(cl: Cluster) -> AddressMapping:
    """Map a built cluster into 198.18.0.0/15.

    Whole networks are kept where they fit; else the pod range is shrunk to
    its used part, then the node network, then both.

    Parameters
    ----------
    cl : Cluster
        The model cluster, from :func:`sim.control.build_cluster`.

    Returns
    -------
    AddressMapping
        The mapping; every used address keeps its masquerade relation.

    Raises
    ------
    MappingError
        If the networks cannot be placed (too large, or a region straddling a
        non-masquerade CIDR); one line with the fix.
    """
    for shrink in ((False, False), (True, False), (False, True), (True, True)):
        mapping = _try_mapping(cl, *shrink)
        if isinstance(mapping, AddressMapping):
            return mapping
    raise mapping
