"""Errors raised by the real-kernel testbed."""

from __future__ import annotations

from sim.errors import UserError


class TestbedError(RuntimeError):
    """A testbed operation failed; the message is one line and says why.

    Raised when a required tool or privilege is missing (the message names
    the fix) and when any ``ip``/``nft``/shell command fails (the message holds
    the command and its stderr).
    """

    __test__ = False  # not a pytest test class despite the name


class ProbeError(TestbedError):
    """A UDP probe could not complete (lost replies, timeout, crash)."""


def one_line(text: str) -> str:
    """Collapse whitespace (including newlines) of ``text`` into single spaces.

    Parameters
    ----------
    text : str
        Any text, e.g. a command's stderr.

    Returns
    -------
    str
        The same words on one line.
    """
    return " ".join(text.split())


class MappingError(UserError):
    """A scenario cannot be rebuilt inside 198.18.0.0/15 (one line, with a fix)."""
