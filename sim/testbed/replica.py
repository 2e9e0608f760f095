"""Build, check and remove the replica of a scenario.

:func:`load_replica` reads a scenario (with ``--set``-style overrides), builds
its model cluster and maps it into 198.18.0.0/15
(:mod:`sim.testbed.mapping`). :func:`build` creates it with
:func:`sim.testbed.netns.up`; :func:`verify` checks that what exists under the
prefix is this scenario's replica (addresses and return routes), so a
measurement is never taken on a replica built from something else.
"""

from __future__ import annotations

import json
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from sim.control.cluster import build_cluster
from sim.spec.load import load_scenario
from sim.testbed import netns
from sim.testbed.errors import TestbedError
from sim.testbed.mapping import Replica, map_cluster
from sim.testbed.topology import DEFAULT_PREFIX

__all__ = ["build", "load_replica", "verify"]


def load_replica(
    scenario: str | Path, overrides: dict[str, Any] | None = None, prefix: str = DEFAULT_PREFIX
) -> Replica:
    """Load a scenario file and describe its replica.

    Parameters
    ----------
    scenario : str or Path
        Scenario TOML file.
    overrides : dict, optional
        Dotted overrides, as for :func:`sim.spec.load.load_scenario`.
    prefix : str, default "pns-"
        Namespace prefix of the replica.

    Returns
    -------
    Replica
        Cluster, address mapping and topology.

    Raises
    ------
    sim.errors.UserError
        For a bad scenario or one that cannot be mapped (one line, with a fix).
    """
    scn = load_scenario(scenario, overrides)
    cl = build_cluster(scn, str(scenario))
    return map_cluster(cl, prefix)


def build(replica: Replica, *, replace: bool = False) -> list[str]:
    """Create the replica's namespaces, links, routes and nftables rules.

    Parameters
    ----------
    replica : Replica
        What to build.
    replace : bool, default False
        Remove an existing replica with the same prefix first.

    Returns
    -------
    list of str
        The namespaces created.

    Raises
    ------
    TestbedError
        Missing privilege or tool, an existing replica (without ``replace``),
        or a failed command (the partial replica is removed first).
    """
    return netns.up(replica.topology, replace=replace)


def _routes(ns: str) -> list[IPv4Network]:
    out = netns.run(["ip", "-n", ns, "-j", "route", "show"])
    nets = []
    for r in json.loads(out or "[]"):
        dst = r.get("dst", "")
        if dst and dst != "default":
            nets.append(IPv4Network(dst if "/" in dst else f"{dst}/32"))
    return nets


def verify(replica: Replica) -> list[str]:
    """Differences between the running replica and ``replica``'s topology.

    Checks that exactly the expected namespaces exist, that pods, nodes,
    bridges, the gateway and external hosts carry their mapped addresses, and
    that each external host has its route back to the pod range exactly when
    the scenario says so.

    Parameters
    ----------
    replica : Replica
        The expected replica.

    Returns
    -------
    list of str
        One line per difference; empty when the replica matches.
    """
    topo = replica.topology
    have = netns.list_namespaces(topo.prefix)
    want = sorted(topo.namespaces())
    if have != want:
        missing = sorted(set(want) - set(have))
        extra = sorted(set(have) - set(want))
        return [f"namespaces differ: missing {missing}, unexpected {extra}"]
    st = netns.status(topo.prefix)

    def addrs(ns: str, dev: str) -> list[str]:
        for link in st.get(ns, {}).get("links", []):
            if link["name"] == dev:
                return link["addresses"]
        return []

    problems = []
    expect = [(topo.gateway_ns, "eth0", topo.gateway.lan_address)]
    for node in topo.nodes:
        ns = topo.node_ns(node.name)
        expect += [(ns, "eth0", node.lan_address), (ns, node.bridge_name, node.bridge_address)]
    expect += [(topo.pod_ns(p.name), "eth0", p.address) for p in topo.pods]
    expect += [(topo.external_ns(x.name), "eth0", x.address) for x in topo.externals]
    for ns, dev, iface in expect:
        got = addrs(ns, dev)
        if got != [str(iface)]:
            problems.append(f"{ns} {dev} has {got or 'no address'}, expected {iface}")
    for ext in topo.externals:
        ns = topo.external_ns(ext.name)
        try:
            has = topo.pod_cidr in _routes(ns)
        except (TestbedError, ValueError) as err:
            problems.append(f"{ns}: cannot read routes: {err}")
            continue
        if has != ext.return_route_to_pods:
            want_txt = "a" if ext.return_route_to_pods else "no"
            problems.append(
                f"external {ext.name} ({ns}) should have {want_txt} route to {topo.pod_cidr}"
            )
    return problems
