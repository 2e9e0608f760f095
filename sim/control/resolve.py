"""Route resolution: which stations a packet crosses, from the routing tables.

``resolve(cluster, src, dst)`` walks the packet through the model, step by step:
the sender's routing table picks an interface and next hop, the bridge switches
to the neighbour that owns that next hop, a node's IP stack de-NATs, routes and
masquerades, the LAN delivers to the owner of the next-hop address, the gateway
routes by longest prefix. Nothing here says "same-node = 3 hops": paths come only
from the tables built in :mod:`sim.control.cluster`.

Station names (also the data plane's queueing stations)::

    POD/lo                        loopback inside a pod's shared namespace
    NODE/veth-POD:from-pod        a pod's veth, pod -> bridge direction
    NODE/veth-POD:to-pod          a pod's veth, bridge -> pod direction
    NODE/cbr0 (or NODE/docker0)   the node bridge
    NODE/forward                  the node's IP forwarding + netfilter (NAT) stage
    NODE/eth0:tx, NODE/eth0:rx    the node NIC, transmit and receive
    gateway/forward               the gateway router
    gateway/lan:tx                gateway link onto the node network
    gateway/ext-HOST:tx           gateway link to an external host
    HOST/eth0:tx                  an external host's link to the gateway
"""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address

from sim.control.cluster import LOOPBACK, Cluster, owner_of
from sim.control.nat import Conntrack
from sim.errors import ResolveError

MAX_HOPS = 64

#: Station kinds; the data plane maps each to a :class:`~sim.spec.costs.Costs` field.
KINDS = (
    "loopback",
    "veth",
    "bridge",
    "forward",
    "eth0_tx",
    "eth0_rx",
    "gateway",
    "gateway_link",
    "external_link",
)


@dataclass(frozen=True)
class Endpoint:
    """A traffic endpoint.

    Attributes
    ----------
    kind : {"pod", "container", "node", "host"}
        What it is.
    name : str
        ``pod``, ``pod/container``, node or host name.
    address : IPv4Address
        Its IP (a container has its pod's IP).
    pod : str or None
        Pod name for pods and containers.
    """

    kind: str
    name: str
    address: IPv4Address
    pod: str | None = None


@dataclass(frozen=True)
class Hop:
    """One station crossed, with the addresses as the packet leaves it.

    Attributes
    ----------
    station : str
        Station name (see module docstring).
    kind : str
        Station kind, one of :data:`KINDS`.
    src, dst : IPv4Address
        Source and destination as the packet leaves the station.
    nat : bool
        True where the station rewrote an address (SNAT or de-NAT): it pays the
        conntrack/NAT cost.
    """

    station: str
    kind: str
    src: IPv4Address
    dst: IPv4Address
    nat: bool = False


@dataclass
class Route:
    """The result of a resolution.

    Attributes
    ----------
    src, dst : Endpoint
        Sender and intended receiver.
    hops : list of Hop
        Stations in order.
    verdict : {"delivered", "dropped", "misdelivered"}
        Outcome: delivered to ``dst``; dropped (``reason`` says why); or delivered
        to another endpoint (``delivered_to``) because addresses are ambiguous.
    reason : str
        Why it was dropped or misdelivered; empty when delivered.
    delivered_to : str or None
        Name of the endpoint that received the packet.
    conntrack : Conntrack
        Connection-tracking state after the packet (used to resolve replies).
    """

    src: Endpoint
    dst: Endpoint
    hops: list[Hop] = field(default_factory=list)
    verdict: str = "dropped"
    reason: str = ""
    delivered_to: str | None = None
    conntrack: Conntrack = field(default_factory=Conntrack)

    @property
    def seen_src(self) -> IPv4Address:
        """Source address as the receiver saw it (after any SNAT)."""
        return self.hops[-1].src if self.hops else self.src.address

    @property
    def seen_dst(self) -> IPv4Address:
        """Destination address as the receiver saw it."""
        return self.hops[-1].dst if self.hops else self.dst.address

    @property
    def stations(self) -> list[str]:
        """Station names in order."""
        return [h.station for h in self.hops]

    def to_dict(self) -> dict:
        """JSON-ready form: verdict, reason and hops with addresses."""
        return {
            "src": self.src.name,
            "dst": self.dst.name,
            "verdict": self.verdict,
            "reason": self.reason,
            "delivered_to": self.delivered_to,
            "hops": [
                {"station": h.station, "src": str(h.src), "dst": str(h.dst), "nat": h.nat}
                for h in self.hops
            ],
        }


def endpoint(cl: Cluster, text: str) -> Endpoint:
    """Parse an endpoint given as ``pod``, ``pod/container``, node, host or IP address.

    Raises
    ------
    ResolveError
        Unknown name, or an address nobody in the scenario owns / several own.
    """
    pods, nodes, hosts = cl.pods, cl.nodes, cl.hosts
    if "/" in text:
        pname, cname = text.split("/", 1)
        pod = pods.get(pname)
        if pod is None:
            raise ResolveError(
                f"unknown pod {pname!r} in endpoint {text!r}",
                file=cl.file,
                fix=f"use one of: {', '.join(sorted(pods)) or '(no pods)'}",
            )
        if cname not in {c.name for c in pod.containers}:
            raise ResolveError(
                f"pod {pname!r} has no container {cname!r}",
                file=cl.file,
                fix=f"use one of: {', '.join(c.name for c in pod.containers)}",
            )
        return Endpoint("container", text, pod.address, pname)
    if text in pods:
        return Endpoint("pod", text, pods[text].address, text)
    if text in nodes:
        return Endpoint("node", text, nodes[text].address)
    if text in hosts:
        return Endpoint("host", text, hosts[text].address)
    try:
        addr = IPv4Address(text)
    except AddressValueError:
        names = sorted([*pods, *nodes, *hosts])
        raise ResolveError(
            f"unknown endpoint {text!r}",
            file=cl.file,
            fix=f"name a pod, pod/container, node or external host ({', '.join(names)}) "
            "or give an IPv4 address",
        ) from None
    owners = owner_of(cl, addr)
    if len(owners) > 1:
        raise ResolveError(
            f"address {addr} is ambiguous: it belongs to {', '.join(owners)}",
            file=cl.file,
            fix="name the endpoint instead of giving its address",
        )
    if owners and owners[0] != "gateway":
        return endpoint(cl, owners[0])
    return Endpoint("address", str(addr), addr)


class _Walker:
    """Forwards one packet through the cluster's tables, recording hops."""

    def __init__(
        self, cl: Cluster, path: Route, src: IPv4Address, dst: IPv4Address, reply: bool = False
    ) -> None:
        self.cl = cl
        self.reply = reply  # a reply belongs to a tracked connection: never SNAT'd anew
        self.path = path
        self.src = src
        self.dst = dst
        self.ct = path.conntrack
        self.pods = cl.pods
        self.nodes = cl.nodes
        self.hosts = cl.hosts

    # -- helpers -------------------------------------------------------------------
    def hop(self, station: str, kind: str, nat: bool = False) -> None:
        if len(self.path.hops) >= MAX_HOPS:
            raise _Drop(f"more than {MAX_HOPS} hops (routing loop)")
        self.path.hops.append(Hop(station, kind, self.src, self.dst, nat))

    def arrive(self, name: str) -> None:
        """Record that the packet reached endpoint ``name`` addressed to it."""
        want = self.path.dst
        self.path.delivered_to = name
        if want.kind == "address" or name in (want.name, want.pod):
            self.path.verdict = "delivered"
            self.path.reason = ""
        else:
            self.path.verdict = "misdelivered"
            self.path.reason = (
                f"delivered to {name} ({self.dst}), not to {want.name}: the address is "
                "ambiguous across nodes"
            )

    # -- senders ---------------------------------------------------------------------
    def from_pod(self, pod_name: str) -> None:
        pod = self.pods[pod_name]
        node = self.nodes[pod.node]
        route = self.cl.tables[f"pod:{pod_name}"].lookup(self.dst)
        if route is None:
            raise _Drop(f"no route to {self.dst} in pod {pod_name}")
        if route.dev == "lo":
            self.hop(f"{pod_name}/lo", "loopback")
            self.arrive(pod_name)
            return
        self.hop(f"{node.name}/veth-{pod_name}:from-pod", "veth")
        self.bridge(node.name, route.via or self.dst)

    def from_node(self, node_name: str) -> None:
        self.node_ip(node_name, local_out=True)

    def from_host(self, host_name: str) -> None:
        route = self.cl.tables[f"host:{host_name}"].lookup(self.dst)
        if route is None:
            extra = ""
            host = self.hosts[host_name]
            if self.dst in self.cl.plan.pod_range and not host.return_route_to_pods:
                extra = " (its network has no return route to the pod range)"
            raise _Drop(f"no route to {self.dst} at {host_name}{extra}")
        if route.dev == "lo":
            raise _Drop(f"{host_name} sending to itself is not modelled")
        self.hop(f"{host_name}/eth0:tx", "external_link")
        self.gateway()

    # -- elements --------------------------------------------------------------------
    def bridge(self, node_name: str, next_hop: IPv4Address) -> None:
        node = self.nodes[node_name]
        self.hop(f"{node_name}/{node.bridge}", "bridge")
        if next_hop == node.bridge_address:
            self.node_ip(node_name)
            return
        for pname in node.pods:
            if self.pods[pname].address == next_hop:
                self.hop(f"{node_name}/veth-{pname}:to-pod", "veth")
                if self.dst == self.pods[pname].address:
                    self.arrive(pname)
                    return
                raise _Drop(f"pod {pname} does not forward packets for {self.dst}")
        raise _Drop(f"no neighbour {next_hop} on {node_name}/{node.bridge} (ARP unanswered)")

    def node_ip(self, node_name: str, local_out: bool = False) -> None:
        node = self.nodes[node_name]
        nat = False
        orig = self.ct.reply_target(self.src, self.dst)
        if orig is not None and not local_out and self.dst == node.address:
            # de-NAT of a reply, only on the node whose address the SNAT used
            self.dst = orig
            nat = True
        if self.dst in (node.address, node.bridge_address) and not local_out:
            self.hop(f"{node_name}/forward", "forward", nat)
            self.arrive(node_name)
            return
        route = self.cl.tables[f"node:{node_name}"].lookup(self.dst)
        if route is None:
            raise _Drop(f"no route to {self.dst} at {node_name}")
        rule = self.cl.masquerade[node_name]
        if not local_out and not self.reply and rule.applies(self.src, self.dst, route.dev):
            self.ct.record(self.src, rule.to_address, self.dst)
            self.src = rule.to_address
            nat = True
        if local_out and route.dev == node.bridge and self.src == node.address:
            # Linux picks the source of locally sent packets from the outgoing
            # interface: to its own pods a node speaks from the bridge address
            self.src = node.bridge_address
        self.hop(f"{node_name}/forward", "forward", nat)
        next_hop = route.via or self.dst
        if route.dev == node.bridge:
            self.bridge(node_name, next_hop)
            return
        self.hop(f"{node_name}/eth0:tx", "eth0_tx")
        self.lan(next_hop)

    def lan(self, next_hop: IPv4Address) -> None:
        if next_hop == self.cl.plan.gateway_address:
            self.gateway()
            return
        for node in self.cl.plan.nodes:
            if node.address == next_hop:
                self.hop(f"{node.name}/eth0:rx", "eth0_rx")
                self.node_ip(node.name)
                return
        raise _Drop(f"no neighbour {next_hop} on the node network (ARP unanswered)")

    def gateway(self) -> None:
        self.hop("gateway/forward", "gateway")
        route = self.cl.tables["gateway"].lookup(self.dst)
        if route is None:
            raise _Drop(f"no route to {self.dst} at the gateway")
        if route.dev == "lan":
            self.hop("gateway/lan:tx", "gateway_link")
            self.lan(route.via or self.dst)
            return
        host = route.dev.removeprefix("ext-")
        self.hop(f"gateway/{route.dev}:tx", "gateway_link")
        if self.dst == self.hosts[host].address:
            self.arrive(host)
            return
        raise _Drop(f"{host} does not forward packets for {self.dst}")


class _Drop(Exception):
    """Internal: the packet is dropped with this reason."""


def _walk(
    cl: Cluster,
    path: Route,
    src_ep: Endpoint,
    src: IPv4Address,
    dst: IPv4Address,
    reply: bool = False,
) -> Route:
    w = _Walker(cl, path, src, dst, reply)
    try:
        if src_ep.kind in ("pod", "container"):
            if src_ep.kind == "container" and path.dst.kind == "container":
                same_pod = path.dst.pod == src_ep.pod
                if same_pod:
                    # containers of one pod talk over localhost in the shared namespace
                    w.dst = IPv4Address("127.0.0.1")
                    w.src = IPv4Address("127.0.0.1")
            w.from_pod(src_ep.pod)
        elif src_ep.kind == "node":
            w.from_node(src_ep.name)
        elif src_ep.kind == "host":
            w.from_host(src_ep.name)
        else:
            raise _Drop(f"{src_ep.name} is not an endpoint of the scenario")
        if w.dst in LOOPBACK and path.verdict == "delivered":
            path.delivered_to = path.dst.name
    except _Drop as drop:
        path.verdict = "dropped"
        path.reason = str(drop)
    return path


def resolve(cl: Cluster, src: str | Endpoint, dst: str | Endpoint) -> Route:
    """Resolve the path of a packet from ``src`` to ``dst``.

    Parameters
    ----------
    cl : Cluster
        The built cluster.
    src, dst : str or Endpoint
        Endpoints: ``pod``, ``pod/container``, node, external host, or IP address.

    Returns
    -------
    Route
        Hops, addresses as they leave each hop, and the verdict.
    """
    s = src if isinstance(src, Endpoint) else endpoint(cl, src)
    d = dst if isinstance(dst, Endpoint) else endpoint(cl, dst)
    path = Route(src=s, dst=d)
    return _walk(cl, path, s, s.address, d.address)


def resolve_reply(cl: Cluster, forward: Route) -> Route:
    """Resolve the reply to a delivered ``forward`` packet.

    The reply is sent by the receiver to the source address it saw (the node IP
    when the request was masqueraded), with the forward packet's conntrack state,
    so SNAT'd replies are translated back to the pod.
    """
    if forward.verdict == "dropped":
        path = Route(src=forward.dst, dst=forward.src, conntrack=forward.conntrack)
        path.reason = "the request was dropped, so there is no reply: " + forward.reason
        return path
    receiver = endpoint(cl, forward.delivered_to or forward.dst.name)
    if forward.dst.kind == "container":
        receiver = forward.dst
    path = Route(src=receiver, dst=forward.src, conntrack=forward.conntrack)
    return _walk(cl, path, receiver, forward.seen_dst, forward.seen_src, reply=True)
