"""Real-kernel replica of a scenario's pod network (root), for validation.

    render.py   the control plane rendered into ip -batch / nft -f / sysctl (no root)
    mapping.py  scenario addresses mapped into 198.18.0.0/15 (RFC 2544)
    netns.py    run the rendered build; status; tear down by prefix
    replica.py  load a scenario's replica, build it, verify a running one
    timing.py   round trips with sockperf ping-pong; the process tools of every measurement
    load.py     saturation rates, a probe under background load, drop counters (sockperf)
    iperf.py    TCP goodput with iperf3
    probe.py    small UDP echo: who received, from which source (SNAT verdicts)

The campaigns that measure a replica with these tools, and fitting and
comparing (no root), are :mod:`sim.validate`: it imports the testbed, never the
other way round. Everything the replica creates lives in namespaces whose
names start with a prefix (default ``pns-``), and every address lies in
198.18.0.0/15.
"""

from sim.testbed.errors import MappingError, ProbeError, TestbedError

__all__ = ["MappingError", "ProbeError", "TestbedError"]
