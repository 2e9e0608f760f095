"""Control plane (no SimPy): addresses, routing tables, NAT, path resolution."""

from sim.control.cluster import Cluster, build_cluster, load_cluster
from sim.control.resolve import Endpoint, Hop, Route, endpoint, resolve, resolve_reply

__all__ = [
    "Cluster",
    "Endpoint",
    "Hop",
    "Route",
    "build_cluster",
    "endpoint",
    "load_cluster",
    "resolve",
    "resolve_reply",
]
