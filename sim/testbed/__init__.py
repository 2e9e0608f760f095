"""Real-kernel replica of a Kubernetes-like pod network, for calibration.

The sub-modules, from description to verdict:

    topology.py   frozen description of the replica (nodes, pods, externals)
    netns.py      build / inspect / tear down the replica with ``ip`` and ``nft``
    probe.py      UDP request/response round-trip probe run inside namespaces
    mapping.py    a scenario's addresses mapped into 198.18.0.0/15 -> Topology
    replica.py    load a scenario's replica, build it, verify a running one
    measure.py    RTT cases and endpoint-pair SNAT observations -> JSON
    calibrate.py  fit per-hop costs to measured round trips -> params TOML
    compare.py    simulate the measured pairs; model vs observed SNAT verdicts

Everything the replica creates lives in network namespaces whose names start
with a prefix (default ``pns-``), and every address lies inside the
benchmarking range 198.18.0.0/15, so the host's own namespace is never touched.
See ``docs/testbed.md``.
"""

from sim.testbed.errors import MappingError, ProbeError, TestbedError

__all__ = ["MappingError", "ProbeError", "TestbedError"]
