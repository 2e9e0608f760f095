"""Shared by the real-kernel tests: the skip marker and a look at the root namespace."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator

import pytest

from sim.testbed import netns
from sim.testbed.errors import TestbedError

PID = os.getpid()
TOOLS = ("ip", "nft", "sysctl", "taskset", "chrt", "sockperf")


def _kernel_problem(prefix: str) -> str | None:
    """Try namespaces, a bridge, veth and nftables masquerade in a scratch namespace."""
    ns = f"{prefix}chk"
    steps = [
        ["ip", "netns", "add", ns],
        ["ip", "-n", ns, "link", "add", "b0", "type", "bridge"],
        ["ip", "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1"],
        ["ip", "netns", "exec", ns, "nft", "-f", "-"],
    ]
    rules = (
        "table ip t {\n chain p {\n  type nat hook postrouting priority 100;\n"
        '  oifname "v0" masquerade\n }\n}\n'
    )
    try:
        for cmd in steps:
            netns.run(cmd, stdin=rules if "nft" in cmd else None)
    except TestbedError as err:
        return f"kernel feature missing: {err}"
    finally:
        subprocess.run(["ip", "netns", "delete", ns], capture_output=True, check=False)
    return None


def _skip_reason() -> str | None:
    problems = netns.missing_requirements(TOOLS)
    if problems:
        # Say why; a root CI job installs the tools (.ci/run), so there a skip is a failure.
        if os.geteuid() == 0:
            raise RuntimeError("running as root but: " + "; ".join(problems))
        return "; ".join(problems)
    return _kernel_problem(f"pnc-{PID}-")


_REASON = _skip_reason()

#: Skip (with the reason) where root, the tools or kernel features are missing.
requires_kernel = pytest.mark.skipif(
    _REASON is not None, reason=f"real-kernel testbed unavailable: {_REASON}"
)


def root_state() -> tuple[set[str], str]:
    """Interface names and nftables tables of the root (host) namespace."""
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True)
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.stdout.splitlines()}
    return names, tables


@contextlib.contextmanager
def built_replica(scenario, prefix: str, overrides: dict | None = None) -> Iterator:
    """Build ``scenario``'s replica under ``prefix`` for a test module, then remove it.

    Any leftover under ``prefix`` is removed first; afterwards the root namespace
    must be as it was (no interface or nftables table left behind).
    """
    from sim.testbed.replica import build, load_replica

    netns.down(prefix)
    before = root_state()
    r = load_replica(scenario, overrides, prefix=prefix)
    build(r)
    try:
        yield r
    finally:
        netns.down(prefix)
        assert root_state() == before, "the root namespace changed"
