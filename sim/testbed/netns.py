"""Build, inspect and tear down a rendered replica (needs root).

Everything lives in network namespaces named ``<prefix>...``; the host's own
namespace is never touched. :func:`up` runs the :attr:`Replica.steps
<sim.testbed.render.Replica.steps>` rendered from the control plane: one
``ip -batch`` for the namespaces, one ``sysctl`` and one ``ip -batch`` per
namespace, one ``nft -f`` per node. Veth pairs are created with both ends
already in their namespaces, so no device ever exists in the root namespace.

:func:`down` needs no state: it kills (by pid) every process still running in
the namespaces with the prefix and deletes them, which destroys their links,
routes and nftables tables (``ip-netns(8)``).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence

from sim.testbed.errors import TestbedError, one_line
from sim.testbed.render import Replica, check_prefix

_FIXES = {
    "ip": "apt-get install -y iproute2",
    "nft": "apt-get update && apt-get install -y nftables",
    "taskset": "apt-get install -y util-linux",
    "chrt": "apt-get install -y util-linux",
    "sysctl": "apt-get install -y procps",
    "sockperf": "apt-get update && apt-get install -y sockperf",
}
_COMMAND_TIMEOUT_S = 30.0


def run(
    cmd: Sequence[str], *, stdin: str | None = None, timeout_s: float = _COMMAND_TIMEOUT_S
) -> str:
    """Run one command (no shell) and return its stdout.

    Parameters
    ----------
    cmd : sequence of str
        Program and arguments.
    stdin : str or None, default None
        Text fed to its standard input.
    timeout_s : float, default 30.0
        Wall-clock bound, seconds.

    Raises
    ------
    TestbedError
        If the program is missing, times out or exits non-zero (the message
        holds the command and its stderr).
    """
    text = shlex.join(cmd)
    try:
        proc = subprocess.run(
            list(cmd), input=stdin, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except FileNotFoundError:
        raise TestbedError(
            f"command `{text}` failed: {cmd[0]} not found", fix=_FIXES.get(cmd[0], "install it")
        ) from None
    except subprocess.TimeoutExpired:
        raise TestbedError(f"command `{text}` timed out after {timeout_s:g} s") from None
    if proc.returncode != 0:
        err = one_line(proc.stderr or proc.stdout or "") or "(no output)"
        raise TestbedError(f"command `{one_line(text)}` failed (exit {proc.returncode}): {err}")
    return proc.stdout


def missing_requirements(tools: Sequence[str] = ("ip", "nft", "sysctl")) -> list[str]:
    """One line per missing requirement (root, each tool), each with its fix.

    Parameters
    ----------
    tools : sequence of str, default ("ip", "nft", "sysctl")
        Programs needed on ``PATH``.
    """
    problems = []
    if os.geteuid() != 0:
        problems.append(
            "not running as root (network namespaces need CAP_SYS_ADMIN/NET_ADMIN). "
            "Fix: run as root"
        )
    for tool in tools:
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` not found on PATH. Fix: {_FIXES[tool]}")
    return problems


def require(tools: Sequence[str] = ("ip", "nft", "sysctl")) -> None:
    """Raise :class:`TestbedError` naming every missing requirement and its fix."""
    problems = missing_requirements(tools)
    if problems:
        raise TestbedError(
            "testbed requirements missing: " + "; ".join(p.rstrip(".") for p in problems)
        )


def list_namespaces(prefix: str) -> list[str]:
    """Sorted names of the existing network namespaces starting with ``prefix``."""
    check_prefix(prefix)
    names = (line.split()[0] for line in run(["ip", "netns", "list"]).splitlines() if line.split())
    return sorted(n for n in names if n.startswith(prefix))


def _pids(ns: str) -> list[int]:
    try:
        return [int(tok) for tok in run(["ip", "netns", "pids", ns]).split() if tok.isdigit()]
    except TestbedError:
        return []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            return fh.read().rsplit(")", 1)[-1].split()[0] not in ("Z", "X")
    except OSError:
        return False


def down(prefix: str, *, timeout_s: float = 10.0) -> list[str]:
    """Remove every namespace whose name starts with ``prefix``; idempotent.

    Processes still running inside (an orphaned probe) are killed by pid first.

    Parameters
    ----------
    prefix : str
        Namespace prefix, e.g. ``"pns-"``.
    timeout_s : float, default 10.0
        Bound on waiting for killed processes to exit, seconds.

    Returns
    -------
    list of str
        The namespaces removed.
    """
    check_prefix(prefix)
    require(("ip",))
    names = list_namespaces(prefix)
    pids = {pid for ns in names for pid in _pids(ns) if pid != os.getpid()}
    for pid in sorted(pids):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout_s
    while pids and time.monotonic() < deadline:
        pids = {pid for pid in pids if _alive(pid)}
        time.sleep(0.01 if pids else 0)
    if names:
        run(["ip", "-force", "-batch", "-"], stdin="".join(f"netns delete {n}\n" for n in names))
    left = list_namespaces(prefix)
    if left:
        raise TestbedError(f"namespaces still present after down({prefix!r}): {left}")
    return names


def status(prefix: str) -> dict[str, dict]:
    """``{namespace: {"links": [{"name", "state", "master", "addresses"}], "routes", "pids"}}``.

    ``addresses`` are ``"a.b.c.d/len"``; ``routes`` the destinations of the
    main table (``default`` or a CIDR). Empty when nothing exists.
    """
    require(("ip",))
    out: dict[str, dict] = {}
    for ns in list_namespaces(prefix):
        links = json.loads(run(["ip", "-n", ns, "-j", "addr", "show"]) or "[]")
        routes = json.loads(run(["ip", "-n", ns, "-j", "route", "show"]) or "[]")
        out[ns] = {
            "links": [
                {
                    "name": link.get("ifname"),
                    "state": link.get("operstate"),
                    "master": link.get("master"),
                    "addresses": [
                        f"{a['local']}/{a['prefixlen']}"
                        for a in link.get("addr_info", [])
                        if a.get("family") == "inet"
                    ],
                }
                for link in links
            ],
            "routes": [_cidr(r["dst"]) for r in routes],
            "pids": _pids(ns),
        }
    return out


def _cidr(dst: str) -> str:
    return dst if dst == "default" or "/" in dst else f"{dst}/32"


def up(replica: Replica, *, replace: bool = False) -> list[str]:
    """Build ``replica``: run its rendered steps.

    Parameters
    ----------
    replica : Replica
        From :func:`sim.testbed.render.render`.
    replace : bool, default False
        Remove existing namespaces with the prefix first instead of failing.

    Returns
    -------
    list of str
        The namespaces created, in build order.

    Raises
    ------
    TestbedError
        Missing requirement, an existing replica (without ``replace``) or a
        failed command; the partial replica is removed before raising.
    """
    require()
    existing = list_namespaces(replica.prefix)
    if existing and not replace:
        raise TestbedError(
            f"namespaces with prefix {replica.prefix!r} already exist: {existing}",
            fix=f"run `podnetsim testbed down --prefix {replica.prefix}` or pass --replace",
        )
    if existing:
        down(replica.prefix)
    try:
        for step in replica.steps:
            run(step.argv, stdin=step.stdin)
    except BaseException:
        down(replica.prefix)
        raise
    return [ns.name for ns in replica.namespaces]
