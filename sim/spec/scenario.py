"""The scenario: a frozen, validated description of one cluster and its traffic.

A scenario file is TOML; see ``experiments/scenarios/article.toml`` for a
commented example and ``docs/scenario.md`` for every field. Loading goes
through :func:`sim.spec.load.load_scenario`, which turns every problem into one
:class:`sim.errors.ScenarioError` naming the file, the field and the fix.
"""

from __future__ import annotations

import hashlib
import json
from ipaddress import IPv4Address, IPv4Network
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from sim.spec.costs import Costs
from sim.spec.datapath import Datapath
from sim.spec.workload import Flow

NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"


class _Frozen(BaseModel):
    # allow_inf_nan=False: every number of a scenario is finite (inf/nan are errors)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_boolean_addresses(cls, value: object, info: ValidationInfo) -> object:
        # pydantic reads true/false as the integers 1/0, i.e. 0.0.0.1/0.0.0.0
        items = value if isinstance(value, list) else [value]
        if "IPv4" in str(cls.model_fields[info.field_name].annotation) and any(
            isinstance(v, bool) for v in items
        ):
            raise ValueError("an address or network is written as a string, e.g. '10.0.0.0/14'")
        return value


class Container(_Frozen):
    """A container of a pod: a name and the ports it listens on (TCP/UDP numbers)."""

    name: str = Field(pattern=NAME_PATTERN)
    ports: tuple[int, ...] = ()

    @field_validator("ports")
    @classmethod
    def _ports_in_range(cls, ports: tuple[int, ...]) -> tuple[int, ...]:
        for p in ports:
            if not 1 <= p <= 65535:
                raise ValueError(f"port {p} is outside 1..65535")
        return ports


class Pod(_Frozen):
    """A pod: containers sharing one network namespace (made by ``pause``).

    Attributes
    ----------
    name : str
        Unique pod name.
    node : str
        Name of the node the pod runs on.
    containers : tuple of Container
        The pod's containers; they share one IP and one port space.
    """

    name: str = Field(pattern=NAME_PATTERN)
    node: str
    containers: tuple[Container, ...] = (Container(name="main"),)


class Node(_Frozen):
    """A node. ``address`` and ``pod_subnet`` are allocated when left out."""

    name: str = Field(pattern=NAME_PATTERN)
    address: IPv4Address | None = None
    pod_subnet: IPv4Network | None = None


class NodeNetwork(_Frozen):
    """The network the nodes' eth0 sit on, and its gateway router."""

    cidr: IPv4Network = IPv4Network("10.100.0.0/24")
    gateway: IPv4Address | None = None


class PodNetwork(_Frozen):
    """How pod addresses are assigned.

    Attributes
    ----------
    mode : {"cluster-cidr", "explicit", "docker-default"}
        ``cluster-cidr``: carve one subnet of ``node_prefix_length`` per node from
        ``cluster_cidr`` (Kubernetes; GKE uses 10.0.0.0/14 with a /24 per node).
        ``explicit``: every node gives its ``pod_subnet``.
        ``docker-default``: every node's bridge ``docker0`` has 172.17.0.0/16 (the
        article's pathological worst case: pod addresses are ambiguous across nodes).
    cluster_cidr : IPv4Network
        The cluster-wide pod range.
    node_prefix_length : int
        Prefix length of each node's pod subnet.
    bridge : str or None
        Bridge name; default ``cbr0`` (``docker0`` in docker-default mode).
    max_pods_per_node : int or None
        Scheduler limit (GKE: 110); None means only the subnet size limits.
    """

    mode: Literal["cluster-cidr", "explicit", "docker-default"] = "cluster-cidr"
    cluster_cidr: IPv4Network = IPv4Network("10.0.0.0/14")
    node_prefix_length: int = Field(24, ge=1, le=30)
    bridge: str | None = Field(None, pattern=r"^[a-z0-9]{1,15}$")
    max_pods_per_node: int | None = Field(None, ge=1)

    @property
    def bridge_name(self) -> str:
        """The bridge interface name."""
        if self.bridge:
            return self.bridge
        return "docker0" if self.mode == "docker-default" else "cbr0"


class ExternalHost(_Frozen):
    """A host outside the cluster, reached through the gateway.

    Attributes
    ----------
    name : str
        Unique name.
    address : IPv4Address
        Its address (outside the node network and the pod range).
    return_route_to_pods : bool or None
        Whether its network routes the cluster pod range back through the gateway.
        Without it, replies to un-masqueraded pod addresses are lost (the article's
        warning about other private networks inside 10.0.0.0/8). Default: true for
        private (RFC 1918 and similar) addresses, false for public ones, since the
        public internet does not route private pod addresses.
    """

    name: str = Field(pattern=NAME_PATTERN)
    address: IPv4Address
    return_route_to_pods: bool | None = None


class Masquerade(_Frozen):
    """Which pod traffic keeps its source address.

    ``non_masquerade_cidrs`` defaults to the article's ``10.0.0.0/8``; ip-masq-agent
    today also exempts 172.16.0.0/12, 192.168.0.0/16 and 169.254.0.0/16.
    """

    non_masquerade_cidrs: tuple[IPv4Network, ...] = (IPv4Network("10.0.0.0/8"),)


class Simulation(_Frozen):
    """Run length and seed of a packet simulation.

    Attributes
    ----------
    duration_s : float
        Simulated time including warm-up, seconds.
    warmup_s : float
        Initial time excluded from every summary, seconds.
    seed : int
        Base seed of all random streams.
    record_hops : bool
        Keep per-station arrival/departure of every packet (memory heavy).
    """

    duration_s: float = Field(0.05, gt=0)
    warmup_s: float = Field(0.005, ge=0)
    seed: int = Field(1, ge=0)
    record_hops: bool = False


class Scenario(_Frozen):
    """A whole scenario: the cluster, its costs and its flows."""

    name: str = "scenario"
    description: str = ""
    node_network: NodeNetwork = NodeNetwork()
    pod_network: PodNetwork = PodNetwork()
    masquerade: Masquerade = Masquerade()
    nodes: tuple[Node, ...] = Field(min_length=1)
    pods: tuple[Pod, ...] = ()
    external_hosts: tuple[ExternalHost, ...] = ()
    costs: Costs = Costs()
    datapath: Datapath = Datapath()
    flows: tuple[Flow, ...] = ()
    simulation: Simulation = Simulation()

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form (goes into results)."""
        data = self.model_dump(mode="json")
        if self.datapath == Datapath():
            del data["datapath"]  # scenarios of the station model keep their digests
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()
