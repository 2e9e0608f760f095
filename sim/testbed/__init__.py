"""Real-kernel replica of a Kubernetes-like pod network, for calibration.

The sub-modules are independent of the simulator proper:

    topology.py  frozen description of the replica (nodes, pods, externals)
    netns.py     build / inspect / tear down the replica with ``ip`` and ``nft``
    probe.py     UDP request/response round-trip probe run inside namespaces

Everything the replica creates lives in network namespaces whose names start
with a prefix (default ``pns-``), and every address lies inside the
benchmarking range 198.18.0.0/15, so the host's own namespace is never touched.
"""

from sim.testbed.errors import ProbeError, TestbedError

__all__ = ["ProbeError", "TestbedError"]
