"""Round-trip times inside the replica with ``sockperf`` ping-pong.

``sockperf`` (Debian package ``sockperf``) runs a UDP ping-pong: one message
in flight, the server echoes it, the client times each round trip
(``--full-rtt``) and prints percentiles. Both ends use non-blocking sockets in
a busy loop (``--nonblocked``), so neither sleeps in the kernel between
messages, pinned to different CPUs with ``taskset``. With a single CPU
(:func:`busy_poll_works`) both ends block on it at real-time priority instead.
What is left of the tool's own software cost per round trip is the model's
endpoint term (:mod:`sim.validate.calibrate`).
"""

from __future__ import annotations

import os
import re
import subprocess
import time

from sim.testbed.errors import ProbeError, one_line

SOCKPERF_PORT = 11111
"""UDP port of the sockperf server (sockperf's default)."""

RT_PRIORITY = 20
"""SCHED_FIFO priority of blocking sockperf ends (``chrt(1)``; 1-99, kernel threads use 50)."""

_PERCENTILE = re.compile(r"percentile\s+(\d+\.\d+)\s*=\s*([\d.]+)")
_OBSERVATIONS = re.compile(r"Total (\d+) observations")


def busy_poll_works() -> bool:
    """Whether both ends can spin: they need a CPU each.

    Under load a spinning end is sometimes descheduled; that costs the run
    samples (a few very long round trips land in the tail) but not its median,
    which is set by the many round trips in between.
    """
    return len(os.sched_getaffinity(0)) >= 2


def _command(ns: str | None, role: str, args: list[str], busy_poll: bool) -> list[str]:
    """``sockperf`` in ``ns`` on its CPU; blocking ends at real-time priority.

    Blocking ends hand off by wake-ups on one CPU, so other work there must
    not delay them (they sleep between messages: softirq work is never
    starved). Spinning ends stay at normal priority: at real-time priority
    they would starve the softirq threads of their CPUs.
    """
    cpus = sorted(os.sched_getaffinity(0))
    cpu = cpus[-1] if busy_poll and role == "server" else cpus[0]
    pre = ["ip", "netns", "exec", ns] if ns else []
    rt = [] if busy_poll else ["chrt", "--fifo", str(RT_PRIORITY)]
    return [*pre, *rt, "taskset", "-c", str(cpu), "sockperf", *args]


def _wait_ready(server: subprocess.Popen, ns: str | None, timeout_s: float = 10.0) -> None:
    """Wait until the server's UDP socket is bound (``ss``; its stdout is block-buffered)."""
    pre = ["ip", "netns", "exec", ns] if ns else []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        probe = [*pre, "ss", "-Huln", f"sport = :{SOCKPERF_PORT}"]
        if subprocess.run(probe, capture_output=True, text=True).stdout.strip():
            return
        time.sleep(0.02)
    out = server.communicate(timeout=10)[0] if server.poll() is not None else ""
    raise ProbeError(f"sockperf server in {ns} did not start: {one_line(out)[-300:] or 'timeout'}")


def parse_sockperf(text: str) -> dict:
    """``p50_us``, ``p99_us`` (``None`` when absent) and ``samples`` from sockperf's report."""
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
    duration_s: float,
    payload_bytes: int,
    busy_poll: bool | None = None,
) -> dict:
    """One sockperf ping-pong run from ``src_ns`` to a server at ``addr`` in ``dst_ns``.

    Parameters
    ----------
    src_ns, dst_ns : str or None
        Namespaces of client and server (``None``: this one).
    addr : str
        Address the server binds and the client sends to.
    duration_s : float
        Length of the run, seconds.
    payload_bytes : int
        UDP payload of each message, bytes.
    busy_poll : bool or None, default None
        Whether both ends busy-poll (``None``: where it works).

    Returns
    -------
    dict
        ``p50_us``, ``p99_us`` (full round trips, microseconds) and ``samples``.

    Raises
    ------
    ProbeError
        If the server does not start or the client fails or reports nothing.
    """
    busy = busy_poll_works() if busy_poll is None else busy_poll
    common = ["-i", addr, "-p", str(SOCKPERF_PORT), *(["--nonblocked"] if busy else [])]
    server = subprocess.Popen(
        _command(dst_ns, "server", ["server", *common], busy),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_ready(server, dst_ns)
        args = ["ping-pong", *common, "-t", f"{duration_s:g}", "--full-rtt"]
        client = _client(src_ns, [*args, "-m", str(payload_bytes)], busy, duration_s + 30)
    finally:
        server.kill()
        server.communicate(timeout=10)
    res = parse_sockperf(client.stdout + client.stderr)
    if client.returncode != 0 or res["p50_us"] is None:
        tail = one_line(client.stderr or client.stdout)[-300:]
        raise ProbeError(f"sockperf {src_ns} -> {addr} failed (exit {client.returncode}): {tail}")
    return res


def _client(ns: str | None, args: list[str], busy: bool, timeout_s: float):
    """Run the sockperf client in ``ns`` to its end, bounded by ``timeout_s`` seconds."""
    try:
        return subprocess.run(
            _command(ns, "client", args, busy),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ProbeError(f"sockperf client in {ns} exceeded its time bound") from None
