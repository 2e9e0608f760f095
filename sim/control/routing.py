"""Routing tables with longest-prefix match and an explicit miss.

Lookup rule (as Linux and ns-3's ``Ipv4StaticRouting::LookupStatic``): among the
routes whose destination contains the address, the longest prefix wins; on equal
prefixes the lower metric wins; on equal metrics the route installed first wins.
A miss returns ``None``, which the resolver turns into a "no route" drop.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True)
class Route:
    """One route.

    Attributes
    ----------
    dest : IPv4Network
        Destination prefix.
    dev : str
        Outgoing interface.
    via : IPv4Address or None
        Next-hop router; None for directly connected destinations.
    metric : int
        Preference among equal prefixes (lower wins).
    note : str
        Why the route exists (shown by ``podnetsim check``).
    """

    dest: IPv4Network
    dev: str
    via: IPv4Address | None = None
    metric: int = 0
    note: str = ""

    def __str__(self) -> str:
        """Return the route as one line in ``ip route`` style."""
        dest = "default" if self.dest.prefixlen == 0 else str(self.dest)
        via = f" via {self.via}" if self.via is not None else ""
        metric = f" metric {self.metric}" if self.metric else ""
        return f"{dest}{via} dev {self.dev}{metric}"


@dataclass
class RoutingTable:
    """An ordered routing table of one device (pod, node, gateway, host)."""

    owner: str
    routes: list[Route] = field(default_factory=list)

    def add(self, route: Route) -> None:
        """Install ``route`` (after the existing ones; order breaks full ties)."""
        self.routes.append(route)

    def lookup(self, addr: IPv4Address) -> Route | None:
        """Longest-prefix match of ``addr``; ``None`` when no route matches."""
        best: Route | None = None
        for r in self.routes:
            if addr not in r.dest:
                continue
            if (
                best is None
                or r.dest.prefixlen > best.dest.prefixlen
                or (r.dest.prefixlen == best.dest.prefixlen and r.metric < best.metric)
            ):
                best = r
        return best

    def lines(self) -> list[str]:
        """Human-readable routes, one a line."""
        return [str(r) + (f"    # {r.note}" if r.note else "") for r in self.routes]
