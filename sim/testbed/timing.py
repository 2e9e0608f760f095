"""Round trips inside the replica with ``sockperf`` ping-pong; the measurements' process tools.

``sockperf`` (Debian package ``sockperf``) runs a UDP ping-pong: one message
in flight, the server echoes it, the client times each round trip
(``--full-rtt``) and prints percentiles. Both ends use non-blocking sockets in
a busy loop (``--nonblocked``), so neither sleeps in the kernel between
messages, pinned to different CPUs with ``taskset``. With a single CPU
(:func:`busy_poll_works`) both ends block on it at real-time priority instead.
What is left of the tool's own software cost per round trip is the model's
endpoint term (:mod:`sim.validate.calibrate`).

The process tools serve every kernel measurement (here, :mod:`sim.testbed.load`,
:mod:`sim.testbed.iperf`): a server runs for a ``with`` block from when ``ss``
shows its socket (:func:`serving`), every process is ended by :func:`stop` and
waited for within a time bound (:func:`wait_bounded`), and rounds of cases are
run by :func:`in_rounds`.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import AbstractContextManager, contextmanager

from sim.testbed.errors import ProbeError, one_line

SOCKPERF_PORT = 11111
"""UDP port of the sockperf server (sockperf's default)."""

RT_PRIORITY = 20
"""SCHED_FIFO priority of blocking sockperf ends (``chrt(1)``; 1-99, kernel threads use 50)."""

#: Longest a server may take to open its socket, seconds.
SERVER_START_S = 10.0

#: Longest a client may run past its own length (setup, warm-up, the final exchange), seconds.
SLACK_S = 30.0

_PERCENTILE = re.compile(r"percentile\s+(\d+\.\d+)\s*=\s*([\d.]+)")
_OBSERVATIONS = re.compile(r"Total (\d+) observations")


def busy_poll_works() -> bool:
    """Whether both ends can spin: they need a CPU each.

    Under load a spinning end is sometimes descheduled; that costs the run
    samples (a few very long round trips land in the tail) but not its median,
    which is set by the many round trips in between.
    """
    return len(os.sched_getaffinity(0)) >= 2


def in_ns(ns: str | None, argv: list[str]) -> list[str]:
    """``argv`` run in namespace ``ns`` (``None``: this one)."""
    return ["ip", "netns", "exec", ns, *argv] if ns else argv


def spawn(ns: str | None, argv: list[str], *, quiet: bool = False) -> subprocess.Popen:
    """Start ``argv`` in ``ns``, stderr joined to stdout (a pipe; discarded if ``quiet``)."""
    out = subprocess.DEVNULL if quiet else subprocess.PIPE
    return subprocess.Popen(in_ns(ns, argv), stdout=out, stderr=subprocess.STDOUT, text=True)


@contextmanager
def serving(
    ns: str | None, argv: list[str], port: int, *, tcp: bool = False, quiet: bool = False
) -> Iterator[subprocess.Popen]:
    """Run server ``argv`` in ``ns`` for a ``with`` block, from when ``ss`` shows its ``port``.

    ``ss`` tells, not the server's output (block-buffered). The output is kept
    for the error unless ``quiet``: a server whose output nobody reads while it
    runs could fill the pipe and block. The server is killed (:func:`stop`)
    when the block ends.

    Raises
    ------
    ProbeError
        If the server exits, or has no socket after :data:`SERVER_START_S`;
        with its exit status and the tail of its output.
    """
    srv = spawn(ns, argv, quiet=quiet)
    probe = in_ns(ns, ["ss", "-Htln" if tcp else "-Huln", f"sport = :{port}"])
    deadline = time.monotonic() + SERVER_START_S
    try:
        while not subprocess.run(probe, capture_output=True, text=True).stdout.strip():
            if time.monotonic() > deadline or srv.poll() is not None:
                status = "timeout" if srv.poll() is None else f"exit {srv.returncode}"
                cmd, tail = " ".join(argv), one_line(stop(srv))[-300:]
                raise ProbeError(f"{cmd} in {ns} did not open port {port} ({status}): {tail}")
            time.sleep(0.02)
        yield srv
    finally:
        stop(srv)


def stop(proc: subprocess.Popen) -> str:
    """End ``proc`` (killed if still running); return its output (``""`` if not kept).

    Safe to repeat: the output, read once, is returned again.
    """
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=10)[0] or ""


def wait_bounded(proc: subprocess.Popen, timeout_s: float) -> tuple[str, str]:
    """Wait ``timeout_s`` s at most for ``proc``'s (stdout, stderr) (``""``: not kept).

    Past the bound the process is killed and :class:`ProbeError` raised.
    """
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        stop(proc)
        cmd = " ".join(proc.args)
        raise ProbeError(f"{cmd} exceeded its time bound of {timeout_s:g} s") from None
    return out or "", err or ""


def run_bounded(ns: str | None, argv: list[str], timeout_s: float) -> subprocess.CompletedProcess:
    """Run ``argv`` in ``ns`` to its end, its output captured (:func:`wait_bounded`)."""
    pipe = subprocess.PIPE
    proc = subprocess.Popen(in_ns(ns, argv), stdout=pipe, stderr=pipe, text=True)
    out, err = wait_bounded(proc, timeout_s)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def sockperf(cpu: int, args: list[str], realtime: bool) -> list[str]:
    """``sockperf args`` pinned to ``cpu``; at real-time priority if ``realtime``.

    Blocking ends hand off by wake-ups on one CPU, so other work there must
    not delay them (they sleep between messages: softirq work is never
    starved). Spinning ends stay at normal priority: at real-time priority
    they would starve the softirq threads of their CPUs.
    """
    rt = ["chrt", "--fifo", str(RT_PRIORITY)] if realtime else []
    return [*rt, "taskset", "-c", str(cpu), "sockperf", *args]


def sockperf_server(
    ns: str | None, cpu: int, addr: str, port: int, realtime: bool, extra: tuple[str, ...] = ()
) -> AbstractContextManager[subprocess.Popen]:
    """Run a sockperf server on ``addr:port`` in ``ns`` for a ``with`` block (:func:`serving`)."""
    args = ["server", "-i", addr, "-p", str(port), *extra]
    return serving(ns, sockperf(cpu, args, realtime), port)


def parse_sockperf(text: str) -> dict:
    """``p50_us``, ``p99_us`` (``None`` when absent) and ``samples`` from sockperf's report."""
    pct = {float(q): float(v) for q, v in _PERCENTILE.findall(text)}
    n = _OBSERVATIONS.search(text)
    return {
        "p50_us": pct.get(50.0),
        "p99_us": pct.get(99.0),
        "samples": int(n.group(1)) if n else 0,
    }


def ping_pong(
    ns: str | None,
    cpu: int,
    addr: str,
    port: int,
    duration_s: float,
    payload_bytes: int,
    *,
    realtime: bool,
    extra: tuple[str, ...] = (),
) -> dict:
    """One sockperf ping-pong client run from ``ns`` to a server at ``addr:port``.

    Returns :func:`parse_sockperf`'s dict; raises :class:`ProbeError` with the
    tail of the client's output if it fails or reports no percentiles, or if it
    runs :data:`SLACK_S` past ``duration_s`` seconds.
    """
    args = ["ping-pong", "-i", addr, "-p", str(port), *extra, "-t", f"{duration_s:g}"]
    args += ["--full-rtt", "-m", str(payload_bytes)]
    client = run_bounded(ns, sockperf(cpu, args, realtime), duration_s + SLACK_S)
    res = parse_sockperf(client.stdout + client.stderr)
    if client.returncode != 0 or res["p50_us"] is None:
        tail = one_line(client.stderr or client.stdout)[-300:]
        raise ProbeError(f"sockperf {ns} -> {addr} failed (exit {client.returncode}): {tail}")
    return res


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

    Busy-polling ends spin on CPUs of their own (the client on the first CPU of
    this process's affinity, the server on the last); blocking ends share the
    first at real-time priority (:func:`sockperf`).

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
    cpus = sorted(os.sched_getaffinity(0))
    extra = ("--nonblocked",) if busy else ()
    server_cpu = cpus[-1] if busy else cpus[0]
    with sockperf_server(dst_ns, server_cpu, addr, SOCKPERF_PORT, not busy, extra):
        args = (src_ns, cpus[0], addr, SOCKPERF_PORT, duration_s, payload_bytes)
        return ping_pong(*args, realtime=not busy, extra=extra)


def in_rounds(jobs: dict[Hashable, Callable[[], object]], rounds: int) -> dict[Hashable, list]:
    """Run every job once per round, ``rounds`` rounds (at least one), in ``jobs``' order.

    Interleaved so that the shared machine's changing load falls on every job
    alike; returns each job's results, round by round.
    """
    runs: dict[Hashable, list] = {key: [] for key in jobs}
    for _ in range(max(1, rounds)):
        for key, job in jobs.items():
            runs[key].append(job())
    return runs
