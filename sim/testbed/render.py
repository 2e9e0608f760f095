"""Render a scenario's control plane into the commands that build its replica.

One cluster model: the :class:`~sim.control.cluster.Cluster` (addresses,
routing tables, masquerade rules) is rendered, through the address mapping of
:mod:`sim.testbed.mapping`, into

* one ``ip -batch`` script per namespace (links, addresses, and the routes of
  the cluster's table for that device, one ``route add`` per model route);
* one ``nft -f`` ruleset per node (the node's masquerade rule);
* the sysctls of each namespace (forwarding on nodes and the gateway).

Addresses are added with ``noprefixroute``, so the kernel's main routing table
of each namespace holds exactly the model's routes (routes on ``lo`` are the
kernel's own local table). Nothing here needs root: ``podnetsim testbed up
--dry-run`` prints :meth:`Replica.text`, and :mod:`sim.testbed.netns` runs
:attr:`Replica.steps`.

The replica's build (namespaces joined by veth pairs, a LAN namespace whose
bridge stands for the node network) decides what each model station costs in
kernel work: :data:`COMPOSITION`, checked against the rendered scripts by
``tests/testbed/test_render.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from ipaddress import IPv4Address, IPv4Network, collapse_addresses

from sim.control.cluster import Cluster
from sim.testbed.errors import MappingError, TestbedError
from sim.testbed.mapping import AddressMapping, map_cluster

DEFAULT_PREFIX = "pns-"
"""Default prefix of every namespace the testbed creates."""

IFNAMSIZ = 15
"""Longest interface (and, here, namespace) name Linux accepts, characters."""

NFT_TABLE = "podnetsim"
"""The nftables table (family ``ip``) of each node namespace."""

ELEMENTS = ("veth", "bridge", "lan_bridge", "forward", "gateway", "nat")
"""Kinds of kernel work in the replica, each fitted as one cost per packet (us)."""

COMPOSITION: dict[str, dict[str, int]] = {
    "veth": {"veth": 1},  # pod eth0 <-> vpN on the node bridge: one veth crossing
    "bridge": {"bridge": 1},  # the node bridge (cbr0/docker0)
    "forward": {"forward": 1},  # a node's IP forwarding and netfilter
    "gateway": {"gateway": 1},  # the gateway's IP forwarding
    "eth0_tx": {"veth": 2, "lan_bridge": 1},  # node eth0 -> vnN, br0, vg0 -> gateway
    "eth0_rx": {"veth": 1, "lan_bridge": 1},  # ... br0, vnN -> node eth0
    "gateway_link": {"veth": 1},  # gateway eth0 -> vg0 (LAN) or vxN -> host eth0
    "external_link": {"veth": 1},  # host eth0 -> vxN
}
"""Each model station kind as a sum of :data:`ELEMENTS` (``loopback`` is not built)."""

_PREFIX_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*-$")
_BASE_SYSCTLS = (
    ("net.ipv4.conf.all.rp_filter", "0"),
    ("net.ipv4.conf.default.rp_filter", "0"),
    ("net.ipv4.conf.all.accept_redirects", "0"),
    ("net.ipv4.conf.default.accept_redirects", "0"),
    ("net.ipv6.conf.all.disable_ipv6", "1"),
    ("net.ipv6.conf.default.disable_ipv6", "1"),
)
_FORWARD_SYSCTLS = (
    ("net.ipv4.ip_forward", "1"),
    ("net.ipv4.conf.all.send_redirects", "0"),
    ("net.ipv4.conf.default.send_redirects", "0"),
)


def check_prefix(prefix: str) -> str:
    """Return ``prefix`` if it is lower-case dash-separated words ending in ``-``.

    Raises
    ------
    TestbedError
        If it is malformed or leaves no room for suffixes in 15 characters.
    """
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise TestbedError(
            f"prefix {prefix!r} is invalid",
            field="--prefix",
            fix="use lower-case letters and digits in dash-separated words ending with '-', "
            "e.g. 'pns-'",
        )
    if len(prefix) > IFNAMSIZ - 3:
        raise TestbedError(
            f"prefix {prefix!r} is {len(prefix)} characters",
            field="--prefix",
            fix=f"use at most {IFNAMSIZ - 3} characters",
        )
    return prefix


@dataclass(frozen=True)
class Step:
    """One command of the build: ``argv`` with ``stdin`` (or ``None``)."""

    argv: tuple[str, ...]
    stdin: str | None = None
    title: str = ""

    def text(self) -> str:
        """Return the command as a shell line (with a here-document for its input)."""
        head = (f"# {self.title}\n" if self.title else "") + " ".join(self.argv)
        return head if self.stdin is None else f"{head} <<'EOF'\n{self.stdin}EOF"


@dataclass(frozen=True)
class Namespace:
    """One namespace of the replica, as rendered.

    Attributes
    ----------
    name : str
        Kernel name (``PREFIX`` + ``p0``, ``n1``, ``gw``, ``lan``, ``x0``).
    role : str
        ``pod web``, ``node node1``, ``gateway``, ``lan`` or ``host internet``.
    script : tuple of str
        The ``ip -batch`` lines.
    forwarding : bool
        Whether it forwards IP packets (nodes, the gateway).
    ruleset : str or None
        The ``nft -f`` ruleset (nodes only).
    addresses : tuple of (str, str)
        ``(device, "a.b.c.d/len")`` pairs it must carry.
    routes : tuple of str
        Destinations of its main routing table (``default`` or a CIDR).
    """

    name: str
    role: str
    script: tuple[str, ...]
    forwarding: bool = False
    ruleset: str | None = None
    addresses: tuple[tuple[str, str], ...] = ()
    routes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Replica:
    """A scenario's cluster, its address mapping and its rendered namespaces.

    Attributes
    ----------
    cluster : Cluster
        The model (scenario addresses).
    mapping : AddressMapping
        Scenario -> replica addresses.
    prefix : str
        Namespace prefix.
    namespaces : tuple of Namespace
        In build order (pods, nodes, gateway, LAN, hosts).
    owners : dict of str to str
        Endpoint name (pod, node, host, ``gateway``, ``lan``) -> namespace.
    """

    cluster: Cluster
    mapping: AddressMapping
    prefix: str
    namespaces: tuple[Namespace, ...]
    owners: dict[str, str]

    def namespace(self, endpoint: str) -> str:
        """Namespace of a pod, ``pod/container``, node, host, ``gateway`` or ``lan``."""
        try:
            return self.owners[endpoint.split("/", 1)[0]]
        except KeyError:
            raise self._unknown(endpoint) from None

    def _unknown(self, endpoint: str) -> MappingError:
        return MappingError(
            f"unknown endpoint {endpoint!r}",
            file=self.cluster.file,
            fix="name a pod, pod/container, node or external host of the scenario",
        )

    def address(self, endpoint: str) -> IPv4Address:
        """Replica address of a pod (or container), node or external host."""
        cl, name = self.cluster, endpoint.split("/", 1)[0]
        for table in (cl.pods, cl.nodes, cl.hosts):
            if name in table:
                return self.mapping.address(table[name].address)
        raise self._unknown(endpoint)

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every command of the build, in order."""
        add = "".join(f"netns add {ns.name}\n" for ns in self.namespaces)
        out = [Step(("ip", "-batch", "-"), add, "the namespaces")]
        for ns in self.namespaces:
            keys = _BASE_SYSCTLS + (_FORWARD_SYSCTLS if ns.forwarding else ())
            argv = ("ip", "netns", "exec", ns.name, "sysctl", "-q", "-e", "-w")
            out.append(Step(argv + tuple(f"{k}={v}" for k, v in keys)))
        for ns in self.namespaces:
            body = "".join(line + "\n" for line in ns.script)
            out.append(Step(("ip", "-n", ns.name, "-batch", "-"), body, f"{ns.name}: {ns.role}"))
        for ns in self.namespaces:
            if ns.ruleset is not None:
                argv = ("ip", "netns", "exec", ns.name, "nft", "-f", "-")
                out.append(Step(argv, ns.ruleset, f"{ns.name}: masquerade"))
        return tuple(out)

    def text(self) -> str:
        """Return the build as a shell script (what ``testbed up --dry-run`` prints)."""
        head = f"# replica of scenario {self.cluster.scenario.name!r}, prefix {self.prefix!r}\n"
        return head + "\n".join(step.text() for step in self.steps) + "\n"


def _ruleset(cl: Cluster, m: AddressMapping, node: str) -> str:
    """Return the node's masquerade rule as an nftables ruleset (ip-masq-agent's rule)."""
    rule = cl.masquerade[node]
    # the mapping merged the rule's CIDRs (only their union decides) and gave each an image
    keep = list(collapse_addresses(m.replica_non_masquerade))
    elements = f"    elements = {{ {', '.join(map(str, keep))} }}\n" if keep else ""
    return (
        f"table ip {NFT_TABLE} {{\n  set non_masquerade {{\n"
        f"    type ipv4_addr; flags interval;\n{elements}  }}\n"
        "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n"
        f'    ip saddr {m.network(rule.source)} oifname "{rule.out_dev}" '
        "ip daddr != @non_masquerade masquerade\n  }\n}\n"
    )


def _routes(
    routes: list, m: AddressMapping, devs: dict[str, str], nets: list[IPv4Network]
) -> Iterator[tuple[str, str]]:
    """``(destination, ip -batch line)`` for each model route not on ``lo``."""
    for r in routes:
        if r.dev == "lo":
            continue
        dest = "default" if r.dest.prefixlen == 0 else str(m.network(r.dest))
        line = f"route add {dest}"
        if r.via is not None:
            via = m.address(r.via)
            onlink = "" if any(via in n for n in nets) else " onlink"
            line += f" via {via} dev {devs.get(r.dev, r.dev)}{onlink}"
        else:
            line += f" dev {devs.get(r.dev, r.dev)}"
        yield dest, line


def _with_routes(ns: Namespace, table, m: AddressMapping, devs: dict[str, str]) -> Namespace:
    nets = [IPv4Network(a, strict=False) for _, a in ns.addresses]
    rendered = list(_routes(table.routes, m, devs, nets))
    script = ns.script + tuple(line for _, line in rendered)
    return replace(ns, script=script, routes=tuple(d for d, _ in rendered))


def _addr(dev: str, addr: IPv4Address, plen: int) -> tuple[str, str]:
    return dev, f"{addr}/{plen}"


def _addr_lines(addresses: tuple[tuple[str, str], ...]) -> list[str]:
    out = []
    for dev, a in addresses:
        out += [f"address add {a} dev {dev} noprefixroute", f"link set {dev} up"]
    return out


def _pods(cl: Cluster, m: AddressMapping, ns: dict[str, str]) -> list[Namespace]:
    out = []
    for i, pod in enumerate(cl.plan.pods):
        node = cl.nodes[pod.node]
        addrs = (_addr("eth0", m.address(pod.address), node.pod_subnet.prefixlen),)
        script = ["link set lo up", f"link add eth0 type veth peer name vp{i} netns {ns[pod.node]}"]
        base = Namespace(
            ns[pod.name], f"pod {pod.name}", (*script, *_addr_lines(addrs)), addresses=addrs
        )
        out.append(_with_routes(base, cl.tables[f"pod:{pod.name}"], m, {}))
    return out


def _nodes(cl: Cluster, m: AddressMapping, ns: dict[str, str]) -> list[Namespace]:
    out, net = [], cl.plan.node_network
    pod_index = {p.name: i for i, p in enumerate(cl.plan.pods)}
    for j, node in enumerate(cl.plan.nodes):
        br = node.bridge
        addrs = (
            _addr(br, m.address(node.bridge_address), node.pod_subnet.prefixlen),
            _addr("eth0", m.address(node.address), net.prefixlen),
        )
        script = [
            "link set lo up",
            f"link add {br} type bridge",
            *_addr_lines(addrs[:1]),
            *(f"link set vp{pod_index[p]} master {br} up" for p in node.pods),
            f"link add eth0 type veth peer name vn{j} netns {ns['lan']}",
            *_addr_lines(addrs[1:]),
        ]
        base = Namespace(
            ns[node.name],
            f"node {node.name}",
            tuple(script),
            True,
            _ruleset(cl, m, node.name),
            addrs,
        )
        out.append(_with_routes(base, cl.tables[f"node:{node.name}"], m, {}))
    return out


def _gateway_lan_hosts(cl: Cluster, m: AddressMapping, ns: dict[str, str]) -> list[Namespace]:
    plan = cl.plan
    addrs = (_addr("eth0", m.address(plan.gateway_address), plan.node_network.prefixlen),)
    script = ["link set lo up", f"link add eth0 type veth peer name vg0 netns {ns['lan']}"]
    script += _addr_lines(addrs)
    devs = {"lan": "eth0"}
    for k, h in enumerate(plan.hosts):
        script += [
            f"link add vx{k} type veth peer name eth0 netns {ns[h.name]}",
            f"link set vx{k} up",
        ]
        devs[f"ext-{h.name}"] = f"vx{k}"
    gw = Namespace(ns["gateway"], "gateway", tuple(script), True, addresses=addrs)
    ports = ["vg0", *(f"vn{j}" for j in range(len(plan.nodes)))]
    lan = ["link set lo up", "link add br0 type bridge", "link set br0 up"]
    lan += [f"link set {p} master br0 up" for p in ports]
    out = [_with_routes(gw, cl.tables["gateway"], m, devs), Namespace(ns["lan"], "lan", tuple(lan))]
    for h in plan.hosts:
        addrs = (_addr("eth0", m.address(h.address), 32),)
        base = Namespace(
            ns[h.name], f"host {h.name}", ("link set lo up", *_addr_lines(addrs)), addresses=addrs
        )
        out.append(_with_routes(base, cl.tables[f"host:{h.name}"], m, {}))
    return out


def render(cl: Cluster, prefix: str = DEFAULT_PREFIX) -> Replica:
    """Render ``cl`` into the namespaces and commands of its replica.

    Parameters
    ----------
    cl : Cluster
        The model cluster.
    prefix : str, default "pns-"
        Namespace prefix (:func:`check_prefix`).

    Returns
    -------
    Replica
        Cluster, mapping, rendered namespaces and endpoint owners.

    Raises
    ------
    MappingError
        If the scenario's networks cannot be mapped into 198.18.0.0/15.
    TestbedError
        If the prefix is malformed or too long for the namespace names.
    """
    check_prefix(prefix)
    plan = cl.plan
    owners = {"lan": f"{prefix}lan", "gateway": f"{prefix}gw"}
    owners.update({n.name: f"{prefix}n{j}" for j, n in enumerate(plan.nodes)})
    owners.update({p.name: f"{prefix}p{i}" for i, p in enumerate(plan.pods)})
    owners.update({h.name: f"{prefix}x{k}" for k, h in enumerate(plan.hosts)})
    longest = max(len(v) for v in owners.values())
    if longest > IFNAMSIZ:
        raise TestbedError(
            f"prefix {prefix!r} is too long for this scenario: namespace names would have "
            f"{longest} characters (Linux allows {IFNAMSIZ})",
            field="--prefix",
            fix=f"use a prefix of at most {len(prefix) - longest + IFNAMSIZ} characters",
        )
    m = map_cluster(cl)
    namespaces = _pods(cl, m, owners) + _nodes(cl, m, owners) + _gateway_lan_hosts(cl, m, owners)
    return Replica(cl, m, prefix, tuple(namespaces), owners)
