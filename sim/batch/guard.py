"""Processes of a batch die with it: the forkserver and the workers (Linux).

A batch's workers are forked by multiprocessing's forkserver, a child of the
batch process. If the batch process is killed outright (SIGKILL, out of memory)
nobody stops them; on Linux the kernel can (``prctl(PR_SET_PDEATHSIG)``): the
forkserver gets SIGKILL when the batch process dies, and each worker when the
forkserver dies. The forkserver imports this module first (a preload module, the
one hook the forkserver offers); the batch sets :data:`BATCH_PID_ENV` for it.
Elsewhere, importing this module does nothing.
"""

from __future__ import annotations

import ctypes
import os
import signal

#: Environment variable holding the batch process's pid, for the forkserver.
BATCH_PID_ENV = "PODNETSIM_BATCH_PID"
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies.

    Exits at once if ``parent_pid`` is already gone (it died before the request).
    Does nothing but that check where ``prctl`` is not available.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    except (OSError, AttributeError):
        pass
    try:
        os.kill(parent_pid, 0)
    except ProcessLookupError:
        os._exit(1)
    except PermissionError:
        pass


def _guard_forkserver() -> None:
    """In the forkserver the batch started: die with the batch (or now, if it is gone)."""
    batch = os.environ.pop(BATCH_PID_ENV, "")
    if not batch.isdigit():
        return
    if os.getppid() != int(batch):
        os._exit(1)  # the batch died while this server was starting
    die_with_parent(int(batch))


_guard_forkserver()
