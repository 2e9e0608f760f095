"""Frozen description of a real-kernel pod-network replica.

The replica mirrors a small Kubernetes cluster on a cloud VPC:

* every **node** is a network namespace with a Linux bridge (``cbr0``) holding
  the node's pod subnet, and an ``eth0`` on the node LAN;
* every **pod** is a namespace whose ``eth0`` is one end of a veth pair; the
  other end is a port of its node's bridge;
* a **LAN** namespace holds one bridge joining every node's ``eth0`` and the
  gateway;
* the **gateway** (the VPC router) routes each node's pod subnet to that node
  and has a point-to-point link to every **external** host;
* every node masquerades pod traffic leaving the node towards destinations
  outside ``non_masquerade`` (the ip-masq-agent behaviour).

This module only *describes*; :mod:`sim.testbed.netns` builds it. Names of
namespaces and interfaces are derived deterministically from a prefix and the
index of each element, so they always fit Linux's 15-character limit, and every
address must lie inside the benchmarking range 198.18.0.0/15 (RFC 2544), so the
replica can never collide with a real network.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Interface, IPv4Network

BENCH_RANGE = IPv4Network("198.18.0.0/15")
"""The only address range the testbed may use (RFC 2544 benchmarking)."""

IFNAMSIZ = 15
"""Longest interface (and, here, namespace) name Linux accepts, in characters."""

DEFAULT_PREFIX = "pns-"
"""Default prefix of every namespace the testbed creates."""

PREFIX_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*-$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_RESERVED_IFNAMES = ("lo", "eth0")
_RESERVED_IFNAME_PREFIXES = ("vp",)


def check_prefix(prefix: str) -> str:
    """Validate a namespace prefix and return it.

    A prefix is lower-case letters/digits in dash-separated words, ending in a
    dash (``pns-``, ``pnt-4242-``), so that ``down(prefix)`` can only ever match
    namespaces the testbed made.

    Parameters
    ----------
    prefix : str
        Candidate prefix.

    Returns
    -------
    str
        ``prefix`` unchanged.

    Raises
    ------
    ValueError
        If the prefix is malformed or too long to leave room for a suffix.
    """
    if not isinstance(prefix, str) or not PREFIX_RE.match(prefix):
        raise ValueError(
            f"prefix {prefix!r} is invalid: use lower-case letters and digits in dash-separated "
            "words ending with '-', e.g. 'pns-'"
        )
    if len(prefix) > IFNAMSIZ - 3:
        raise ValueError(
            f"prefix {prefix!r} is {len(prefix)} characters; at most {IFNAMSIZ - 3} leave room "
            f"for namespace suffixes within the {IFNAMSIZ}-character limit"
        )
    return prefix


def _iface(value: IPv4Interface | str, what: str) -> IPv4Interface:
    try:
        iface = IPv4Interface(value)
    except ValueError as err:
        raise ValueError(f"{what}: {value!r} is not an IPv4 address with prefix: {err}") from None
    if iface.ip not in BENCH_RANGE or not iface.network.subnet_of(BENCH_RANGE):
        raise ValueError(
            f"{what}: {iface} is outside {BENCH_RANGE}; the testbed only uses the benchmarking "
            "range so it can never reach a real network"
        )
    return iface


def _net(value: IPv4Network | str, what: str) -> IPv4Network:
    try:
        net = IPv4Network(value)
    except ValueError as err:
        raise ValueError(f"{what}: {value!r} is not an IPv4 network: {err}") from None
    if not net.subnet_of(BENCH_RANGE):
        raise ValueError(
            f"{what}: {net} is outside {BENCH_RANGE}; the testbed only uses the benchmarking "
            "range so it can never reach a real network"
        )
    return net


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME_RE.match(value):
        raise ValueError(
            f"{what}: name {value!r} is invalid: use 1-63 letters, digits, '_', '.', '-'"
        )
    return value


def _ifname(value: str, what: str) -> str:
    if not isinstance(value, str) or not _IFNAME_RE.match(value) or len(value) > IFNAMSIZ:
        raise ValueError(
            f"{what}: interface name {value!r} is invalid: use 1-{IFNAMSIZ} letters, digits, "
            "'_', '.', '-'"
        )
    if value in _RESERVED_IFNAMES or value.startswith(_RESERVED_IFNAME_PREFIXES):
        raise ValueError(
            f"{what}: interface name {value!r} is reserved by the testbed; pick e.g. 'cbr0'"
        )
    return value


def _host_address_ok(iface: IPv4Interface) -> bool:
    net = iface.network
    if net.prefixlen >= 31:
        return True
    return iface.ip not in (net.network_address, net.broadcast_address)


@dataclass(frozen=True)
class NodeSpec:
    """One Kubernetes node.

    Parameters
    ----------
    name : str
        Logical name (``node1``); not used for kernel objects.
    lan_address : IPv4Interface or str
        Address of the node's ``eth0`` on the node LAN, with the LAN prefix
        (``198.18.100.11/24``).
    pod_subnet : IPv4Network or str
        The node's share of the pod CIDR (``198.18.0.0/24``).
    bridge_name : str, default "cbr0"
        Name of the pod bridge inside the node namespace.
    bridge_address : IPv4Interface or str or None, default None
        Address of the bridge, the pods' default gateway. ``None`` means the
        first host of ``pod_subnet`` (``198.18.0.1/24``).
    """

    name: str
    lan_address: IPv4Interface
    pod_subnet: IPv4Network
    bridge_name: str = "cbr0"
    bridge_address: IPv4Interface | None = None

    def __post_init__(self) -> None:
        _name(self.name, "node")
        what = f"node {self.name}"
        object.__setattr__(self, "lan_address", _iface(self.lan_address, f"{what}: lan_address"))
        subnet = _net(self.pod_subnet, f"{what}: pod_subnet")
        object.__setattr__(self, "pod_subnet", subnet)
        _ifname(self.bridge_name, f"{what}: bridge_name")
        bridge = self.bridge_address
        if bridge is None:
            bridge = IPv4Interface((next(subnet.hosts()), subnet.prefixlen))
        bridge = _iface(bridge, f"{what}: bridge_address")
        if bridge.network != subnet:
            raise ValueError(
                f"{what}: bridge_address {bridge} must be a host of pod_subnet {subnet} "
                f"with prefix /{subnet.prefixlen}"
            )
        if not _host_address_ok(bridge):
            raise ValueError(f"{what}: bridge_address {bridge} is a network/broadcast address")
        object.__setattr__(self, "bridge_address", bridge)


@dataclass(frozen=True)
class PodSpec:
    """One pod, attached to a node's bridge.

    Parameters
    ----------
    name : str
        Logical name (``pod-a``).
    node : str
        Name of the :class:`NodeSpec` it runs on.
    address : IPv4Interface or str
        Pod address with the node's pod-subnet prefix (``198.18.0.10/24``).
    """

    name: str
    node: str
    address: IPv4Interface

    def __post_init__(self) -> None:
        _name(self.name, "pod")
        _name(self.node, f"pod {self.name}: node")
        object.__setattr__(self, "address", _iface(self.address, f"pod {self.name}: address"))


@dataclass(frozen=True)
class ExternalSpec:
    """A host outside the cluster, reached through the gateway.

    Parameters
    ----------
    name : str
        Logical name (``intranet``).
    address : IPv4Interface or str
        Host address; its prefix only sets the host's connected network.
    return_route_to_pods : bool
        Whether the host has a route back to the pod CIDR (via the gateway).
        Without it, replies to un-masqueraded pod traffic are dropped.
    """

    name: str
    address: IPv4Interface
    return_route_to_pods: bool = True

    def __post_init__(self) -> None:
        _name(self.name, "external")
        object.__setattr__(self, "address", _iface(self.address, f"external {self.name}: address"))
        object.__setattr__(self, "return_route_to_pods", bool(self.return_route_to_pods))


@dataclass(frozen=True)
class GatewaySpec:
    """The VPC router joining the node LAN and the external hosts.

    Parameters
    ----------
    lan_address : IPv4Interface or str
        Gateway address on the node LAN (``198.18.100.1/24``); the nodes'
        default route points at it.
    """

    lan_address: IPv4Interface

    def __post_init__(self) -> None:
        object.__setattr__(self, "lan_address", _iface(self.lan_address, "gateway: lan_address"))


@dataclass(frozen=True, kw_only=True)
class Topology:
    """The whole replica, validated on construction.

    Parameters
    ----------
    prefix : str, default "pns-"
        Prefix of every namespace name (see :func:`check_prefix`).
    nodes : tuple of NodeSpec
        At least one node.
    pods : tuple of PodSpec
        Pods; each names an existing node.
    externals : tuple of ExternalSpec, default ()
        Hosts outside the cluster.
    gateway : GatewaySpec
        The router.
    node_lan : IPv4Network or str
        The node LAN; node and gateway LAN addresses use exactly this prefix.
    pod_cidr : IPv4Network or str
        Cluster pod CIDR; every node's pod subnet lies inside it.
    non_masquerade : tuple of IPv4Network or str, default ()
        Destinations that pod traffic reaches with its pod source address;
        traffic to anything else leaving a node is masqueraded to the node's
        LAN address. Include ``pod_cidr`` here for cross-node pod-to-pod
        traffic to keep pod addresses.

    Raises
    ------
    ValueError
        If any address is outside 198.18.0.0/15, names collide or do not fit
        the 15-character limit, or the addressing is inconsistent.
    """

    prefix: str = DEFAULT_PREFIX
    nodes: tuple[NodeSpec, ...]
    pods: tuple[PodSpec, ...]
    externals: tuple[ExternalSpec, ...] = ()
    gateway: GatewaySpec
    node_lan: IPv4Network
    pod_cidr: IPv4Network
    non_masquerade: tuple[IPv4Network, ...] = field(default=())

    def __post_init__(self) -> None:
        check_prefix(self.prefix)
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "pods", tuple(self.pods))
        object.__setattr__(self, "externals", tuple(self.externals))
        node_lan = _net(self.node_lan, "node_lan")
        pod_cidr = _net(self.pod_cidr, "pod_cidr")
        object.__setattr__(self, "node_lan", node_lan)
        object.__setattr__(self, "pod_cidr", pod_cidr)
        object.__setattr__(
            self,
            "non_masquerade",
            tuple(_net(n, "non_masquerade") for n in self.non_masquerade),
        )
        if node_lan.overlaps(pod_cidr):
            raise ValueError(f"node_lan {node_lan} overlaps pod_cidr {pod_cidr}")
        if not self.nodes:
            raise ValueError("a topology needs at least one node")
        for kind, items in (("node", self.nodes), ("pod", self.pods), ("external", self.externals)):
            cls = {"node": NodeSpec, "pod": PodSpec, "external": ExternalSpec}[kind]
            for item in items:
                if not isinstance(item, cls):
                    raise ValueError(f"{kind}s must be {cls.__name__} objects, got {item!r}")
        if not isinstance(self.gateway, GatewaySpec):
            raise ValueError(f"gateway must be a GatewaySpec, got {self.gateway!r}")

        names = [x.name for x in (*self.nodes, *self.pods, *self.externals)]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"names must be unique across nodes, pods and externals: {dupes}")

        used: dict[IPv4Address, str] = {}

        def claim(addr: IPv4Address, owner: str) -> None:
            if addr in used:
                raise ValueError(f"address {addr} is used by both {used[addr]} and {owner}")
            used[addr] = owner

        gw = self.gateway.lan_address
        if gw.network != node_lan:
            raise ValueError(f"gateway lan_address {gw} must be a host of node_lan {node_lan}")
        if not _host_address_ok(gw):
            raise ValueError(f"gateway lan_address {gw} is a network/broadcast address")
        claim(gw.ip, "gateway")

        by_name = {n.name: n for n in self.nodes}
        for i, node in enumerate(self.nodes):
            if node.lan_address.network != node_lan:
                raise ValueError(
                    f"node {node.name}: lan_address {node.lan_address} must be a host of "
                    f"node_lan {node_lan}"
                )
            if not _host_address_ok(node.lan_address):
                raise ValueError(
                    f"node {node.name}: lan_address {node.lan_address} is a network/broadcast "
                    "address"
                )
            claim(node.lan_address.ip, f"node {node.name}")
            if not node.pod_subnet.subnet_of(pod_cidr):
                raise ValueError(
                    f"node {node.name}: pod_subnet {node.pod_subnet} is not inside pod_cidr "
                    f"{pod_cidr}"
                )
            for other in self.nodes[:i]:
                if node.pod_subnet.overlaps(other.pod_subnet):
                    raise ValueError(
                        f"node {node.name}: pod_subnet {node.pod_subnet} overlaps node "
                        f"{other.name}'s {other.pod_subnet}"
                    )
            claim(node.bridge_address.ip, f"node {node.name} bridge")

        for pod in self.pods:
            node = by_name.get(pod.node)
            if node is None:
                raise ValueError(f"pod {pod.name}: node {pod.node!r} does not exist")
            if pod.address.network != node.pod_subnet:
                raise ValueError(
                    f"pod {pod.name}: address {pod.address} must be a host of node "
                    f"{node.name}'s pod_subnet {node.pod_subnet}"
                )
            if not _host_address_ok(pod.address):
                raise ValueError(
                    f"pod {pod.name}: address {pod.address} is a network/broadcast address"
                )
            claim(pod.address.ip, f"pod {pod.name}")

        for ext in self.externals:
            for label, net in (("node_lan", node_lan), ("pod_cidr", pod_cidr)):
                if ext.address.network.overlaps(net):
                    raise ValueError(
                        f"external {ext.name}: address {ext.address} overlaps {label} {net}; "
                        "external hosts must sit outside the cluster networks"
                    )
            claim(ext.address.ip, f"external {ext.name}")

        longest = max(len(s) for s in self._suffixes())
        if len(self.prefix) + longest > IFNAMSIZ:
            raise ValueError(
                f"prefix {self.prefix!r} is too long for {len(self.pods)} pods/"
                f"{len(self.nodes)} nodes: namespace names would exceed {IFNAMSIZ} characters; "
                f"use a prefix of at most {IFNAMSIZ - longest} characters"
            )

    # ----------------------------------------------------------------- naming
    def _suffixes(self) -> list[str]:
        return [
            "lan",
            "gw",
            *(f"n{i}" for i in range(len(self.nodes))),
            *(f"p{i}" for i in range(len(self.pods))),
            *(f"x{i}" for i in range(len(self.externals))),
        ]

    @property
    def lan_ns(self) -> str:
        """Name of the LAN namespace (holds the LAN bridge)."""
        return f"{self.prefix}lan"

    @property
    def gateway_ns(self) -> str:
        """Name of the gateway namespace."""
        return f"{self.prefix}gw"

    def node(self, name: str) -> NodeSpec:
        """Return the node called ``name`` (``KeyError`` if absent)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(f"no node named {name!r}")

    def pod(self, name: str) -> PodSpec:
        """Return the pod called ``name`` (``KeyError`` if absent)."""
        for pod in self.pods:
            if pod.name == name:
                return pod
        raise KeyError(f"no pod named {name!r}")

    def external(self, name: str) -> ExternalSpec:
        """Return the external host called ``name`` (``KeyError`` if absent)."""
        for ext in self.externals:
            if ext.name == name:
                return ext
        raise KeyError(f"no external named {name!r}")

    def node_index(self, name: str) -> int:
        """Index of node ``name`` in :attr:`nodes`."""
        return self.nodes.index(self.node(name))

    def pod_index(self, name: str) -> int:
        """Index of pod ``name`` in :attr:`pods`."""
        return self.pods.index(self.pod(name))

    def external_index(self, name: str) -> int:
        """Index of external ``name`` in :attr:`externals`."""
        return self.externals.index(self.external(name))

    def node_ns(self, name: str) -> str:
        """Namespace of node ``name`` (``<prefix>n<index>``)."""
        return f"{self.prefix}n{self.node_index(name)}"

    def pod_ns(self, name: str) -> str:
        """Namespace of pod ``name`` (``<prefix>p<index>``)."""
        return f"{self.prefix}p{self.pod_index(name)}"

    def external_ns(self, name: str) -> str:
        """Namespace of external host ``name`` (``<prefix>x<index>``)."""
        return f"{self.prefix}x{self.external_index(name)}"

    def ns_of(self, name: str) -> str:
        """Namespace of the node, pod or external called ``name``.

        ``"gateway"`` and ``"lan"`` name the gateway and LAN namespaces.
        """
        if name == "gateway":
            return self.gateway_ns
        if name == "lan":
            return self.lan_ns
        for lookup in (self.node_ns, self.pod_ns, self.external_ns):
            try:
                return lookup(name)
            except KeyError:
                pass
        raise KeyError(f"no node, pod or external named {name!r}")

    def address_of(self, name: str) -> IPv4Address:
        """Address of the pod, external, or node (LAN address) called ``name``."""
        if name == "gateway":
            return self.gateway.lan_address.ip
        for lookup, attr in (
            (self.pod, "address"),
            (self.external, "address"),
            (self.node, "lan_address"),
        ):
            try:
                return getattr(lookup(name), attr).ip
            except KeyError:
                pass
        raise KeyError(f"no node, pod or external named {name!r}")

    def namespaces(self) -> tuple[str, ...]:
        """Every namespace name of the replica, in build order."""
        return tuple(f"{self.prefix}{s}" for s in self._suffixes())

    def pod_peer_ifname(self, name: str) -> str:
        """Name of pod ``name``'s veth end inside its node namespace (``vp<index>``)."""
        return f"vp{self.pod_index(name)}"

    def node_lan_port(self, name: str) -> str:
        """Name of node ``name``'s veth end on the LAN bridge (``vn<index>``)."""
        return f"vn{self.node_index(name)}"

    def external_link(self, name: str) -> str:
        """Name of the gateway's link to external ``name`` (``vx<index>``)."""
        return f"vx{self.external_index(name)}"

    def masquerades(self, dst: IPv4Address | str) -> bool:
        """Whether pod traffic to ``dst`` leaving its node is masqueraded."""
        addr = IPv4Address(dst)
        return not any(addr in net for net in self.non_masquerade)


def example_topology(
    prefix: str = DEFAULT_PREFIX,
    *,
    intranet_return_route: bool = True,
) -> Topology:
    """The small reference replica used by the tests and the calibration runs.

    Two nodes on LAN 198.18.100.0/24 (gateway .1, nodes .11/.12); pod CIDR
    198.18.0.0/22 with a /24 per node; pods ``pod-a``, ``pod-b`` on ``node1`` and
    ``pod-c`` on ``node2``. ``non_masquerade`` is 198.18.0.0/16 (the
    "private" range of this miniature world, like 10.0.0.0/8 in a real VPC),
    so traffic to the externals is:

    * ``internet`` 198.19.200.10: outside the range, masqueraded to the node
      address;
    * ``intranet`` 198.18.200.10: inside the range, keeps the pod address and
      has a return route to the pod CIDR (if ``intranet_return_route``);
    * ``island`` 198.18.201.10: inside the range but *without* a return route,
      so its replies to pods are lost.

    Parameters
    ----------
    prefix : str, default "pns-"
        Namespace prefix.
    intranet_return_route : bool, default True
        Whether ``intranet`` gets a route back to the pod CIDR.

    Returns
    -------
    Topology
        The validated topology.
    """
    return Topology(
        prefix=prefix,
        nodes=(
            NodeSpec("node1", IPv4Interface("198.18.100.11/24"), IPv4Network("198.18.0.0/24")),
            NodeSpec("node2", IPv4Interface("198.18.100.12/24"), IPv4Network("198.18.1.0/24")),
        ),
        pods=(
            PodSpec("pod-a", "node1", IPv4Interface("198.18.0.10/24")),
            PodSpec("pod-b", "node1", IPv4Interface("198.18.0.11/24")),
            PodSpec("pod-c", "node2", IPv4Interface("198.18.1.10/24")),
        ),
        externals=(
            ExternalSpec("internet", IPv4Interface("198.19.200.10/24"), True),
            ExternalSpec("intranet", IPv4Interface("198.18.200.10/24"), intranet_return_route),
            ExternalSpec("island", IPv4Interface("198.18.201.10/24"), False),
        ),
        gateway=GatewaySpec(IPv4Interface("198.18.100.1/24")),
        node_lan=IPv4Network("198.18.100.0/24"),
        pod_cidr=IPv4Network("198.18.0.0/22"),
        non_masquerade=(IPv4Network("198.18.0.0/16"),),
    )
