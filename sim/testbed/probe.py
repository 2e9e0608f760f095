"""A small UDP echo that reports the source address it saw: the SNAT verdicts.

Round trips are timed with ``sockperf`` (:mod:`sim.testbed.timing`); this probe
only answers *who received the request and from which source address*:

* the server answers a hello ``H`` with ``H<ip>``, the source it saw, so the
  client learns whether its traffic was source-NATed; it counts what it
  received and from whom, so a lost reply still shows the source;
* :func:`observe` starts one server in every namespace that owns the probed
  address (several in docker-default mode: the kernel's misdelivery shows as
  the wrong one answering) and a client in the sender's namespace.

Every loop is bounded in count and time; servers exit on SIGTERM, idle or
total timeout. Command line (one JSON document on stdout)::

    python -m sim.testbed.probe server --bind ADDR [--port P] [--timeout S]
    python -m sim.testbed.probe client ADDR PORT [--hello-timeout S]
"""

from __future__ import annotations

import argparse
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sim.testbed.errors import ProbeError, one_line

__all__ = ["PROBE_PORT", "observe", "run_client", "run_server"]

PROBE_PORT = 47001
"""UDP port every probe server binds (one per namespace, so no clash)."""

MAX_PEERS = 16
"""Most distinct source addresses a server reports."""

_REPO_ROOT = Path(__file__).resolve().parents[2]


class _Terminated(Exception):
    """Raised in the server by its SIGTERM handler, so it still reports."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated


def run_server(bind: str, port: int = PROBE_PORT, *, timeout_s: float = 30.0, ready=None) -> dict:
    """Answer hellos until SIGTERM (when installed), bye or ``timeout_s``.

    Returns
    -------
    dict
        ``served`` (datagrams received), ``send_errors`` (replies the kernel
        refused, e.g. no route back), ``peers`` (distinct source addresses,
        at most :data:`MAX_PEERS`), ``reason``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    served = send_errors = 0
    peers: list[str] = []
    reason = "timeout"
    try:
        sock.bind((bind, port))
        sock.settimeout(0.1)
        if ready is not None:
            ready(sock.getsockname()[1])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                data, peer = sock.recvfrom(2048)
            except (TimeoutError, BlockingIOError):
                continue
            served += 1
            if len(peers) < MAX_PEERS and peer[0] not in peers:
                peers.append(peer[0])
            if data[:1] == b"B":
                reason = "bye"
                break
            try:
                sock.sendto(b"H" + peer[0].encode(), peer)
            except OSError:  # e.g. no route back to the client: the reply is lost
                send_errors += 1
    except _Terminated:
        reason = "terminated"
    finally:
        sock.close()
    return {"served": served, "send_errors": send_errors, "peers": peers, "reason": reason}


def run_client(addr: str, port: int = PROBE_PORT, *, hello_timeout_s: float = 1.0) -> dict:
    """Send hellos every 50 ms until one is answered or ``hello_timeout_s`` passes.

    Returns
    -------
    dict
        ``seen_source`` (the address the server saw, ``None`` without a reply)
        and ``error``.
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    deadline = time.monotonic() + hello_timeout_s
    try:
        sock.connect((addr, port))
        while time.monotonic() < deadline:
            sock.send(b"H")
            try:
                data = sock.recv(2048)
            except (TimeoutError, ConnectionRefusedError):
                continue
            if data[:1] == b"H":
                return {"seen_source": data[1:].decode(), "error": None}
        return {
            "seen_source": None,
            "error": f"no reply from {addr}:{port} in {hello_timeout_s:g} s",
        }
    except OSError as err:  # e.g. no route at all
        return {"seen_source": None, "error": f"cannot send to {addr}:{port}: {err}"}
    finally:
        sock.close()


def _cmd(ns: str | None, args: Sequence[str]) -> list[str]:
    pre = ["ip", "netns", "exec", ns] if ns else []
    return [*pre, sys.executable, "-m", "sim.testbed.probe", *args]


def _env() -> dict:
    old = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(_REPO_ROOT) + (os.pathsep + old if old else "")}


def _start_server(ns: str | None, bind: str, timeout_s: float) -> subprocess.Popen:
    args = ["server", "--bind", bind, "--timeout", f"{timeout_s:g}"]
    proc = subprocess.Popen(
        _cmd(ns, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    )
    ready, _, _ = select.select([proc.stdout], [], [], 15.0)
    if not (ready and proc.stdout.readline()):
        proc.kill()
        _, err = proc.communicate(timeout=10)
        raise ProbeError(
            f"probe server in {ns or 'this namespace'} did not start: {one_line(err) or 'timeout'}"
        )
    return proc


def _report(proc: subprocess.Popen) -> dict | None:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate(timeout=10)
        return None
    lines = out.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def observe(
    src_ns: str | None, dst_nss: Sequence[str | None], addr: str, *, hello_timeout_s: float = 1.0
) -> dict:
    """Send hellos from ``src_ns`` to ``addr`` with a server in each of ``dst_nss``.

    Parameters
    ----------
    src_ns : str or None
        Client namespace (``None``: this one).
    dst_nss : sequence of str or None
        Namespaces of every owner of ``addr`` (the intended receiver first).
    addr : str
        Address probed (servers bind it).
    hello_timeout_s : float, default 1.0
        How long the client keeps trying, seconds.

    Returns
    -------
    dict
        ``seen_source`` and ``error`` from the client; ``servers``: each
        namespace's report (``served``, ``send_errors``, ``peers``).
    """
    procs = []
    try:
        for ns in dst_nss:
            procs.append((ns, _start_server(ns, addr, hello_timeout_s + 20)))
        args = ["client", addr, str(PROBE_PORT), "--hello-timeout", f"{hello_timeout_s:g}"]
        try:
            client = subprocess.run(
                _cmd(src_ns, args),
                capture_output=True,
                text=True,
                env=_env(),
                timeout=hello_timeout_s + 20,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise ProbeError(f"probe client in {src_ns} exceeded its time bound") from None
        if client.returncode != 0:
            raise ProbeError(f"probe client in {src_ns} failed: {one_line(client.stderr)}")
        result = json.loads(client.stdout)
        result["servers"] = {ns: _report(p) for ns, p in procs}
        return result
    finally:
        for _, p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; prints one JSON document."""
    parser = argparse.ArgumentParser(prog="python -m sim.testbed.probe")
    sub = parser.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("server")
    s.add_argument("--bind", required=True)
    s.add_argument("--port", type=int, default=PROBE_PORT)
    s.add_argument("--timeout", type=float, default=30.0)
    c = sub.add_parser("client")
    c.add_argument("addr")
    c.add_argument("port", type=int)
    c.add_argument("--hello-timeout", type=float, default=1.0)
    args = parser.parse_args(argv)
    if args.cmd == "server":
        signal.signal(signal.SIGTERM, _on_sigterm)
        result = run_server(
            args.bind,
            args.port,
            timeout_s=args.timeout,
            ready=lambda port: print(json.dumps({"port": port}), flush=True),
        )
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a late SIGTERM must not cut the report
    else:
        result = run_client(args.addr, args.port, hello_timeout_s=args.hello_timeout)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
