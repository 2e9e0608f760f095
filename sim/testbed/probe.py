"""UDP request/response round-trip probe for the real-kernel replica.

Protocol (one datagram each way, one request in flight at a time):

* ``H`` hello: the server answers ``H<ip>:<port>``, the source it saw, so the
  client learns whether its traffic was source-NATed;
* ``E<seq:8 bytes><padding>`` echo: the server sends the datagram back as is;
* ``B`` bye: the server exits.

The client busy-polls a non-blocking socket and times each round trip with
:func:`time.perf_counter_ns`. :func:`measure_pair` runs server and client as
separate processes inside namespaces (``ip netns exec NS taskset -c CPU python
-m sim.testbed.probe server|client ...``) pinned to different CPUs, and
summarises the RTTs. Every loop is bounded in count and in time, and the
server always exits by itself (bye, idle timeout or total timeout).

Command line (the JSON on stdout is the only output)::

    python -m sim.testbed.probe server [--port P] [--timeout S] [--idle-timeout S] [--block]
    python -m sim.testbed.probe client ADDR PORT [-n N] [--warmup W] ...
    python -m sim.testbed.probe bench [--prefix pns-] [-n N] [--warmup W] [--repeats R]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sim.testbed.errors import ProbeError, one_line

__all__ = [
    "MAX_REQUESTS",
    "MAX_REPEATS",
    "calibrate",
    "measure_pair",
    "percentile",
    "run_client",
    "run_server",
    "summarize",
]

MAX_REQUESTS = 2_000_000
"""Upper bound on ``n + warmup`` for one client run (requests)."""

MAX_REPEATS = 50
"""Upper bound on ``repeats`` in :func:`measure_pair`."""

MAX_PEERS = 16
"""Most distinct peer addresses a server reports."""

_SEQ = struct.Struct("!Q")
_RECV_SIZE = 65535
_REPO_ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------- server
def run_server(
    port: int = 0,
    *,
    bind: str = "0.0.0.0",
    timeout_s: float = 60.0,
    idle_timeout_s: float = 5.0,
    spin: bool = True,
    ready=None,
) -> dict:
    """Serve echo/hello requests until bye, idle timeout or total timeout.

    Parameters
    ----------
    port : int, default 0
        UDP port to bind; 0 picks a free one.
    bind : str, default "0.0.0.0"
        Address to bind.
    timeout_s : float, default 60.0
        Total lifetime bound, in seconds.
    idle_timeout_s : float, default 5.0
        Exit after this many seconds without any datagram, in seconds.
    spin : bool, default True
        Busy-poll a non-blocking socket (lowest latency) instead of blocking
        in ``recvfrom``.
    ready : callable or None, default None
        Called with the bound port once the socket is ready.

    Returns
    -------
    dict
        ``{"port", "served", "send_errors", "peers", "reason"}``; ``peers``
        lists the distinct source addresses of the datagrams received (at
        most :data:`MAX_PEERS`), which proves SNAT or its absence even when
        the replies are lost; ``reason`` is one of ``"bye"``, ``"idle"``,
        ``"timeout"``, ``"terminated"`` (SIGTERM, when installed by
        :func:`main`).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    served = send_errors = 0
    peers: list[str] = []
    reason = "timeout"
    try:
        sock.bind((bind, port))
        port = sock.getsockname()[1]
        if ready is not None:
            ready(port)
        start = time.monotonic()
        deadline = start + timeout_s
        last_seen = start
        recvfrom, sendto = sock.recvfrom, sock.sendto
        if spin:
            sock.setblocking(False)
        else:
            sock.settimeout(0.1)
        polls = 0
        seen_at_check = 0
        while True:
            try:
                data, peer = recvfrom(_RECV_SIZE)
            except (BlockingIOError, TimeoutError):
                polls += 1
                if not spin or polls & 1023 == 0:
                    now = time.monotonic()
                    if served != seen_at_check:
                        seen_at_check, last_seen = served, now
                    if now >= deadline:
                        reason = "timeout"
                        break
                    if now - last_seen >= idle_timeout_s:
                        reason = "idle"
                        break
                continue
            except OSError:
                continue
            served += 1
            if len(peers) < MAX_PEERS and peer[0] not in peers:
                peers.append(peer[0])
            kind = data[:1]
            try:
                if kind == b"E":
                    sendto(data, peer)
                elif kind == b"H":
                    sendto(f"H{peer[0]}:{peer[1]}".encode(), peer)
                elif kind == b"B":
                    reason = "bye"
                    break
            except OSError:  # e.g. no route back to the client: reply is lost
                send_errors += 1
            if not spin and time.monotonic() >= deadline:
                break
    except _Terminated:
        reason = "terminated"
    finally:
        sock.close()
    return {
        "port": port,
        "served": served,
        "send_errors": send_errors,
        "peers": peers,
        "reason": reason,
    }


class _Terminated(Exception):
    """Raised in the server by its SIGTERM handler, so it still reports."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


# ------------------------------------------------------------------- client
def run_client(
    addr: str,
    port: int,
    n: int,
    warmup: int = 0,
    *,
    size: int = 32,
    reply_timeout_s: float = 0.2,
    hello_timeout_s: float = 2.0,
    max_lost: int = 10,
    deadline_s: float = 60.0,
) -> dict:
    """Send ``warmup + n`` requests one at a time, busy-polling for each reply.

    Parameters
    ----------
    addr : str
        Server address.
    port : int
        Server UDP port.
    n : int
        Number of timed round trips.
    warmup : int, default 0
        Untimed round trips sent first.
    size : int, default 32
        Request (and reply) payload size, in bytes (at least 9).
    reply_timeout_s : float, default 0.2
        Wait for one reply before counting the request lost, in seconds.
    hello_timeout_s : float, default 2.0
        How long to retry the initial hello (server start-up, lost replies),
        in seconds.
    max_lost : int, default 10
        Give up after more lost requests than this.
    deadline_s : float, default 60.0
        Bound on the whole run, in seconds.

    Returns
    -------
    dict
        ``{"ok", "error", "rtts_ns", "seen_source", "sent", "received",
        "lost"}``: ``rtts_ns`` holds one round-trip time per timed request, in
        nanoseconds; ``seen_source`` is the ``ip`` the server saw (``None`` if
        no hello reply came back).
    """
    if n < 0 or warmup < 0 or n + warmup > MAX_REQUESTS:
        raise ValueError(f"need 0 <= n + warmup <= {MAX_REQUESTS}, got n={n}, warmup={warmup}")
    size = max(size, 9)
    clock = time.perf_counter_ns
    start = clock()
    deadline = start + int(deadline_s * 1e9)
    result: dict = {
        "ok": False,
        "error": None,
        "rtts_ns": [],
        "seen_source": None,
        "sent": 0,
        "received": 0,
        "lost": 0,
    }
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            sock.connect((addr, port))
        except OSError as err:  # e.g. no route to the server at all
            result["error"] = f"cannot send to {addr}:{port}: {err}"
            return result
        sock.setblocking(False)
        send, recv = sock.send, sock.recv

        # Hello: learn the source address the server sees; retried every 50 ms.
        hello_deadline = min(deadline, start + int(hello_timeout_s * 1e9))
        while result["seen_source"] is None:
            now = clock()
            if now >= hello_deadline:
                result["error"] = (
                    f"no hello reply from {addr}:{port} within "
                    f"{hello_timeout_s:g} s (replies lost or server down)"
                )
                return result
            try:
                send(b"H")
            except OSError as err:
                result["error"] = f"cannot send to {addr}:{port}: {err}"
                return result
            result["sent"] += 1
            retry_at = min(hello_deadline, now + 50_000_000)
            while clock() < retry_at:
                try:
                    data = recv(_RECV_SIZE)
                except OSError:  # nothing yet, or ICMP port unreachable (server starting)
                    continue
                if data[:1] == b"H":
                    result["seen_source"] = data[1:].decode().rsplit(":", 1)[0]
                    result["received"] += 1
                    break
            else:
                result["lost"] += 1

        pad = b"\0" * (size - 9)
        timeout_ns = int(reply_timeout_s * 1e9)
        rtts = result["rtts_ns"]
        append = rtts.append
        sent = received = lost = 0
        for i in range(warmup + n):
            msg = b"E" + _SEQ.pack(i) + pad
            key = msg[:9]
            if clock() >= deadline:
                result["error"] = f"deadline of {deadline_s:g} s reached after {i} requests"
                break
            sent += 1
            t0 = clock()
            send(msg)
            while True:
                try:
                    data = recv(_RECV_SIZE)
                except OSError:  # nothing yet, or an ICMP error on the connected socket
                    if clock() - t0 > timeout_ns:
                        data = None
                        break
                    continue
                t1 = clock()
                if data[:9] == key:
                    break
            if data is None:
                lost += 1
                if lost > max_lost:
                    result["error"] = f"{lost} requests lost (more than max_lost={max_lost})"
                    break
                continue
            received += 1
            if i >= warmup:
                append(t1 - t0)
        result["sent"] += sent
        result["received"] += received
        result["lost"] += lost
        result["ok"] = result["error"] is None and len(rtts) == n
        return result
    finally:
        try:
            for _ in range(3):
                sock.send(b"B")
        except OSError:
            pass
        sock.close()


# ---------------------------------------------------------------- statistics
def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Percentile by linear interpolation (NumPy's default method).

    Parameters
    ----------
    sorted_values : sequence of float
        Values in ascending order (non-empty).
    q : float
        Percentile in [0, 100].

    Returns
    -------
    float
        The interpolated percentile, in the values' unit.
    """
    if not sorted_values:
        raise ValueError("percentile of an empty sequence")
    pos = (len(sorted_values) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summarize(rtts_ns: Sequence[int]) -> dict:
    """Summary statistics of round-trip times.

    Parameters
    ----------
    rtts_ns : sequence of int
        Round-trip times, in nanoseconds.

    Returns
    -------
    dict
        ``n`` and ``p50_us``, ``p99_us``, ``mean_us``, ``min_us``, ``max_us``
        in microseconds (``None`` when ``rtts_ns`` is empty).
    """
    if not rtts_ns:
        return {
            "n": 0,
            "p50_us": None,
            "p99_us": None,
            "mean_us": None,
            "min_us": None,
            "max_us": None,
        }
    s = sorted(rtts_ns)
    return {
        "n": len(s),
        "p50_us": percentile(s, 50) / 1e3,
        "p99_us": percentile(s, 99) / 1e3,
        "mean_us": statistics.fmean(s) / 1e3,
        "min_us": s[0] / 1e3,
        "max_us": s[-1] / 1e3,
    }


# -------------------------------------------------------------- orchestration
def _env() -> dict:
    env = dict(os.environ)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(_REPO_ROOT) + (os.pathsep + old if old else "")
    return env


def _in_ns(ns: str | None, cpu: int | None, args: Sequence[str]) -> list[str]:
    cmd: list[str] = ["ip", "netns", "exec", ns] if ns else []
    if cpu is not None:
        cmd += ["taskset", "-c", str(cpu)]
    return [*cmd, sys.executable, "-m", "sim.testbed.probe", *args]


def _default_cpus() -> tuple[int | None, int | None]:
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        return cpus[0], cpus[1]
    return cpus[0], cpus[0]


def _stop(proc: subprocess.Popen, grace_s: float) -> None:
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _one_repeat(
    src_ns,
    dst_ns,
    dst_addr,
    n,
    warmup,
    *,
    cpus,
    size,
    timeout_s,
    reply_timeout_s,
    hello_timeout_s,
    max_lost,
    spin_server,
    server_bind="0.0.0.0",
) -> dict:
    client_cpu, server_cpu = cpus
    server_args = [
        "server",
        "--bind",
        server_bind,
        "--timeout",
        f"{timeout_s + hello_timeout_s + 5:g}",
        "--idle-timeout",
        f"{max(5.0, hello_timeout_s + 1):g}",
    ]
    if not spin_server:
        server_args.append("--block")
    try:
        server = subprocess.Popen(
            _in_ns(dst_ns, server_cpu, server_args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            cwd=str(_REPO_ROOT),
        )
    except FileNotFoundError as err:
        raise ProbeError(
            f"cannot start probe server: {err.filename} not found. Fix: apt-get "
            "install -y iproute2 util-linux"
        ) from None
    try:
        ready, _, _ = select.select([server.stdout], [], [], 15.0)
        line = server.stdout.readline() if ready else ""
        if not line:
            server.kill()
            _, err = server.communicate(timeout=10)
            raise ProbeError(
                f"probe server in {dst_ns or 'current namespace'} did not start: "
                f"{one_line(err or '') or 'no output within 15 s'}"
            )
        port = json.loads(line)["port"]
        client_args = [
            "client",
            str(dst_addr),
            str(port),
            "-n",
            str(n),
            "--warmup",
            str(warmup),
            "--size",
            str(size),
            "--reply-timeout",
            f"{reply_timeout_s:g}",
            "--hello-timeout",
            f"{hello_timeout_s:g}",
            "--max-lost",
            str(max_lost),
            "--deadline",
            f"{timeout_s:g}",
        ]
        try:
            client = subprocess.run(
                _in_ns(src_ns, client_cpu, client_args),
                capture_output=True,
                text=True,
                env=_env(),
                cwd=str(_REPO_ROOT),
                timeout=timeout_s + hello_timeout_s + 15,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ProbeError(
                f"probe client in {src_ns or 'current namespace'} exceeded its "
                "time bound and was killed"
            ) from None
        if client.returncode != 0:
            raise ProbeError(
                f"probe client in {src_ns or 'current namespace'} failed "
                f"(exit {client.returncode}): {one_line(client.stderr)}"
            )
        result = json.loads(client.stdout)
        if result.get("seen_source") is None:
            # No reply came back, so the bye may not have reached the server
            # either: ask it to report and exit now instead of idling.
            server.terminate()
        _stop(server, grace_s=2.0 + hello_timeout_s)
        tail = server.stdout.read().strip().splitlines()
        result["server"] = json.loads(tail[-1]) if tail and server.returncode == 0 else None
        return result
    finally:
        if server.poll() is None:
            server.kill()
            server.wait(timeout=10)
        server.stdout.close()
        server.stderr.close()


def measure_pair(
    src_ns: str | None,
    dst_ns: str | None,
    dst_addr: str,
    n: int = 20000,
    warmup: int = 2000,
    repeats: int = 3,
    *,
    cpus: tuple[int, int] | None = None,
    size: int = 32,
    timeout_s: float = 60.0,
    reply_timeout_s: float = 0.2,
    hello_timeout_s: float = 2.0,
    max_lost: int = 10,
    spin_server: bool = True,
    server_bind: str = "0.0.0.0",
    check: bool = True,
    keep_rtts: bool = False,
) -> dict:
    """Measure UDP request/response RTTs from ``src_ns`` to a server in ``dst_ns``.

    For each repeat a fresh server (in ``dst_ns``, on CPU ``cpus[1]``) and
    client (in ``src_ns``, on CPU ``cpus[0]``) process are started; the client
    sends ``warmup`` untimed then ``n`` timed requests, one at a time.

    Parameters
    ----------
    src_ns, dst_ns : str or None
        Namespaces of client and server; ``None`` means the caller's own
        namespace (then no root is needed, e.g. for ``127.0.0.1``). They may be
        equal (``dst_addr="127.0.0.1"`` measures localhost inside a pod).
    dst_addr : str
        Address the client sends to.
    n : int, default 20000
        Timed round trips per repeat.
    warmup : int, default 2000
        Untimed round trips per repeat, sent first.
    repeats : int, default 3
        Independent server/client runs (1..50).
    cpus : (int, int) or None, default None
        CPUs for (client, server); ``None`` picks the first two allowed CPUs.
    size : int, default 32
        Datagram payload size, in bytes.
    timeout_s : float, default 60.0
        Bound on one client run, in seconds (server and subprocesses are
        bounded a few seconds beyond it).
    reply_timeout_s : float, default 0.2
        Per-request reply timeout, in seconds.
    hello_timeout_s : float, default 2.0
        How long the client retries its first (hello) request, in seconds.
    max_lost : int, default 10
        Lost requests tolerated per repeat before the client gives up.
    spin_server : bool, default True
        Server busy-polls (else blocks in ``recvfrom``).
    server_bind : str, default "0.0.0.0"
        Address the server binds. Binding the probed address makes the
        replies leave from it even in a namespace with several addresses (a
        node: ``eth0`` and ``cbr0``), where an unbound reply would take the
        routing's preferred source and miss the client's connected socket.
    check : bool, default True
        Raise :class:`ProbeError` if any repeat failed (lost replies, timeout).
    keep_rtts : bool, default False
        Include the raw RTTs (ns) of each repeat under ``"rtts_ns"``.

    Returns
    -------
    dict
        - ``ok``: every repeat completed;
        - ``per_repeat``: list of ``{"p50_us", "p99_us", "mean_us", "min_us",
          "max_us", "n", "lost", "seen_source", "error", "ok", "server"}``,
          times in microseconds; ``server`` is the server's own report
          ``{"port", "served", "send_errors", "reason"}`` (``send_errors > 0``
          means it could not route its replies);
        - ``median_p50_us``, ``median_p99_us``: medians over repeats, in
          microseconds (``None`` if no repeat produced RTTs);
        - ``spread_p50_us``, ``spread_p99_us``: ``(min, max)`` over repeats,
          in microseconds (``None`` likewise);
        - ``seen_source``: the client address the server saw (``None`` if no
          reply ever came back);
        - ``lost``: total lost requests;
        - the inputs ``src_ns``, ``dst_ns``, ``dst_addr``, ``n``, ``warmup``,
          ``repeats`` (and ``rtts_ns`` if ``keep_rtts``).

    Raises
    ------
    ProbeError
        If a process cannot start or exceeds its bound, or (with ``check``)
        a repeat failed.
    ValueError
        If ``n``, ``warmup`` or ``repeats`` are out of bounds.
    """
    if not 1 <= repeats <= MAX_REPEATS:
        raise ValueError(f"repeats must be in 1..{MAX_REPEATS}, got {repeats}")
    if n < 1 or warmup < 0 or n + warmup > MAX_REQUESTS:
        raise ValueError(f"need n >= 1, warmup >= 0, n + warmup <= {MAX_REQUESTS}")
    cpus = cpus if cpus is not None else _default_cpus()
    per_repeat = []
    raw = []
    for _ in range(repeats):
        res = _one_repeat(
            src_ns,
            dst_ns,
            dst_addr,
            n,
            warmup,
            cpus=cpus,
            size=size,
            timeout_s=timeout_s,
            reply_timeout_s=reply_timeout_s,
            hello_timeout_s=hello_timeout_s,
            max_lost=max_lost,
            spin_server=spin_server,
            server_bind=server_bind,
        )
        summary = summarize(res["rtts_ns"])
        summary.update(
            lost=res["lost"],
            seen_source=res["seen_source"],
            error=res["error"],
            ok=res["ok"],
            server=res.get("server"),
        )
        per_repeat.append(summary)
        if keep_rtts:
            raw.append(res["rtts_ns"])
    p50s = [r["p50_us"] for r in per_repeat if r["p50_us"] is not None]
    p99s = [r["p99_us"] for r in per_repeat if r["p99_us"] is not None]
    sources = [r["seen_source"] for r in per_repeat if r["seen_source"]]
    out = {
        "src_ns": src_ns,
        "dst_ns": dst_ns,
        "dst_addr": str(dst_addr),
        "n": n,
        "warmup": warmup,
        "repeats": repeats,
        "ok": all(r["ok"] for r in per_repeat),
        "per_repeat": per_repeat,
        "median_p50_us": statistics.median(p50s) if p50s else None,
        "median_p99_us": statistics.median(p99s) if p99s else None,
        "spread_p50_us": (min(p50s), max(p50s)) if p50s else None,
        "spread_p99_us": (min(p99s), max(p99s)) if p99s else None,
        "seen_source": sources[0] if sources else None,
        "lost": sum(r["lost"] for r in per_repeat),
    }
    if keep_rtts:
        out["rtts_ns"] = raw
    if check and not out["ok"]:
        errors = sorted({r["error"] or "incomplete" for r in per_repeat if not r["ok"]})
        raise ProbeError(
            f"probe {src_ns or '-'} -> {dst_addr} ({dst_ns or '-'}) failed: " + "; ".join(errors)
        )
    return out


def calibrate(
    prefix: str = "pns-", n: int = 20000, warmup: int = 2000, repeats: int = 3, **kwargs
) -> dict:
    """Build :func:`~sim.testbed.topology.example_topology`, measure, tear down.

    Measures, from ``pod-a`` on ``node1``: localhost inside the pod, a pod on
    the same node, a pod on the other node, the masqueraded ``internet``
    external and the non-masqueraded ``intranet`` external.

    Parameters
    ----------
    prefix : str, default "pns-"
        Namespace prefix (no namespace with it may exist).
    n, warmup, repeats : int
        As in :func:`measure_pair`.
    **kwargs
        Passed on to :func:`measure_pair`.

    Returns
    -------
    dict
        ``{case: measure_pair result}`` for cases ``localhost``,
        ``same_node``, ``cross_node``, ``external_masq``, ``external_nomasq``.
    """
    from sim.testbed import netns
    from sim.testbed.topology import example_topology

    netns.require(probe=True)
    topo = example_topology(prefix)
    src = topo.pod_ns("pod-a")
    cases = {
        "localhost": (src, "127.0.0.1"),
        "same_node": (topo.pod_ns("pod-b"), str(topo.pod("pod-b").address.ip)),
        "cross_node": (topo.pod_ns("pod-c"), str(topo.pod("pod-c").address.ip)),
        "external_masq": (topo.external_ns("internet"), str(topo.external("internet").address.ip)),
        "external_nomasq": (
            topo.external_ns("intranet"),
            str(topo.external("intranet").address.ip),
        ),
    }
    netns.up(topo)
    try:
        return {
            name: measure_pair(src, dst_ns, addr, n, warmup, repeats, **kwargs)
            for name, (dst_ns, addr) in cases.items()
        }
    finally:
        netns.down(prefix)


# ------------------------------------------------------------------------ CLI
def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints one JSON document per run."""
    parser = argparse.ArgumentParser(
        prog="python -m sim.testbed.probe", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server", help="echo server (prints {'port': P} when ready)")
    s.add_argument("--port", type=int, default=0)
    s.add_argument("--bind", default="0.0.0.0")
    s.add_argument("--timeout", type=float, default=60.0, help="total lifetime, s")
    s.add_argument("--idle-timeout", type=float, default=5.0, help="exit when idle, s")
    s.add_argument("--block", action="store_true", help="block in recvfrom instead of spinning")
    c = sub.add_parser("client", help="send requests, print JSON result")
    c.add_argument("addr")
    c.add_argument("port", type=int)
    c.add_argument("-n", type=int, default=1000)
    c.add_argument("--warmup", type=int, default=100)
    c.add_argument("--size", type=int, default=32)
    c.add_argument("--reply-timeout", type=float, default=0.2)
    c.add_argument("--hello-timeout", type=float, default=2.0)
    c.add_argument("--max-lost", type=int, default=10)
    c.add_argument("--deadline", type=float, default=60.0)
    b = sub.add_parser("bench", help="build the example replica, measure, tear down")
    b.add_argument("--prefix", default="pns-")
    b.add_argument("-n", type=int, default=20000)
    b.add_argument("--warmup", type=int, default=2000)
    b.add_argument("--repeats", type=int, default=3)
    b.add_argument("--block", action="store_true", help="server blocks instead of spinning")
    args = parser.parse_args(argv)

    if args.cmd == "server":

        def ready(port: int) -> None:
            print(json.dumps({"port": port, "pid": os.getpid()}), flush=True)

        signal.signal(signal.SIGTERM, _on_sigterm)

        result = run_server(
            args.port,
            bind=args.bind,
            timeout_s=args.timeout,
            idle_timeout_s=args.idle_timeout,
            spin=not args.block,
            ready=ready,
        )
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a late SIGTERM must not cut the report
        print(json.dumps(result), flush=True)
    elif args.cmd == "client":
        result = run_client(
            args.addr,
            args.port,
            args.n,
            args.warmup,
            size=args.size,
            reply_timeout_s=args.reply_timeout,
            hello_timeout_s=args.hello_timeout,
            max_lost=args.max_lost,
            deadline_s=args.deadline,
        )
        print(json.dumps(result), flush=True)
    else:
        result = calibrate(
            args.prefix, args.n, args.warmup, args.repeats, spin_server=not args.block
        )
        print(json.dumps(result, indent=2), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
