"""Errors of the real-kernel testbed, under the project's one root :class:`UserError`.

Each is one line (``PROBLEM. Fix: FIX``) and makes the CLI exit with status 2.
"""

from __future__ import annotations

from sim.errors import UserError


class TestbedError(UserError):
    """A testbed operation failed: missing privilege or tool, or a failed command."""

    __test__ = False  # not a pytest test class despite the name


class ProbeError(TestbedError):
    """A probe could not complete (server did not start, client crashed or timed out)."""


class MappingError(TestbedError):
    """A scenario cannot be rebuilt inside 198.18.0.0/15."""


def one_line(text: str) -> str:
    """Collapse the whitespace of ``text`` (e.g. a command's stderr) into single spaces."""
    return " ".join(text.split())
