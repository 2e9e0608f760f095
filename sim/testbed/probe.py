"""A small UDP echo that reports the source address it saw: the SNAT verdicts.

Round trips are timed with ``sockperf`` (:mod:`sim.testbed.timing`); this probe
only answers *who received a request and from which source address*.
:func:`observe` opens, in this one process, a server socket in every namespace
that owns the probed address (several in docker-default mode, where the
kernel's misdelivery shows as the wrong one receiving) and a client socket in
the sender's namespace: a socket stays in the network namespace it was created
in (``setns(2)``, ``network_namespaces(7)``). The client sends a hello every
50 ms; a server answers with the source address it saw and counts what it
received and from whom, so a lost reply still shows the source. Every loop is
bounded in time; no process is started.
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from sim.testbed.errors import ProbeError

PROBE_PORT = 47001
"""UDP port every probe server binds (one per namespace, so no clash)."""

_CLONE_NEWNET = 0x40000000
_HELLO_EVERY_S = 0.05


@contextmanager
def _in_netns(ns: str | None) -> Iterator[None]:
    """Run the block with this thread in namespace ``ns`` (``None``: stay)."""
    if ns is None:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    try:
        target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    except OSError as err:
        os.close(home)
        raise ProbeError(f"no network namespace {ns}: {err.strerror}") from None
    try:
        if libc.setns(target, _CLONE_NEWNET) != 0:
            raise ProbeError(f"setns({ns}) failed: {os.strerror(ctypes.get_errno())}")
        yield
    finally:
        if libc.setns(home, _CLONE_NEWNET) != 0:  # never go on in the wrong namespace
            raise SystemExit(f"cannot return to the original network namespace from {ns}")
        os.close(target)
        os.close(home)


def _socket(ns: str | None, bind: tuple[str, int] | None = None) -> socket.socket:
    with _in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        if bind is not None:
            sock.bind(bind)
    return sock


def _serve(sock: socket.socket, report: dict) -> None:
    """Answer every waiting hello with the source address seen."""
    while True:
        try:
            _, peer = sock.recvfrom(2048)
        except BlockingIOError:
            return
        report["served"] += 1
        if peer[0] not in report["peers"]:
            report["peers"].append(peer[0])
        try:
            sock.sendto(b"H" + peer[0].encode(), peer)
        except OSError:  # e.g. no route back to the client: the reply is lost
            report["send_errors"] += 1


def _hello(client: socket.socket, servers: dict, hello_timeout_s: float) -> str | None:
    """Send hellos until one is answered (the source seen) or the time is up (None)."""
    deadline, next_hello = time.monotonic() + hello_timeout_s, 0.0
    socks = {s: ns for ns, (s, _) in servers.items()}
    while (now := time.monotonic()) < deadline:
        if now >= next_hello:
            client.send(b"H")
            next_hello = now + _HELLO_EVERY_S
        ready, _, _ = select.select([client, *socks], [], [], min(deadline, next_hello) - now)
        for sock in ready:
            if sock is not client:
                _serve(sock, servers[socks[sock]][1])
                continue
            try:
                data = client.recv(2048)
            except (BlockingIOError, ConnectionRefusedError):
                continue
            if data[:1] == b"H":
                return data[1:].decode()
    return None


def observe(
    src_ns: str | None,
    dst_nss: Sequence[str | None],
    addr: str,
    *,
    port: int = PROBE_PORT,
    hello_timeout_s: float = 1.0,
) -> dict:
    """Send hellos from ``src_ns`` to ``addr`` with a server in each of ``dst_nss``.

    Parameters
    ----------
    src_ns : str or None
        Client namespace (``None``: this one).
    dst_nss : sequence of str or None
        Namespaces of every owner of ``addr`` (the intended receiver first).
    addr : str
        Address probed (the servers bind it, so replies leave from it).
    port : int, default PROBE_PORT
        UDP port of the servers (0 with a single server: any free port).
    hello_timeout_s : float, default 1.0
        How long the client keeps trying, seconds.

    Returns
    -------
    dict
        ``seen_source`` (address a server reported, ``None`` without a
        reply), ``error`` and ``servers``: per namespace ``served``,
        ``send_errors`` and ``peers`` (the source addresses received).
    """
    servers: dict = {}
    client = None
    try:
        for ns in dst_nss:
            sock = _socket(ns, (addr, port))
            port = sock.getsockname()[1]
            servers[ns] = (sock, {"served": 0, "send_errors": 0, "peers": []})
        client = _socket(src_ns)
        try:
            client.connect((addr, port))
            seen, error = _hello(client, servers, hello_timeout_s), None
        except OSError as err:  # e.g. no route at all
            seen, error = None, f"cannot send to {addr}:{port}: {err.strerror}"
        if seen is None and error is None:
            error = f"no reply from {addr}:{port} in {hello_timeout_s:g} s"
        return {
            "seen_source": seen,
            "error": error,
            "servers": {ns: r for ns, (_, r) in servers.items()},
        }
    finally:
        for sock, _ in servers.values():
            sock.close()
        if client is not None:
            client.close()
