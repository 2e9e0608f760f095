"""Shared by the real-kernel tests: the skip marker and a look at the root namespace."""

from __future__ import annotations

import os
import subprocess

import pytest

from sim.testbed import netns

PID = os.getpid()


def _skip_reason() -> str | None:
    problems = netns.missing_requirements(probe=True)
    if not problems:
        problems = netns.check_kernel(f"pnc-{PID}-")
    return "; ".join(problems) if problems else None


_REASON = _skip_reason()

#: Skip (with the reason) where root, ``ip``/``nft`` or kernel features are missing.
requires_kernel = pytest.mark.skipif(
    _REASON is not None, reason=f"real-kernel testbed unavailable: {_REASON}"
)


def root_links() -> set[str]:
    """Interface names of the root (host) namespace."""
    out = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=True
    ).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}
