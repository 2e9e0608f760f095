"""Round-trip times inside the replica with ``sockperf`` ping-pong.

``sockperf`` (Mellanox/NVIDIA, Debian package ``sockperf``) runs a UDP
ping-pong: one message in flight, the server echoes it, the client times each
round trip (``--full-rtt``) and prints percentiles. Both ends use non-blocking
sockets in a busy loop (``--nonblocked``), so neither sleeps in the kernel
between messages, and are pinned to different CPUs with ``taskset``. With a
single CPU (:func:`busy_poll_works`) both ends block on it at real-time
priority instead. What is
left of the tool's own software cost per round trip is the model's endpoint
term (``sim.validate.calibrate``).
"""

from __future__ import annotations

import os
import re
import subprocess
import time

from sim.testbed.errors import ProbeError, one_line

__all__ = ["SOCKPERF_PORT", "busy_poll_works", "sockperf_rtt"]

SOCKPERF_PORT = 11111
"""UDP port of the sockperf server (sockperf's default)."""

RT_PRIORITY = 20
"""SCHED_FIFO priority of blocking sockperf ends (``chrt(1)``; 1-99, kernel threads use 50)."""

_PERCENTILE = re.compile(r"percentile\s+(\d+\.\d+)\s*=\s*([\d.]+)")
_OBSERVATIONS = re.compile(r"Total (\d+) observations")


def _cpus(busy_poll: bool) -> tuple[int, int]:
    """(client, server) CPUs: apart when both spin, together when they hand off by wake-ups."""
    cpus = sorted(os.sched_getaffinity(0))
    return cpus[0], cpus[-1] if busy_poll else cpus[0]


def _in_ns(ns: str | None, cpu: int, args: list[str], busy_poll: bool) -> list[str]:
    pre = ["ip", "netns", "exec", ns] if ns else []
    # Blocking ends hand off by wake-ups on one CPU; real-time priority keeps other
    # work on that CPU from delaying them (they sleep between messages, so softirq
    # work is never starved). Spinning ends stay at normal priority: at real-time
    # priority they would starve the softirq threads on their CPUs.
    rt = [] if busy_poll else ["chrt", "--fifo", str(RT_PRIORITY)]
    return [*pre, *rt, "taskset", "-c", str(cpu), "sockperf", *args]


def _wait_ready(server: subprocess.Popen, ns: str | None, timeout_s: float = 10.0) -> None:
    """Wait until the server's UDP socket is bound (``ss``; its stdout is block-buffered)."""
    pre = ["ip", "netns", "exec", ns] if ns else []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        ss = subprocess.run(
            [*pre, "ss", "-Huln", f"sport = :{SOCKPERF_PORT}"], capture_output=True, text=True
        )
        if ss.stdout.strip():
            return
        time.sleep(0.02)
    out = server.communicate(timeout=10)[0] if server.poll() is not None else ""
    raise ProbeError(f"sockperf server in {ns} did not start: {one_line(out)[-300:] or 'timeout'}")


def parse_sockperf(text: str) -> dict:
    """Percentiles and observation count from sockperf's report.

    Returns
    -------
    dict
        ``p50_us``, ``p99_us`` (``None`` when absent) and ``samples``.
    """
    pct = {float(q): float(v) for q, v in _PERCENTILE.findall(text)}
    n = _OBSERVATIONS.search(text)
    return {
        "p50_us": pct.get(50.0),
        "p99_us": pct.get(99.0),
        "samples": int(n.group(1)) if n else 0,
    }


def sockperf_rtt(
    src_ns: str | None,
    dst_ns: str | None,
    addr: str,
    *,
    duration_s: float = 2.0,
    payload_bytes: int = 32,
    busy_poll: bool = True,
) -> dict:
    """One sockperf ping-pong run from ``src_ns`` to a server at ``addr`` in ``dst_ns``.

    Parameters
    ----------
    src_ns, dst_ns : str or None
        Namespaces of client and server (``None``: this one).
    addr : str
        Address the server binds and the client sends to.
    duration_s : float, default 2.0
        Length of the timed run, seconds (sockperf warms up before it).
    payload_bytes : int, default 32
        UDP payload of each message, bytes (the IP packet is 28 B more).
    busy_poll : bool, default True
        Non-blocking sockets in a busy loop, client and server on different
        CPUs; else blocking sockets, both on one CPU at real-time priority.

    Returns
    -------
    dict
        ``p50_us``, ``p99_us`` (full round trips, microseconds), ``samples``.

    Raises
    ------
    ProbeError
        If the server does not start or the client fails or reports nothing.
    """
    client_cpu, server_cpu = _cpus(busy_poll)
    common = ["-i", addr, "-p", str(SOCKPERF_PORT), *(["--nonblocked"] if busy_poll else [])]
    server = subprocess.Popen(
        _in_ns(dst_ns, server_cpu, ["server", *common], busy_poll),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(server, dst_ns)
        args = [
            "ping-pong",
            *common,
            "-t",
            f"{duration_s:g}",
            "-m",
            str(payload_bytes),
            "--full-rtt",
        ]
        try:
            client = subprocess.run(
                _in_ns(src_ns, client_cpu, args, busy_poll),
                capture_output=True,
                text=True,
                timeout=duration_s + 30,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ProbeError(f"sockperf client in {src_ns} exceeded its time bound") from None
        res = parse_sockperf(client.stdout + client.stderr)
        if client.returncode != 0 or res["p50_us"] is None:
            raise ProbeError(
                f"sockperf {src_ns} -> {addr} failed (exit {client.returncode}): "
                f"{one_line(client.stderr or client.stdout)[-300:]}"
            )
        return res
    finally:
        server.kill()
        server.wait(timeout=10)
        server.stdout.close()


def busy_poll_works() -> bool:
    """Whether both ends can spin: they need a CPU each.

    Under load a spinning end is sometimes descheduled; that costs the run
    samples (a few very long round trips land in the tail) but not its median,
    which is set by the many round trips in between.
    """
    return len(os.sched_getaffinity(0)) >= 2
