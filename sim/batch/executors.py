"""Executors: run a list of run specs and hand back each result as it finishes.

``serial`` runs in this process; ``processes`` uses a local process pool. Each
yields ``(spec, row, error)`` in completion order; the caller stores rows at once.
Results do not depend on the executor: a run is a pure function of its spec.
"""

from __future__ import annotations

import multiprocessing
import traceback
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

from .expand import RunSpec
from .runner import execute

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


def run_processes(specs: Sequence[RunSpec], jobs: int) -> Iterator[Outcome]:
    """Run specs on ``jobs`` local worker processes (forkserver start method).

    At most ``2 * jobs`` runs are queued at a time, so an interrupted batch has
    little work in flight.
    """
    ctx = multiprocessing.get_context("forkserver")
    pending = list(specs)[::-1]
    with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
        running = {}
        while pending or running:
            while pending and len(running) < 2 * jobs:
                spec = pending.pop()
                running[pool.submit(_safe_execute, spec)] = spec
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in sorted(done, key=lambda f: running[f].run_id):
                spec = running.pop(fut)
                try:
                    row, err = fut.result()
                except Exception as exc:  # worker died
                    row, err = None, f"worker failed: {exc!r}"
                yield spec, row, err
