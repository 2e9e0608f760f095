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
from sim.testbed.render import DEFAULT_PREFIX, Replica, render

__all__ = ["build", "load_replica", "verify"]


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
    """Create the replica (see :func:`sim.testbed.netns.up`); returns the namespaces."""
    return netns.up(replica, replace=replace)


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
