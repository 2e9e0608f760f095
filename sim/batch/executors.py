"""Executors: run a list of run specs and hand back each result as it finishes.

``serial`` runs in this process; ``processes`` uses a local process pool. Each
yields ``(spec, row, error)`` in completion order; the caller stores rows at once.
Results do not depend on the executor: a run is a pure function of its spec.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import signal
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool

from .expand import RunSpec
from .guard import BATCH_PID_ENV, die_with_parent
from .runner import execute
from .signals import signals_deferred

Outcome = tuple[RunSpec, dict | None, str | None]


def _safe_execute(spec: RunSpec) -> tuple[dict | None, str | None]:
    try:
        return execute(spec), None
    except Exception as exc:  # a failed run must not lose the others
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return None, last


def run_serial(specs: Sequence[RunSpec]) -> Iterator[Outcome]:
    """Run specs one after another in this process."""
    for spec in specs:
        row, err = _safe_execute(spec)
        yield spec, row, err


#: How often a worker checks that the batch that started it is still alive, seconds.
PARENT_POLL_S = 0.25


def _worker_init(batch_pid: int) -> None:
    """Set up a worker: Ctrl-C is the batch's to handle; die with the batch.

    A terminal's Ctrl-C reaches every process of the foreground group; the batch
    stops its workers itself, so they ignore SIGINT (no tracebacks of their
    own). If the batch process dies without stopping them (SIGKILL, out of
    memory), the kernel kills the forkserver and then each worker
    (:mod:`sim.batch.guard`); where it cannot, a thread ends the worker when the
    batch's pid or the forkserver parent is gone.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()
    die_with_parent(parent)
    die_with_parent(batch_pid)  # the check only: the batch may have died already

    def watch() -> None:
        while True:
            time.sleep(PARENT_POLL_S)
            try:
                os.kill(batch_pid, 0)
            except ProcessLookupError:
                os._exit(1)
            except PermissionError:
                pass
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="podnetsim-parent-watch", daemon=True).start()


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Stop a pool's workers now (interrupt, write error), not after their runs.

    ``ProcessPoolExecutor`` (Python 3.11-3.13) keeps its worker processes in the
    private dict ``_processes`` (pid -> Process) and has no public way to stop
    them (3.14 adds ``terminate_workers``). Terminate, wait up to 2 s, then kill.
    """
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for p in procs:
        with contextlib.suppress(Exception):
            p.terminate()
    deadline = time.monotonic() + 2.0
    for p in procs:
        with contextlib.suppress(Exception):
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
    pool.shutdown(wait=False, cancel_futures=True)


def _start_forkserver(compiled: bool = False) -> None:
    """Start multiprocessing's forkserver: SIGINT blocked, dying with the batch.

    The forkserver is a fresh interpreter; a Ctrl-C reaching it while it starts
    would print a ``KeyboardInterrupt`` traceback. A blocked signal stays blocked
    across ``exec`` and in the workers forked from the server, so only the batch
    process handles Ctrl-C (it stops the workers itself); one that arrives
    meanwhile is delivered to the batch when the mask is restored. The resource
    tracker starts first: starting it unblocks SIGINT (CPython 3.11-3.13). The
    server preloads :mod:`sim.batch.guard` (it dies with the batch) and this
    module (workers start without importing the simulator again) and, for a batch
    with ``compiled`` runs, :mod:`sim.engine.compiled.preload` (the kernels).
    """
    multiprocessing.resource_tracker.ensure_running()
    kernels = ["sim.engine.compiled.preload"] if compiled else []
    multiprocessing.set_forkserver_preload(["__main__", "sim.batch.guard", __name__, *kernels])
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    os.environ[BATCH_PID_ENV] = str(os.getpid())
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        os.environ.pop(BATCH_PID_ENV, None)
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def run_processes(specs: Sequence[RunSpec], jobs: int) -> Iterator[Outcome]:
    """Run specs on ``jobs`` local worker processes (forkserver start method).

    At most ``2 * jobs`` runs are queued at a time, so an interrupted batch has
    little work in flight. If a worker process dies (killed, out of memory), the
    pool is broken: the runs that were in it are retried once in a fresh pool, and
    a run that breaks a pool twice is reported as failed; the batch goes on. If
    the caller stops early (an interrupt, a write error), the workers are stopped
    at once; a worker whose batch process died ends itself within a second.
    """
    ctx = multiprocessing.get_context("forkserver")
    _start_forkserver(any(s.engine == "compiled" for s in specs))
    pending = list(specs)[::-1]
    broke: dict[str, int] = {}
    while pending:
        pool = ProcessPoolExecutor(
            max_workers=jobs, mp_context=ctx, initializer=_worker_init, initargs=(os.getpid(),)
        )
        finished = False
        running: dict = {}
        try:
            while pending or running:
                while pending and len(running) < 2 * jobs:
                    # taken off ``pending`` only once submitted: a broken pool raises
                    # in ``submit``, and the spec must stay to be retried
                    with signals_deferred():  # may start a worker: never half-started
                        fut = pool.submit(_safe_execute, pending[-1])
                    running[fut] = pending.pop()
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in sorted(done, key=lambda f: running[f].run_id):
                    spec = running.pop(fut)
                    try:
                        row, err = fut.result()
                    except BrokenProcessPool:
                        raise _Broken(spec) from None
                    yield spec, row, err
            finished = True
        except (_Broken, BrokenProcessPool) as exc:
            lost = [*running.values()]
            if isinstance(exc, _Broken):
                lost.append(exc.spec)
            for spec in sorted(lost, key=lambda s: s.run_id, reverse=True):
                broke[spec.run_id] = broke.get(spec.run_id, 0) + 1
                if broke[spec.run_id] >= 2:
                    yield spec, None, "a worker process died twice while running it"
                else:
                    pending.append(spec)
        finally:
            if finished:
                pool.shutdown(wait=False, cancel_futures=True)
            else:
                _stop_workers(pool)


class _Broken(Exception):
    """Internal: the pool broke while ``spec`` was in it."""

    def __init__(self, spec: RunSpec) -> None:
        super().__init__(spec.run_id)
        self.spec = spec
