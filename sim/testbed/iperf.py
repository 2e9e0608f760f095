"""TCP throughput inside the replica with ``iperf3`` (Debian package ``iperf3``).

The server runs in the destination pod's namespace for one test (``-1``), the
client in the source's, ``-P`` parallel connections for ``seconds``, JSON output
(``-J``). The figure is the receiver's: ``end.sum_received.bits_per_second``
(payload bits, i.e. goodput, like the simulator's ``throughput_gbps`` of a
``tcp`` flow). Offloads are left as the namespaces have them by default
(every veth of the replica: TSO and GSO on, GRO off; the bridges: GRO
on; ``ethtool -k``, ``docs/testbed.md``). Callers hold the kernel lock.
"""

from __future__ import annotations

import json
import statistics
from functools import partial

from sim.testbed.errors import ProbeError, one_line
from sim.testbed.render import Replica
from sim.testbed.timing import SLACK_S, in_rounds, run_bounded, serving, sockperf_rtt

__all__ = ["IPERF_PORT", "iperf3_gbps", "measure_tcp_set", "parse_iperf3"]

IPERF_PORT = 5201
"""TCP port of the iperf3 server (iperf3's default)."""


def parse_iperf3(text: str) -> dict:
    """Goodput (Gbit/s), retransmissions and stream count from ``iperf3 -J`` output.

    Raises
    ------
    ProbeError
        The output is not iperf3's JSON, or reports an error.
    """
    try:
        doc = json.loads(text)
    except json.JSONDecodeError:
        raise ProbeError(f"iperf3 output is not JSON: {one_line(text)[:200]}") from None
    if doc.get("error"):
        raise ProbeError(f"iperf3: {doc['error']}")
    end = doc.get("end", {})
    received = end.get("sum_received", {})
    sent = end.get("sum_sent", {})
    if "bits_per_second" not in received:
        raise ProbeError("iperf3 output has no end.sum_received.bits_per_second")
    return {
        "goodput_gbps": received["bits_per_second"] / 1e9,
        "retransmissions": int(sent.get("retransmits", 0)),
        "streams": len(end.get("streams", [])),
    }


def iperf3_gbps(
    replica: Replica, src: str, dst: str, streams: int = 1, seconds: float = 2.0
) -> dict:
    """Measure TCP goodput from endpoint ``src`` to ``dst`` of a running replica.

    Parameters
    ----------
    replica : Replica
        A built replica (:func:`sim.testbed.replica.build`).
    src, dst : str
        Endpoints (pods) of the scenario.
    streams : int
        Parallel connections (``iperf3 -P``), 1 to 128.
    seconds : float
        Length of the test, seconds (0.1 to 60).

    Returns
    -------
    dict
        ``goodput_gbps``, ``retransmissions``, ``streams`` (see :func:`parse_iperf3`).
    """
    if not (1 <= streams <= 128 and 0.1 <= seconds <= 60):
        raise ProbeError(f"iperf3 needs 1..128 streams and 0.1..60 s, got {streams}, {seconds}")
    src_ns, dst_ns = replica.namespace(src), replica.namespace(dst)
    port = str(IPERF_PORT)
    client = ["iperf3", "-c", str(replica.address(dst)), "-p", port, "-J"]
    client += ["-P", str(streams), "-t", f"{seconds:g}"]
    with serving(dst_ns, ["iperf3", "-s", "-1", "-p", port], IPERF_PORT, tcp=True, quiet=True):
        return parse_iperf3(run_bounded(src_ns, client, seconds + SLACK_S).stdout)


def measure_tcp_set(
    replica: Replica,
    pairs: dict[str, tuple[str, str]],
    streams: tuple[int, ...] = (1, 4),
    seconds: float = 3.0,
    rounds: int = 3,
) -> tuple[dict[str, float], dict[tuple[str, int], float]]:
    """Idle 64 B round trips and ``iperf3`` goodput of a running replica, for the TCP fit.

    Parameters
    ----------
    replica : Replica
        A built replica.
    pairs : dict
        ``{"same": (src, dst), "cross": (src, dst)}``.
    streams : tuple of int
        Parallel connection counts.
    seconds : float
        Length of each ``iperf3`` test, seconds.
    rounds : int
        Rounds over all (placement, streams) cases, interleaved so that the
        shared machine's changing load falls on every case alike; each case's
        figure is the median of its rounds.

    Returns
    -------
    (dict, dict)
        ``{placement: p50_us}`` of a 1 s ``sockperf`` ping-pong per round, and
        ``{(placement, streams): goodput_gbps}`` (medians)
        (the inputs of :func:`sim.validate.tcp.compare_tcp`).
    """
    jobs: dict = {}
    for place, (src, dst) in pairs.items():
        ns_s, ns_d, addr = replica.namespace(src), replica.namespace(dst), str(replica.address(dst))
        jobs[place] = partial(sockperf_rtt, ns_s, ns_d, addr, duration_s=1.0, payload_bytes=64)
    for n in streams:
        for place, (src, dst) in pairs.items():
            jobs[place, n] = partial(iperf3_gbps, replica, src, dst, streams=n, seconds=seconds)
    runs = in_rounds(jobs, rounds)
    med = statistics.median
    idle = {p: med(r["p50_us"] for r in runs.pop(p)) for p in pairs}
    return idle, {c: med(r["goodput_gbps"] for r in got) for c, got in runs.items()}
