"""Compile a resolved path into CPU segments, queues and wires (``model = "cpu"``).

Where each hop's work runs (``topology = "cluster"``)
-----------------------------------------------------
* The sender's ``sendto`` runs on its pod's core (process context).
* ``veth`` and ``lo``: the transmit hands the packet to ``netif_rx``, which queues
  it on the *current* CPU's backlog; the hop's cost is the receive side's work, in
  the next segment on the same core (kernel ``Documentation/networking/scaling.rst``:
  without RPS, ``netif_rx`` uses the current CPU). Exception: on the sender's core
  the softirq raised by its own ``sendto`` runs inline in the sending thread (at
  ``local_bh_enable``, before ``sendto`` returns), so everything the sender's core
  does for a packet is one segment, and an overloaded sender slows down (its
  unlimited application queue grows) instead of overflowing its backlog.
* ``bridge`` and ``forward`` (+ ``nat_extra_us`` where the hop NATs): softirq work
  added to the current segment.
* ``eth0_tx``: the driver's transmit (its ``per_packet_us``/``per_byte_ns``) ends the
  segment; then the qdisc (``txqueuelen``) and NIC transmit ring (``tx_ring``) in
  front of the wire, which serializes at ``rate_gbps`` and propagates. The driver
  stops the qdisc when the ring is full, so a full qdisc is the drop.
* ``eth0_rx``: RSS hashes the packet's addresses to one of ``rx_queues`` receive
  queues; the queue's ring (``rx_ring``) is served by NAPI on CPU ``queue mod cpus``,
  whose segment starts with the hop's cost and carries the packet on.
* ``gateway``: line rate (no work, only its links) or CPU work on a gateway core
  picked by RSS, behind that queue's ring.
* Delivery: the socket receive buffer (``rmem_default_bytes``, charged each datagram's
  skb truesize) holds the packet until the receiver's ``recvfrom`` on its pod's core
  has copied it; that thread waits for the slice of a sender holding its core
  (:class:`sim.engine.cpu.Reader`).

``topology = "replica"``: one host's ``cpus`` cores run everything (the replica
built by :mod:`sim.testbed.render`: every node a namespace, the LAN a bridge in
its own namespace); node and gateway interfaces are veths on that bridge, so
``eth0_tx``, ``eth0_rx`` and the links are veth crossings (backlog enqueues on the
current core) whose cost is the kind's whole cost (its veths and the LAN bridge,
``sim.testbed.render.COMPOSITION``), the gateway's forwarding is CPU work, and
there is no wire.

RSS uses CRC32 of the source and destination addresses and the protocol (flows
carry no ports here, so two flows between the same two addresses share a queue).
"""

from __future__ import annotations

import zlib

from sim.control.resolve import Endpoint, Hop, Route
from sim.engine.cpu import Core, Queue, Reader, Thread
from sim.engine.stations import Station
from sim.errors import ScenarioError
from sim.spec.costs import StationCost
from sim.spec.datapath import Datapath

US = 1e-6
NS = 1e-9


class CpuPlane:
    """Cores, queues and wires of a ``model = "cpu"`` run; compiles routes.

    Parameters
    ----------
    net : Network
        The run's network (cores and wires join its stations).
    cl : Cluster
        The built cluster (pods' nodes, scenario order).
    dp : Datapath
        The ``[datapath]`` section.
    file : str
        Scenario file name for messages.
    """

    def __init__(self, net, cl, dp: Datapath, file: str) -> None:
        self.net = net
        self.dp = dp
        self.costs = net.costs
        self.replica = dp.topology == "replica"
        self.work: list[tuple] = []
        self.queues: dict[str, Queue] = {}
        self.threads: dict[str, Thread] = {}
        self.readers: dict[str, Reader] = {}
        self.pod_core = self._place(cl, file)

    # -- placement and named objects ---------------------------------------------------
    def _place(self, cl, file: str) -> dict[str, str]:
        dp = self.dp
        for pod, idx in dp.pin.items():
            if pod not in cl.pods or not 0 <= idx < dp.cpus:
                raise ScenarioError(
                    f"pin {pod} = {idx}: "
                    + ("no such pod" if pod not in cl.pods else f"core outside 0..{dp.cpus - 1}"),
                    file=file,
                    field=f"datapath.pin.{pod}",
                    fix=f"pin pods of the scenario to cores 0..{dp.cpus - 1}",
                )
        for pod in dp.realtime:
            if pod not in cl.pods:
                raise ScenarioError(
                    f"realtime names {pod!r}, which is not a pod of the scenario",
                    file=file,
                    field=f"datapath.realtime.{pod}",
                    fix=f"name pods of the scenario ({', '.join(sorted(cl.pods))})",
                )
        out: dict[str, str] = {}
        count: dict[str, int] = {}
        for pod in cl.scenario.pods:
            host = "replica" if self.replica else pod.node
            k = count.get(host, 0)
            count[host] = k + 1
            idx = k % dp.cpus if dp.placement == "spread" else 0
            out[pod.name] = f"{host}/cpu{dp.pin.get(pod.name, idx)}"
        return out

    def core(self, name: str) -> Core:
        """Return the core called ``name``, created (with its backlog) on first use."""
        net = self.net
        st = net.by_name.get(name)
        if st is not None:
            return st
        reason = net.rec.reason_id(f"backlog full at {name} (netdev_max_backlog)")
        backlog = Queue(f"{name} backlog", self.dp.netdev_max_backlog, None, reason)
        core = Core(len(net.stations), name, backlog)
        core.bind(net, net.warmup, self.work)
        net.stations.append(core)
        net.by_name[name] = core
        return core

    def thread(self, ep: Endpoint, core: str) -> Thread:
        """Return the sending thread of an endpoint (one per pod, container, node or host)."""
        th = self.threads.get(ep.name)
        if th is None:
            th = self.threads[ep.name] = Thread(self.core(core), self._rt(ep), ep.name)
        return th

    def reader(self, ep: Endpoint, core: str) -> Reader:
        """Return the receiving thread of an endpoint, with its socket receive buffer."""
        rd = self.readers.get(ep.name)
        if rd is None:
            dp = self.dp
            sock = self.queue(ep.name, None, dp.rmem_default_bytes, "socket receive buffer full")
            truesize = (dp.skb_truesize_base_bytes, dp.skb_truesize_per_byte)
            rt = self._rt(ep)
            rd = Reader(self.core(core), sock, dp.sched_slice_us * US, truesize, rt, ep.name)
            self.readers[ep.name] = rd
        return rd

    def _rt(self, ep: Endpoint) -> bool:
        """Whether an endpoint's threads run at real-time priority (``realtime``)."""
        return ep.pod is not None and self.dp.realtime.get(ep.pod, False)

    def held_packets(self, t_s: float) -> int:
        """Packets sent by ``t_s`` held by a thread (sender's queue, unread socket): no event."""
        send = self.net.rec.send_s
        waits = [th.waiting for th in self.threads.values()]
        waits += [rd.pending for rd in self.readers.values()]
        return sum(1 for w in waits for ev in w if send[ev.pkt] <= t_s)

    def queue(self, name: str, packets: int | None, nbytes: int | None, why: str) -> Queue:
        """Return a named queue (NIC ring, socket buffer), created on first use."""
        q = self.queues.get(name)
        if q is None:
            reason = self.net.rec.reason_id(f"{why} at {name}")
            q = Queue(name, packets, nbytes, reason, until_start=nbytes is None)
            self.queues[name] = q
        return q

    def wire(self, name: str, kind: str, c: StationCost, limit: int | None, why: str) -> Station:
        """Return a link: serialize at ``c.rate_gbps`` + propagation, behind ``limit`` packets."""
        net = self.net
        st = net.by_name.get(name)
        if st is not None:
            return st
        per_byte_s = 8.0 / (c.rate_gbps * 1e9) if c.rate_gbps else 0.0
        per_packet_s = c.framing_bytes * per_byte_s
        st = Station(
            len(net.stations), name, kind, per_packet_s, per_byte_s, c.propagation_us * US, limit
        )
        st.bind(net, net.warmup, net.rec.reason_id(f"{why} at {name}"))
        net.stations.append(st)
        net.by_name[name] = st
        return st

    def endpoint_core(self, ep: Endpoint) -> str | None:
        """Core running an endpoint's syscalls: its pod's, or core 0 of its machine."""
        if ep.pod is not None:
            return self.pod_core[ep.pod]
        if ep.kind in ("node", "host"):
            return f"{'replica' if self.replica else ep.name}/cpu0"
        return None

    def rss_core(self, machine: str, hop: Hop, queues: int, cpus: int) -> tuple[str, Queue]:
        """Receive queue of ``machine`` RSS picks for ``hop``, and the core it interrupts."""
        q = zlib.crc32(f"{hop.src}>{hop.dst}/udp".encode()) % queues
        ring = self.queue(f"{machine}/eth0 rx queue {q}", self.dp.rx_ring, None, "rx ring full")
        return f"{machine}/cpu{q % cpus}", ring

    # -- compiling a path ---------------------------------------------------------------
    def compile(self, path: Route, route: int) -> list:
        """Elements (cores and wires) of ``path``, in order; records the segments' work.

        Parameters
        ----------
        path : Route
            A resolved path.
        route : int
            Its route index (the segment table is indexed by it).
        """
        assert route == len(self.work), "routes are compiled in order"
        c = _Compiler(self)
        sender = self.endpoint_core(path.src)
        if sender is not None:
            dp = self.dp
            c.start(sender, dp.send_per_packet_us * US, dp.send_per_byte_ns * NS, inline=True)
            c.gate = self.thread(path.src, sender)
        for hop in path.hops:
            if self.replica:
                c.replica_hop(hop)
            else:
                c.cluster_hop(hop)
        receiver = self.endpoint_core(path.dst) if path.verdict == "delivered" else None
        if receiver is not None:
            c.close()
            c.start(receiver, self.dp.recv_per_packet_us * US, self.dp.recv_per_byte_ns * NS)
            c.gate = self.reader(path.dst, receiver)  # it owns the socket receive buffer
        c.close()
        self.work.append(tuple(w for _, w in c.elems))
        return [e for e, _ in c.elems]


class _Compiler:
    """Builds one route's elements; ``seg`` is the open segment [core, a_s, b_s, queue]."""

    def __init__(self, plane: CpuPlane) -> None:
        self.p = plane
        self.costs = plane.costs
        self.elems: list[tuple[object, tuple | None]] = []
        self.seg: list | None = None
        self.gate: Thread | Reader | None = None  # the thread in front of the open segment

    def start(
        self, core: str, a_s: float, b_s: float, queue: Queue | None = None, inline: bool = False
    ) -> None:
        self.seg = [core, a_s, b_s, queue]
        self.inline = inline

    def add(self, c: StationCost, nat: bool = False) -> None:
        seg = self.seg
        seg[1] += c.per_packet_us * US + (self.costs.nat_extra_us * US if nat else 0.0)
        seg[2] += c.per_byte_ns * NS

    def close(self) -> None:
        if self.seg is not None:
            core, a_s, b_s, q = self.seg
            self.elems.append((self.gate or self.p.core(core), (a_s, b_s, q)))
            self.seg = None
            self.gate = None

    def cross(self, c: StationCost) -> None:
        """Cross a veth/lo: ``netif_rx`` on the current core, then ``c``'s work.

        In a segment the sender's thread started, the crossing runs inline: the
        softirq it raises runs at ``local_bh_enable`` in that thread, before
        ``sendto`` returns, so it is no separate backlog visit.
        """
        if self.inline:
            self.add(c)
            return
        core = self.seg[0]
        self.close()
        self.start(core, 0.0, 0.0, self.p.core(core).backlog)
        self.add(c)

    def cluster_hop(self, hop: Hop) -> None:
        k, costs, p, dp = hop.kind, self.costs, self.p, self.p.dp
        machine = hop.station.split("/", 1)[0]
        if k in ("veth", "loopback"):
            self.cross(getattr(costs, k))
        elif k in ("bridge", "forward"):
            self.add(getattr(costs, k), hop.nat)
        elif k == "eth0_tx":
            self.add(costs.eth0_tx)
            self.close()
            limit = dp.tx_ring + dp.txqueuelen
            wire = p.wire(f"{machine}/eth0:tx", k, costs.eth0_tx, limit, "qdisc full")
            self.elems.append((wire, None))
        elif k == "eth0_rx":
            core, ring = p.rss_core(machine, hop, dp.queues(), dp.cpus)
            self.start(core, 0.0, 0.0, ring)
            self.add(costs.eth0_rx, hop.nat)
        elif k == "gateway":
            if dp.gateway == "cpu":
                core, ring = p.rss_core("gateway", hop, dp.gateway_cpus, dp.gateway_cpus)
                self.start(core, 0.0, 0.0, ring)
                self.add(costs.gateway)
        else:  # gateway_link, external_link: the output queue and the wire
            self.close()
            c = getattr(costs, k)
            wire = p.wire(hop.station, k, c, c.buffer_packets, "buffer full")
            self.elems.append((wire, None))

    def replica_hop(self, hop: Hop) -> None:
        """Add a hop of the replica: its kind's whole cost, on the current core.

        The replica prices each model kind as the kernel work its build crosses
        (``sim.testbed.render.COMPOSITION``: e.g. ``eth0_tx`` = 2 veth + the LAN
        bridge), and a calibrated ``[costs]`` holds exactly those sums, so each
        hop adds its kind's cost once; the kinds that cross a veth start a new
        backlog visit (inline on the sender's core).
        """
        k = hop.kind
        c = getattr(self.costs, k)
        if k in ("bridge", "forward", "gateway"):
            self.add(c, hop.nat)
        else:  # veth, loopback, eth0_tx/rx, gateway_link, external_link: veth crossings
            self.cross(c)
            if hop.nat:
                self.seg[1] += self.costs.nat_extra_us * US
