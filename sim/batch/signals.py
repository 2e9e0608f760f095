"""SIGINT and SIGTERM stop a batch cleanly (light module: imported before the batch).

Inside :func:`stop_on_signals` either signal raises :class:`BatchInterrupted` in
the main thread; the batch then stops its workers, keeps every finished run and
the command exits with 128 + the signal number (130, 143), printing one line.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

_active = False
_deferring = 0
_pending: int | None = None


class BatchInterrupted(BaseException):  # noqa: N818 -- like KeyboardInterrupt
    """A batch stopped by SIGINT or SIGTERM; every finished run is kept.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that no ``except
    Exception`` on the way, such as the one that keeps a failed run from losing
    the others, mistakes it for a failed run.

    Attributes
    ----------
    signum : int
        The signal.
    out : Path or None
        Results directory.
    kept : int
        Finished runs stored in ``out/runs``.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.out: Path | None = None
        self.kept = 0

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process killed by it."""
        return 128 + self.signum


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into :class:`BatchInterrupted` in this block.

    After the first signal both are ignored while the batch stops its workers
    (a second Ctrl-C does not cut the clean-up short). Signals ignored when the
    block starts (``nohup``) stay ignored; outside the main thread nothing changes.
    """
    global _active, _pending
    if _active or threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    old = {s: signal.getsignal(s) for s in sigs}

    def handler(signum, frame):
        global _pending
        for s in sigs:
            signal.signal(s, signal.SIG_IGN)
        if _deferring:
            _pending = signum
            return
        raise BatchInterrupted(signum)

    for s in sigs:
        if old[s] is not signal.SIG_IGN:
            signal.signal(s, handler)
    _active, _pending = True, None
    try:
        yield
    finally:
        _active, _pending = False, None
        for s in sigs:
            signal.signal(s, old[s] if old[s] is not None else signal.SIG_DFL)


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold a SIGINT or SIGTERM that arrives in this block until the block ends.

    For steps that must not be cut in two, such as starting a worker process (an
    interrupt between its fork and its registration would leave a worker that no
    one stops).
    """
    global _deferring
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if _deferring == 0 and _pending is not None:
        raise BatchInterrupted(_pending)
