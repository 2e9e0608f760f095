"""Writing results files safely: a temporary file, then a rename.

Every file is written to a temporary name in its own directory and renamed over
the final name (``os.replace`` is atomic on POSIX), so a reader sees the old
file or the whole new one, never a torn one. The temporary file is removed on
any failure, and an ``OSError`` (read-only directory, full disk) becomes one
:class:`~sim.errors.UserError` naming the path and the reason. Batches
(:mod:`sim.batch`) and figures (:mod:`sim.plots`) both write through here.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path

from sim.errors import UserError

BATCH_FIX = (
    "make the results directory writable or free some space, then run again "
    "with --resume (finished runs are kept)"
)
"""What to do when a batch's results cannot be written."""

OUTPUT_FIX = "write to an existing, writable folder with free space"
"""What to do when a command's single output file cannot be written."""


def write_error(
    path: Path, exc: OSError, field: str = "--out", fix: str = BATCH_FIX
) -> UserError:
    """One line for a failed write: the path, the system's reason, the option and the fix."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return UserError(f"cannot write {str(path)!r}: {reason}", field=field, fix=fix)


def atomic_write(
    path: Path, write: Callable[[Path], None], field: str = "--out", fix: str = BATCH_FIX
) -> None:
    """Write ``path`` through ``write(tmp)`` and a rename; nothing partial is left.

    Raises
    ------
    UserError
        The write failed (one line naming ``path``, the reason, ``field`` and ``fix``).
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a device or pipe (/dev/stdout): never replace it
        try:
            write(path)
        except OSError as exc:
            raise write_error(path, exc, field, fix) from None
        return
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)  # the data is on disk before the name points at it
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException as exc:  # interrupted too: never leave the temporary file
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError):
            raise write_error(path, exc, field, fix) from None
        raise


def atomic_write_text(
    path: Path, text: str, field: str = "--out", fix: str = BATCH_FIX
) -> None:
    """:func:`atomic_write` of UTF-8 text."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), field, fix)
