"""The cluster: addresses, routing tables and masquerade rules built from a scenario.

This is the *builder* side (cf. ns-3 helpers): it calls the routing and NAT
models' public methods; the models never import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path

from sim.control.addressing import AddressPlan, HostAddr, NodeAddr, PodAddr, allocate
from sim.control.nat import MasqueradeRule
from sim.control.routing import Route, RoutingTable
from sim.spec.load import load_scenario
from sim.spec.scenario import Scenario

DEFAULT_ROUTE = IPv4Network("0.0.0.0/0")
LOOPBACK = IPv4Network("127.0.0.0/8")


@dataclass
class Cluster:
    """A built cluster: the address plan, every routing table and the NAT rules.

    The name lookups (``nodes``, ``pods``, ``hosts``) are built once, on first
    use: the plan is never changed after :func:`build_cluster`, and rebuilding
    a dict per lookup made ``check`` quadratic in the number of pods.

    Attributes
    ----------
    scenario : Scenario
        The spec it was built from (never mutated).
    file : str
        Source file name, for messages.
    plan : AddressPlan
        Every address.
    tables : dict of str to RoutingTable
        Keyed ``pod:NAME``, ``node:NAME``, ``gateway``, ``host:NAME``.
    masquerade : dict of str to MasqueradeRule
        One rule per node.
    """

    scenario: Scenario
    file: str
    plan: AddressPlan
    tables: dict[str, RoutingTable] = field(default_factory=dict)
    masquerade: dict[str, MasqueradeRule] = field(default_factory=dict)

    @cached_property
    def nodes(self) -> dict[str, NodeAddr]:
        """Nodes by name."""
        return {n.name: n for n in self.plan.nodes}

    @cached_property
    def pods(self) -> dict[str, PodAddr]:
        """Pods by name."""
        return {p.name: p for p in self.plan.pods}

    @cached_property
    def hosts(self) -> dict[str, HostAddr]:
        """External hosts by name."""
        return {h.name: h for h in self.plan.hosts}

    @cached_property
    def owners(self) -> dict[IPv4Address, tuple[str, ...]]:
        """Endpoint names by address, pods first, then nodes, hosts and the gateway."""
        out: dict[IPv4Address, list[str]] = {}
        for e in (*self.plan.pods, *self.plan.nodes, *self.plan.hosts):
            out.setdefault(e.address, []).append(e.name)
        out.setdefault(self.plan.gateway_address, []).append("gateway")
        return {a: tuple(names) for a, names in out.items()}

    @property
    def diagnostics(self) -> tuple[str, ...]:
        """Warnings about the cluster (e.g. ambiguous pod addressing)."""
        return self.plan.diagnostics

    def describe(self) -> list[str]:
        """Return the address plan, routing tables and NAT rules as text lines."""
        p = self.plan
        out = [
            f"scenario {self.scenario.name!r} ({self.file})",
            f"node network {p.node_network}, gateway {p.gateway_address}",
            f"pod range {p.pod_range} ({self.scenario.pod_network.mode})",
            "",
            "nodes:",
        ]
        for n in p.nodes:
            out.append(
                f"  {n.name}: eth0 {n.address}, pod subnet {n.pod_subnet}, "
                f"{n.bridge} {n.bridge_address}"
            )
            for pod in (self.pods[x] for x in n.pods):
                cs = ", ".join(
                    c.name + (f" ({', '.join(map(str, c.ports))})" if c.ports else "")
                    for c in pod.containers
                )
                out.append(f"    pod {pod.name}: {pod.address}  containers: {cs}")
        if p.hosts:
            out.append("external hosts:")
            for h in p.hosts:
                rr = "with" if h.return_route_to_pods else "WITHOUT"
                out.append(f"  {h.name}: {h.address} ({rr} a return route to the pod range)")
        out.append("")
        out.append("routing tables:")
        for owner, table in self.tables.items():
            out.append(f"  {owner}:")
            out.extend(f"    {line}" for line in table.lines())
        out.append("")
        out.append("masquerade (SNAT) rules:")
        out.extend(f"  {r}" for r in self.masquerade.values())
        if self.diagnostics:
            out.append("")
            out.extend(f"WARNING: {d}" for d in self.diagnostics)
        return out


def build_cluster(scn: Scenario, file: str = "<scenario>") -> Cluster:
    """Allocate addresses and install every route and masquerade rule of ``scn``."""
    plan = allocate(scn, file)
    cl = Cluster(scenario=scn, file=file, plan=plan)
    ambiguous = bool(plan.diagnostics) and scn.pod_network.mode == "docker-default"
    net, gw = plan.node_network, plan.gateway_address
    for pod in plan.pods:
        node = cl.nodes[pod.node]
        t = RoutingTable(f"pod:{pod.name}")
        t.add(Route(LOOPBACK, "lo", note="loopback, shared by the pod's containers"))
        t.add(Route(IPv4Network((pod.address, 32)), "lo", note="the pod's own address"))
        t.add(Route(node.pod_subnet, "eth0", note="pods on the same node, via the bridge"))
        t.add(Route(DEFAULT_ROUTE, "eth0", via=node.bridge_address, note="bridge is the gateway"))
        cl.tables[t.owner] = t
    for node in plan.nodes:
        t = RoutingTable(f"node:{node.name}")
        t.add(Route(node.pod_subnet, node.bridge, note="local pods, route made with the bridge"))
        t.add(Route(net, "eth0", note="node network"))
        t.add(Route(DEFAULT_ROUTE, "eth0", via=gw, note="default via the gateway"))
        cl.tables[t.owner] = t
        cl.masquerade[node.name] = MasqueradeRule(
            node=node.name,
            source=node.pod_subnet,
            out_dev="eth0",
            to_address=node.address,
            non_masquerade=scn.masquerade.non_masquerade_cidrs,
        )
    g = RoutingTable("gateway")
    g.add(Route(net, "lan", note="node network"))
    if not ambiguous:
        for node in plan.nodes:
            g.add(
                Route(
                    node.pod_subnet,
                    "lan",
                    via=node.address,
                    note=f"{node.name}'s pod subnet via {node.name}",
                )
            )
    for h in plan.hosts:
        g.add(Route(IPv4Network((h.address, 32)), f"ext-{h.name}", note=f"external {h.name}"))
    cl.tables["gateway"] = g
    for h in plan.hosts:
        t = RoutingTable(f"host:{h.name}")
        t.add(Route(IPv4Network((h.address, 32)), "lo", note="own address"))
        t.add(Route(net, "eth0", via=gw, note="node network via the cluster gateway"))
        if h.return_route_to_pods:
            t.add(Route(plan.pod_range, "eth0", via=gw, note="return route to the pod range"))
        cl.tables[t.owner] = t
    return cl


def load_cluster(path: str | Path, overrides: dict | None = None) -> Cluster:
    """Load a scenario file (with optional dotted ``overrides``) and build its cluster."""
    return build_cluster(load_scenario(path, overrides), str(path))


def owner_of(cl: Cluster, addr: IPv4Address) -> list[str]:
    """Names of every endpoint that owns ``addr`` (several in docker-default mode)."""
    return list(cl.owners.get(addr, ()))
