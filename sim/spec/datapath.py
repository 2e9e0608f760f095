"""The ``[datapath]`` section: per-element stations, or CPU cores doing the work.

``model = "stations"`` (the default) keeps one queueing station per element
(:mod:`sim.engine.stations`). ``model = "cpu"`` runs every kernel stage as work on
a CPU core (:mod:`sim.engine.cpu`); the per-packet and per-byte costs of the
stages come from ``[costs]`` as before, now as CPU time.

Sources of the defaults
-----------------------
* ``netdev_max_backlog`` = 1000 packets: per-CPU backlog of ``netif_rx``
  (kernel ``Documentation/admin-guide/sysctl/net.rst``, "netdev_max_backlog").
* ``txqueuelen`` = 1000 packets: the ``pfifo_fast`` qdisc's limit on an Ethernet
  device (``ip link`` default for Ethernet, ``ether_setup`` in the kernel sets
  ``tx_queue_len = DEFAULT_TX_QUEUE_LEN`` = 1000).
* ``rmem_default_bytes`` = 212992: socket receive buffer (``net.core.rmem_default``,
  sysctl ``net.rst``; 212992 on common distributions).
* ``skb_truesize_base_bytes`` = 730, ``skb_truesize_per_byte`` = 1.11: what a
  datagram charges the receive buffer (``skb->truesize``: the data buffer, rounded
  to its slab, plus ``struct sk_buff`` and ``skb_shared_info``; kernel
  ``include/linux/skbuff.h`` ``SKB_TRUESIZE``), fitted to a measurement on this
  machine's kernel (6.18): an unread UDP socket with the default 212992 B buffer
  held 256 datagrams of 64 B payload (832 B each, IP size 92 B) and 92 of 1400 B
  (2315 B each, IP size 1428 B); the line through both.
* ``sched_slice_us`` = 4000: how long a thread that keeps its core busy holds it
  while another thread of that core, owed no time (EEVDF lag, see
  :class:`sim.engine.cpu.Reader`), waits. EEVDF's base slice is 0.75 ms x (1 +
  log2(min(cpus, 8))) (``sysctl_sched_base_slice``, ``kernel/sched/fair.c``), but
  without ``HRTICK`` (off by default) the running task is only switched at a
  scheduler tick: 4 ms at ``CONFIG_HZ`` = 250 (this machine's kernel).
* ``realtime`` = none: pods' threads run at normal priority (``SCHED_OTHER``, the
  default policy, ``sched(7)``); ``{pod = true}`` models the pod under ``chrt --fifo``.
* ``tx_ring``/``rx_ring`` = 512 descriptors per queue: a common driver default
  (``ethtool -g``; e.g. ixgbe ``IXGBE_DEFAULT_TXD``/``IXGBE_DEFAULT_RXD`` = 512).
* ``rx_queues``: one receive queue per CPU, the usual RSS set-up ("the number of
  queues ... typically ... one for each CPU", kernel
  ``Documentation/networking/scaling.rst``, RSS section); queue ``i`` interrupts
  CPU ``i mod cpus``.
* Syscall costs: a UDP ``sendto``/``recvfrom`` of a small datagram costs on the
  order of 1-2 us of CPU on current x86 servers; the copy costs ~0.1 ns per byte
  (~10 GB/s ``copy_to_user``). Order-of-magnitude defaults, to be calibrated.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Datapath(BaseModel):
    """How packets consume the machine: stations, or CPU cores.

    Attributes
    ----------
    model : {"stations", "cpu"}
        ``stations``: one station per element (parallel servers). ``cpu``: each
        kernel stage is CPU work on the core that runs it.
    topology : {"cluster", "replica"}
        ``cluster``: nodes are machines with their own cores, NICs and wires.
        ``replica``: every node is a namespace on one host: all kernel work shares
        the host's ``cpus`` cores and the LAN is a bridge (veth crossings), not a wire.
    cpus : int
        Cores per node (``cluster``) or of the host (``replica``).
    rx_queues : int or None
        NIC receive queues per node; RSS hashes each flow to one. None: one per CPU.
    placement : {"spread", "packed"}
        Where pods' threads run: ``spread`` puts the k-th pod of a node (scenario
        order) on core ``k mod cpus``; ``packed`` puts them all on core 0.
    pin : dict of str to int
        Pod name -> core index, overriding ``placement`` (like ``taskset``).
    realtime : dict of str to bool
        Pod name -> whether its threads run at real-time priority (like ``chrt
        --fifo``): their work on a core preempts normal-priority work
        (:mod:`sim.engine.cpu`). A dict, like ``pin``, so a sweep can vary one
        pod's priority (``"datapath.realtime.client" = [false, true]``).
    netdev_max_backlog : int
        Per-CPU backlog limit, packets waiting for softirq.
    txqueuelen : int
        Qdisc (``pfifo_fast``) limit on a node's eth0, packets.
    tx_ring, rx_ring : int
        NIC transmit ring and receive ring (per queue), descriptors.
    rmem_default_bytes : int
        Socket receive buffer, bytes of queued datagrams.
    send_per_packet_us, send_per_byte_ns : float
        Sender's syscall cost (``sendto``), on the sending pod's core.
    recv_per_packet_us, recv_per_byte_ns : float
        Receiver's syscall cost (``recvfrom``), on the receiving pod's core.
    skb_truesize_base_bytes, skb_truesize_per_byte : float
        Bytes a datagram of IP size ``s`` charges the socket receive buffer:
        ``base + per_byte * s`` (its skb truesize).
    sched_slice_us : float
        Time a thread in a run of sends holds its core while the core's receiving
        thread, owed no time, waits (the scheduler's slice, to the tick), us.
    gateway : {"line-rate", "cpu"}
        The gateway forwards in hardware at line rate (only its links cost time),
        or as CPU work (``[costs.gateway]``) on its ``gateway_cpus`` cores.
    gateway_cpus : int
        Cores of a CPU gateway; RSS spreads flows over them.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: Literal["stations", "cpu"] = "stations"
    topology: Literal["cluster", "replica"] = "cluster"
    cpus: int = Field(2, ge=1, le=1024)
    rx_queues: int | None = Field(None, ge=1, le=1024)
    placement: Literal["spread", "packed"] = "spread"
    pin: dict[str, int] = Field(default_factory=dict)
    realtime: dict[str, bool] = Field(default_factory=dict)
    netdev_max_backlog: int = Field(1000, ge=1)
    txqueuelen: int = Field(1000, ge=1)
    tx_ring: int = Field(512, ge=1)
    rx_ring: int = Field(512, ge=1)
    rmem_default_bytes: int = Field(212992, ge=1)
    send_per_packet_us: float = Field(1.0, ge=0)
    send_per_byte_ns: float = Field(0.1, ge=0)
    recv_per_packet_us: float = Field(1.0, ge=0)
    recv_per_byte_ns: float = Field(0.1, ge=0)
    skb_truesize_base_bytes: float = Field(730.0, ge=0)
    skb_truesize_per_byte: float = Field(1.11, ge=0)
    sched_slice_us: float = Field(4000.0, gt=0)
    gateway: Literal["line-rate", "cpu"] = "line-rate"
    gateway_cpus: int = Field(1, ge=1, le=1024)

    def queues(self) -> int:
        """NIC receive queues per node."""
        return self.rx_queues if self.rx_queues is not None else self.cpus
