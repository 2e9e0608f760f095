"""Load, build and verify the replica of a scenario.

:func:`load_replica` reads a scenario (with ``--set``-style overrides), builds
its model cluster and renders it (:mod:`sim.testbed.render`). :func:`build`
runs the rendered commands; :func:`verify` checks that what exists under the
prefix is this scenario's replica (namespaces, addresses and every route of
the main tables), so a measurement is never taken on anything else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.control.cluster import build_cluster
from sim.spec.load import load_scenario
from sim.testbed import netns
from sim.testbed.probe import observe
from sim.testbed.render import DEFAULT_PREFIX, Replica, render

SETTLE_TIMEOUT_S = 3.0
"""Longest wait for one first contact while the replica settles, seconds."""


def load_replica(
    scenario: str | Path, overrides: dict[str, Any] | None = None, prefix: str = DEFAULT_PREFIX
) -> Replica:
    """Load a scenario file and render its replica (no root needed).

    Raises
    ------
    sim.errors.UserError
        For a bad scenario, one that cannot be mapped, or a bad prefix.
    """
    scn = load_scenario(scenario, overrides)
    return render(build_cluster(scn, str(scenario)), prefix)


def build(replica: Replica, *, replace: bool = False) -> list[str]:
    """Create the replica (see :func:`sim.testbed.netns.up`), then let it settle.

    Returns the namespaces.
    """
    made = netns.up(replica, replace=replace)
    settle(replica)
    return made


def settle(replica: Replica, timeout_s: float = SETTLE_TIMEOUT_S) -> list[str]:
    """Make first contact on every link-local hop before anything is measured.

    In a freshly built replica the first request over a new veth is often lost
    (seen on this machine: a pod answering *port unreachable*, or its reply
    waiting for the neighbour table's 1 s retransmit, ``retrans_time_ms`` in the
    kernel's ``ip-sysctl.rst``), which would read as a lost request. Each node
    greets its own pods and the other nodes with the SNAT probe until they answer
    (at most ``timeout_s`` each), so every neighbour entry a measurement needs
    on those segments is resolved.

    Returns
    -------
    list of str
        The ``node -> endpoint`` contacts that never answered (empty: settled).
    """
    cl, silent = replica.cluster, []
    for node in cl.nodes:
        peers = [p.name for p in cl.plan.pods if p.node == node]
        peers += [n for n in cl.nodes if n != node]
        for peer in peers:
            res = observe(
                replica.namespace(node),
                [replica.namespace(peer)],
                str(replica.address(peer)),
                port=0,
                hello_timeout_s=timeout_s,
            )
            if res["seen_source"] is None:
                silent.append(f"{node} -> {peer}")
    return silent


def verify(replica: Replica) -> list[str]:
    """Differences between the running replica and the rendered one (empty: it matches).

    Checks the set of namespaces, every rendered address (device and prefix)
    and the destinations of every main routing table, e.g. an external host's
    route back to the pod range exists exactly when the scenario says so.
    """
    have = netns.list_namespaces(replica.prefix)
    want = sorted(ns.name for ns in replica.namespaces)
    if have != want:
        missing, extra = sorted(set(want) - set(have)), sorted(set(have) - set(want))
        return [f"namespaces differ: missing {missing}, unexpected {extra}"]
    st = netns.status(replica.prefix)
    problems = []
    for ns in replica.namespaces:
        links = {link["name"]: link["addresses"] for link in st[ns.name]["links"]}
        for dev, addr in ns.addresses:
            if links.get(dev) != [addr]:
                problems.append(
                    f"{ns.name} {dev} has {links.get(dev) or 'no address'}, expected {addr}"
                )
        if sorted(st[ns.name]["routes"]) != sorted(ns.routes):
            problems.append(
                f"{ns.name} ({ns.role}) has routes to {sorted(st[ns.name]['routes'])}, "
                f"expected {sorted(ns.routes)}"
            )
    return problems
