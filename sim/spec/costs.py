"""Per-hop cost parameters, with the published figures the defaults come from.

Each kind of station of the data plane (see :mod:`sim.engine.stations`) takes a
:class:`StationCost`. The service time of a packet of ``size_bytes`` at a station is::

    per_packet_us + per_byte_ns * size_bytes / 1000
        + (size_bytes + framing_bytes) * 8 / (rate_gbps * 1000)   # links only, in us

followed by ``propagation_us`` that does not hold the server.

Sources of the defaults
-----------------------
* Wire time: an Ethernet frame carries 38 B beyond the IP packet (preamble+SFD 8,
  header 14, FCS 4, inter-frame gap 12), so a 1500 B MTU packet is 1538 B on the wire:
  1.2304 us at 10 Gbit/s (RFC 5180, appendix A; IEEE 802.3).
* Linux bridge and IP forwarding: on the order of 1 Mpps per core, i.e. ~0.5-1 us
  of CPU per packet (the Linux-stack forwarding baseline of Hoiland-Jorgensen et
  al., "The eXpress Data Path: Fast Programmable Packet Processing in the
  Operating System Kernel", CoNEXT 2018).
* veth + network-namespace crossing: ~0.5 us per packet, an estimate: a crossing
  is one more backlog enqueue and softirq receive pass on the same CPU (the
  kernel's ``drivers/net/veth.c``, ``veth_xmit`` -> ``netif_rx``;
  Documentation/networking/scaling.rst), a fraction of a forwarding pass.
* Conntrack + SNAT: a few hundred ns per packet on top of plain forwarding
  (netfilter conntrack lookup/insert); we use 0.4 us.
* Per-byte cost: ~0.05 ns/B, a memory copy/checksum at ~20 GB/s.
* Propagation: 0.5 us per datacenter link (about 100 m of fibre at 5 ns/m).

These are order-of-magnitude defaults. ``podnetsim calibrate`` fits them to a
real kernel measured on your machine.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Ethernet bytes per frame beyond the IP packet: preamble+SFD 8, MAC header 14,
#: FCS 4, inter-frame gap 12 (IEEE 802.3; RFC 5180 appendix A).
ETHERNET_OVERHEAD_BYTES = 38

#: Largest IP packet, bytes (the 16-bit IPv4 total length).
MAX_PACKET_BYTES = 65535

#: Most servers a station may have: far above any core count, and each server is a
#: slot in a heap, so the bound keeps a typo (``servers = 1e12``) from eating memory.
MAX_SERVERS = 1024


class StationCost(BaseModel):
    """Cost and buffer parameters of one kind of station.

    Attributes
    ----------
    per_packet_us : float
        Fixed CPU/processing time per packet, microseconds.
    per_byte_ns : float
        Processing time per byte of IP packet, nanoseconds.
    rate_gbps : float or None
        Serialization rate of a link, Gbit/s; None for stations that are not links.
    framing_bytes : int
        Bytes added on the wire per packet (only used with ``rate_gbps``).
    propagation_us : float
        Delay after service that does not hold the server, microseconds.
    servers : int
        Number of packets served in parallel (e.g. CPU cores doing forwarding).
    buffer_packets : int or None
        Drop-tail limit on packets waiting *and* in service; None is unlimited.
        TOML has no null, so a scenario file says ``buffer_packets = "unlimited"``
        (stored as None). Default 1000.
    buffer_bytes : int or None
        Drop-tail limit on bytes waiting and in service; None (the default, or
        ``"unlimited"`` in a file) is unlimited.
    service : {"deterministic", "exponential"}
        Distribution of the service time (the mean is given by the cost formula).
    loss : float
        Probability that a packet arriving at the station is lost (independent
        random loss, drop reason ``random_loss``), in [0, 1). Default 0.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    per_packet_us: float = Field(0.0, ge=0)
    per_byte_ns: float = Field(0.0, ge=0)
    rate_gbps: float | None = Field(None, gt=0)
    framing_bytes: int = Field(0, ge=0)
    propagation_us: float = Field(0.0, ge=0)
    servers: int = Field(1, ge=1, le=MAX_SERVERS)
    buffer_packets: int | None = Field(1000, ge=1)
    buffer_bytes: int | None = Field(None, ge=1)
    service: Literal["deterministic", "exponential"] = "deterministic"
    loss: float = Field(0.0, ge=0, lt=1)

    @field_validator("buffer_packets", "buffer_bytes", mode="before")
    @classmethod
    def _unlimited(cls, value: object) -> object:
        # TOML cannot write None: the string "unlimited" stands for no limit
        if isinstance(value, str) and value.strip().lower() == "unlimited":
            return None
        return value

    @model_validator(mode="after")
    def _finite_service(self) -> StationCost:
        # each number is finite, but their combination may still overflow to inf: in
        # the units given (ns per byte x bytes) or in the whole service time
        per_byte_ns = self.per_byte_ns * MAX_PACKET_BYTES
        if not math.isfinite(per_byte_ns + self.mean_service_us(MAX_PACKET_BYTES)):
            raise ValueError(
                f"these costs give an infinite service time for a {MAX_PACKET_BYTES} B "
                "packet; give smaller per_packet_us/per_byte_ns or a larger rate_gbps"
            )
        return self

    def service_terms_s(self) -> tuple[float, float]:
        """Return the service time's two terms, the one formula of it.

        A packet of ``size_bytes`` is served in ``per_packet_s + per_byte_s *
        size_bytes`` seconds (the mean, for exponential service). The engines and
        :meth:`mean_service_us` all take it from here.

        Returns
        -------
        per_packet_s : float
            Seconds per packet: ``per_packet_us``, plus the framing's wire time on links.
        per_byte_s : float
            Seconds per IP byte: ``per_byte_ns``, plus the wire time of a byte on links.
        """
        per_packet_s = self.per_packet_us * 1e-6
        per_byte_s = self.per_byte_ns * 1e-9
        if self.rate_gbps is not None:
            per_byte_s += 8.0 / (self.rate_gbps * 1e9)
            per_packet_s += self.framing_bytes * 8.0 / (self.rate_gbps * 1e9)
        return per_packet_s, per_byte_s

    def mean_service_us(self, size_bytes: float) -> float:
        """Return the mean service time of a packet, microseconds.

        Parameters
        ----------
        size_bytes : float
            IP packet size in bytes.
        """
        per_packet_s, per_byte_s = self.service_terms_s()
        return (per_packet_s + per_byte_s * size_bytes) * 1e6


def _link(**kw) -> StationCost:
    return StationCost(
        rate_gbps=10.0, framing_bytes=ETHERNET_OVERHEAD_BYTES, propagation_us=0.5, **kw
    )


class Costs(BaseModel):
    """Cost parameters of every kind of station, with sourced defaults.

    Attributes
    ----------
    loopback : StationCost
        ``lo`` inside a pod's shared namespace (container to container).
    veth : StationCost
        One direction of a pod's veth pair (namespace crossing).
    bridge : StationCost
        The node bridge (``cbr0``/``docker0``) switching a frame.
    forward : StationCost
        The node's IP forwarding + netfilter stage.
    nat_extra_us : float
        Extra time at a forwarding stage for a packet that is SNAT'd or de-NAT'd
        (conntrack lookup and rewrite), microseconds.
    eth0_tx : StationCost
        Transmission on a node's eth0 (serialization at the NIC rate + propagation).
    eth0_rx : StationCost
        Receive processing on a node's eth0 (driver, GRO), no serialization.
    gateway : StationCost
        The gateway router's forwarding.
    gateway_link : StationCost
        Transmission from the gateway on a link (to a node or an external host).
    external_link : StationCost
        Transmission from an external host towards the gateway.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _partial_tables_keep_defaults(cls, data: object) -> object:
        # A table such as ``[costs.bridge]`` with only ``buffer_packets = 10`` changes
        # that field; the kind's other fields keep their sourced defaults (without
        # this, pydantic would fill them from StationCost's zeros).
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for name, info in cls.model_fields.items():
            given = out.get(name)
            if isinstance(given, dict) and isinstance(info.default, StationCost):
                out[name] = {**info.default.model_dump(), **given}
        return out

    loopback: StationCost = StationCost(per_packet_us=0.3, per_byte_ns=0.05)
    veth: StationCost = StationCost(per_packet_us=0.5, per_byte_ns=0.05)
    bridge: StationCost = StationCost(per_packet_us=0.6, per_byte_ns=0.05)
    forward: StationCost = StationCost(per_packet_us=1.0, per_byte_ns=0.05)
    nat_extra_us: float = Field(0.4, ge=0)
    eth0_tx: StationCost = _link(per_packet_us=0.2)
    eth0_rx: StationCost = StationCost(per_packet_us=0.5, per_byte_ns=0.05)
    gateway: StationCost = StationCost(per_packet_us=1.0, per_byte_ns=0.05)
    gateway_link: StationCost = _link()
    external_link: StationCost = _link()
