"""What is measured on the replica, and what the model says about each.

* **RTT cases** (:data:`CASES`): two containers of a pod over localhost, pod
  to pod on one node and across nodes, pod to an external host inside and
  outside the non-masquerade range. The endpoints are chosen from the
  *model's* resolved paths (:func:`rtt_cases`).
* **Endpoint pairs** (:func:`endpoint_pairs`): every ordered pair of pods and
  external hosts (optionally nodes) plus the containers of each pod; each gets
  the model's verdict (:func:`model_outcome`): outcome and the source address
  the receiver sees, the proof of SNAT or its absence.
"""

from __future__ import annotations

from dataclasses import dataclass
from ipaddress import IPv4Address

from sim.control.cluster import Cluster
from sim.control.resolve import resolve, resolve_reply

CASE_TITLES = {
    "localhost": "two containers of one pod over localhost",
    "same_node": "pod to pod on the same node",
    "cross_node": "pod to pod on another node",
    "ext_nomasq": "pod to external host inside the non-masquerade range",
    "ext_masq": "pod to external host outside the non-masquerade range (SNAT)",
}
CASES = tuple(CASE_TITLES)
"""RTT cases, in the order they are measured."""


@dataclass(frozen=True)
class ModelOutcome:
    """The model's verdict on a request and its reply.

    Attributes
    ----------
    outcome : str
        ``round trip``, ``reply lost``, ``request lost`` or ``misdelivered``
        (another endpoint owns the address: docker-default).
    seen_source : str or None
        Scenario address the receiver sees (``None`` if the request is lost).
    delivered_to : str or None
        Who received the request.
    snat : bool
        A pod sender is seen with a node address.
    reason : str
        Why something is lost or misdelivered.
    """

    outcome: str
    seen_source: str | None
    delivered_to: str | None
    snat: bool
    reason: str


def model_outcome(cl: Cluster, src: str, dst: str) -> ModelOutcome:
    """Return the model's verdict on a request ``src -> dst`` and its reply."""
    fwd = resolve(cl, src, dst)
    rep = resolve_reply(cl, fwd)
    seen = None if fwd.verdict == "dropped" else fwd.seen_src
    if fwd.verdict == "dropped":
        outcome, reason = "request lost", fwd.reason
    elif fwd.verdict == "misdelivered":
        outcome, reason = "misdelivered", fwd.reason
    elif rep.verdict != "delivered":
        outcome, reason = "reply lost", rep.reason
    else:
        outcome, reason = "round trip", ""
    to = fwd.delivered_to if seen is not None else None
    snat = snat_seen(cl, fwd.src.name, seen)
    return ModelOutcome(outcome, None if seen is None else str(seen), to, snat, reason)


def snat_seen(cl: Cluster, src: str, seen: IPv4Address | str | None) -> bool:
    """Tell whether a receiver seeing ``seen`` from ``src`` saw SNAT.

    It did when ``src`` is a pod (or one of its containers) and ``seen`` (a
    scenario address) is a node's address: the node masqueraded the pod.
    """
    nodes = {n.address for n in cl.plan.nodes}
    return seen is not None and src.split("/")[0] in cl.pods and IPv4Address(seen) in nodes


def rtt_cases(cl: Cluster) -> dict[str, tuple[str, str]]:
    """``{case: (src, dst)}`` for the cases the scenario offers, in :data:`CASES` order.

    One source pod serves every case: the first with a pod on its node and one
    on another node (else the first pod). ``localhost`` uses two containers of
    a pod; ``ext_nomasq`` is the first external host reached without SNAT (with
    a working reply path if any), ``ext_masq`` the first reached with SNAT.
    """
    pods = list(cl.plan.pods)
    if not pods:
        return {}

    def peers(p, same: bool) -> list[str]:
        return [q.name for q in pods if q.name != p.name and (q.node == p.node) == same]

    src = next((p for p in pods if peers(p, True) and peers(p, False)), pods[0])
    lp = next((p for p in [src, *pods] if len(p.containers) >= 2), src)
    c = lp.containers
    out = {"localhost": (f"{lp.name}/{c[0].name}", f"{lp.name}/{c[min(1, len(c) - 1)].name}")}
    for case, same in (("same_node", True), ("cross_node", False)):
        if peers(src, same):
            out[case] = (src.name, peers(src, same)[0])
    verdicts = {h.name: model_outcome(cl, src.name, h.name) for h in cl.plan.hosts}
    masq = [h for h, m in verdicts.items() if m.snat and m.outcome != "request lost"]
    plain = [
        h for h, m in verdicts.items() if not m.snat and m.outcome in ("round trip", "reply lost")
    ]
    plain.sort(key=lambda h: verdicts[h].outcome != "round trip")
    if plain:
        out["ext_nomasq"] = (src.name, plain[0])
    if masq:
        out["ext_masq"] = (src.name, masq[0])
    return out


def endpoint_pairs(cl: Cluster, *, include_nodes: bool = False) -> list[tuple[str, str]]:
    """Every ordered endpoint pair whose verdict is checked.

    Container pairs of each multi-container pod first, then every ordered
    pair of distinct pods, external hosts (and nodes with ``include_nodes``).
    """
    out: list[tuple[str, str]] = []
    for p in cl.plan.pods:
        names = [f"{p.name}/{c.name}" for c in p.containers]
        out += [(a, b) for a in names for b in names if a != b]
    eps = [p.name for p in cl.plan.pods] + [h.name for h in cl.plan.hosts]
    eps += [n.name for n in cl.plan.nodes] if include_nodes else []
    return out + [(a, b) for a in eps for b in eps if a != b]
