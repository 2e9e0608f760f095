"""Masquerade (SNAT to the node IP) rules and connection tracking.

The article: traffic from a pod to any address in 10.0.0.0/8 keeps the pod IP;
everything else is masqueraded to the node's IP, and connection tracking
translates the replies back. ip-masq-agent makes the non-masquerade set a
parameter (:class:`sim.spec.scenario.Masquerade`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address, IPv4Network


@dataclass(frozen=True)
class MasqueradeRule:
    """``-s POD_RANGE ! -d NON_MASQ... -o eth0 -j MASQUERADE --to NODE_IP`` on one node.

    Attributes
    ----------
    node : str
        Node name.
    source : IPv4Network
        Pod addresses the rule applies to (the node's pod subnet).
    out_dev : str
        Egress interface the rule applies to (the node's eth0).
    to_address : IPv4Address
        The node IP packets are rewritten to.
    non_masquerade : tuple of IPv4Network
        Destinations that keep the pod source address.
    """

    node: str
    source: IPv4Network
    out_dev: str
    to_address: IPv4Address
    non_masquerade: tuple[IPv4Network, ...]

    def applies(self, src: IPv4Address, dst: IPv4Address, out_dev: str) -> bool:
        """Whether a packet ``src -> dst`` leaving by ``out_dev`` is masqueraded."""
        return (
            out_dev == self.out_dev
            and src in self.source
            and not any(dst in net for net in self.non_masquerade)
        )

    def __str__(self) -> str:
        """Return the rule as one line, like ``check`` prints it."""
        keep = ", ".join(str(n) for n in self.non_masquerade) or "nothing"
        return (
            f"{self.node}: SNAT {self.source} -> {self.to_address} on {self.out_dev}, "
            f"except to {keep}"
        )


@dataclass
class Conntrack:
    """Connection-tracking entries made by SNAT, keyed by the reply direction.

    A masqueraded packet ``pod -> remote`` rewritten to ``node -> remote`` records
    ``(remote, node) -> pod``: a reply ``remote -> node`` is translated back to
    ``remote -> pod``.
    """

    entries: dict[tuple[IPv4Address, IPv4Address], IPv4Address] = field(default_factory=dict)

    def record(self, orig_src: IPv4Address, new_src: IPv4Address, dst: IPv4Address) -> None:
        """Remember a SNAT of ``orig_src`` to ``new_src`` for traffic to ``dst``."""
        self.entries[(dst, new_src)] = orig_src

    def reply_target(self, src: IPv4Address, dst: IPv4Address) -> IPv4Address | None:
        """Original address for a reply ``src -> dst``, or None if not tracked."""
        return self.entries.get((src, dst))
