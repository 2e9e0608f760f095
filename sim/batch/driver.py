"""Run a whole experiment: expand, skip finished runs, execute, store, summarize, plot."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .executors import Outcome, run_processes, run_serial
from .expand import Batch, RunSpec, load_experiment
from .store import ResultStore, now_utc

Executor = Callable[[Sequence[RunSpec]], Iterator[Outcome]]


@dataclass
class BatchReport:
    """What a batch did.

    Attributes
    ----------
    out : Path
        Results directory.
    total, reused, ran : int
        Runs in the batch, found finished (resume), and run now.
    failures : list of tuple
        ``(run_id, params, error)`` of runs that raised.
    """

    out: Path
    total: int
    reused: int
    ran: int = 0
    failures: list[tuple[str, dict, str]] = field(default_factory=list)


def run_experiment(
    path: str | Path,
    out: str | Path | None = None,
    *,
    jobs: int = 1,
    resume: bool = False,
    force: bool = False,
    quick: bool = False,
    crn: bool | None = None,
    plots: bool = True,
    executor: Executor | None = None,
    executor_info: dict | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_done: Callable[[RunSpec, str | None], None] | None = None,
) -> BatchReport:
    """Run the experiment in ``path`` and write its results to ``out``.

    Parameters
    ----------
    path : str or Path
        Experiment file.
    out : str or Path, optional
        Results directory (default ``results/<experiment name>``).
    jobs : int
        Local worker processes (1 runs in this process).
    resume, force : bool
        Finish a stored batch / replace it. Without either, a non-empty ``out`` is
        refused.
    quick : bool
        Use the experiment's ``[quick]`` settings.
    crn : bool, optional
        Override the file's ``common_random_numbers``.
    plots : bool
        Draw the plots at the end.
    executor : callable, optional
        Replaces the local executor (e.g. Dask); takes the specs to run.
    executor_info : dict, optional
        Recorded in the manifest.
    on_start, on_done : callable, optional
        Progress callbacks: ``on_start(total, already_done)``, ``on_done(spec, error)``.
    """
    batch: Batch = load_experiment(path, quick=quick, crn=crn)
    out_dir = Path(out) if out is not None else Path("results") / batch.experiment.name
    store = ResultStore(out_dir)
    store.prepare(resume=resume, force=force)
    started = now_utc()
    rows = store.finished(batch) if resume else {}
    todo = [r for r in batch.runs if r.run_id not in rows]
    report = BatchReport(out=out_dir, total=len(batch.runs), reused=len(rows))
    if on_start:
        on_start(len(batch.runs), len(rows))
    if executor is None:
        if jobs > 1 and len(todo) > 1:

            def executor(specs):
                return run_processes(specs, jobs)

        else:
            executor = run_serial
    for spec, row, err in executor(todo):
        if row is not None:
            store.save_run(spec, row)
            rows[spec.run_id] = row
            report.ran += 1
        else:
            report.failures.append((spec.run_id, spec.params, err or "unknown error"))
        if on_done:
            on_done(spec, err)
    df = store.runs_frame(batch, rows)
    if not df.empty:
        store.write_tables(batch, df)
    info = {"executor": executor_info or {"kind": "local", "jobs": jobs}}
    info["failures"] = [{"run_id": i, "params": p, "error": e} for i, p, e in report.failures]
    store.write_manifest(batch, started, len(rows), info)
    if plots and not df.empty:
        from sim.plots.figures import draw_all

        draw_all(out_dir)
    return report
