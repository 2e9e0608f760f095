"""Run a whole experiment: expand, skip finished runs, execute, store, summarize, plot."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .executors import Outcome, run_processes, run_serial
from .expand import Batch, RunSpec, load_experiment
from .signals import BatchInterrupted, stop_on_signals
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
    engine: dict = field(default_factory=dict)


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
    on_warning: Callable[[str], None] | None = None,
    max_runs: int | None = None,
    params: str | Path | None = None,
    sets: dict | None = None,
    engine: str | None = None,
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
    quick, crn, plots : bool
        Use ``[quick]``; override ``common_random_numbers`` (None: the file's);
        draw the plots at the end.
    executor, executor_info : optional
        Replaces the local executor (e.g. Dask; takes the specs to run), and what
        the manifest records of it.
    on_start, on_done, on_warning : callable, optional
        Progress callbacks: ``on_start(total, already_done)``, ``on_done(spec,
        error)``; ``on_warning(message)`` (default: :func:`warnings.warn`).
    max_runs : int, optional
        Ceiling on the batch's runs (configurations x replications; default
        :data:`sim.batch.expand.MAX_RUNS`).
    params, sets, engine : optional
        ``calibrate`` parameter file, dotted overrides, and an engine replacing the
        file's, for every run (:func:`sim.batch.expand.load_experiment`).

    Raises
    ------
    UserError
        Bad experiment, a results directory that cannot be used, a failed write.
    BatchInterrupted
        SIGINT or SIGTERM; the finished runs are kept in ``out/runs``.
    """
    batch: Batch = load_experiment(
        path, quick=quick, crn=crn, max_runs=max_runs, params=params, sets=sets, engine=engine
    )
    out_dir = Path(out) if out is not None else Path("results") / batch.experiment.name
    store = ResultStore(out_dir, warn=on_warning)
    info = {"executor": executor_info or {"kind": "local", "jobs": jobs}, **batch.engine}
    rows: dict[str, dict] = {}
    with stop_on_signals():
        try:
            store.prepare(resume=resume, force=force)
            for message in batch.warnings:  # once the batch will run: never before an error
                store.warn(message)
            try:
                if resume:
                    rows.update(store.finished(batch))
                return _run_batch(
                    batch, store, rows, executor or _local(jobs), info, plots, (on_start, on_done)
                )
            finally:
                store.release()
        except BatchInterrupted as exc:
            exc.out, exc.kept = out_dir, len(rows)
            raise


def _local(jobs: int) -> Executor:
    """Return the local executor: worker processes if more than one job and one run."""

    def execute(specs: Sequence[RunSpec]) -> Iterator[Outcome]:
        if jobs > 1 and len(specs) > 1:
            return run_processes(specs, jobs)
        return run_serial(specs)

    return execute


def _run_batch(
    batch: Batch,
    store: ResultStore,
    rows: dict[str, dict],
    executor: Executor,
    info: dict,
    plots: bool,
    progress: tuple,
) -> BatchReport:
    """Run what is missing, store each run as it ends, then tables, manifest, plots."""
    on_start, on_done = progress
    started = now_utc()
    out_dir = store.root
    todo = [r for r in batch.runs if r.run_id not in rows]
    report = BatchReport(out=out_dir, total=len(batch.runs), reused=len(rows))
    report.engine = batch.engine
    if on_start:
        on_start(len(batch.runs), len(rows))
    with contextlib.closing(executor(todo)) as outcomes:  # closing stops the workers
        for spec, record, err in outcomes:
            if record is not None:
                store.save_run(spec, record)
                rows[spec.run_id] = record
                report.ran += 1
            else:
                report.failures.append((spec.run_id, spec.params, err or "unknown error"))
            if on_done:
                on_done(spec, err)
    failed = {run_id for run_id, _, _ in report.failures}
    for spec in todo:  # an executor must answer for every run; never drop one silently
        if spec.run_id not in rows and spec.run_id not in failed:
            report.failures.append((spec.run_id, spec.params, "no outcome (internal error)"))
    written = store.write_tables(batch, rows)
    info["failures"] = [{"run_id": i, "params": p, "error": e} for i, p, e in report.failures]
    store.write_manifest(batch, started, len(rows), info)
    if plots and written:
        from sim.plots.figures import draw_all

        draw_all(out_dir)
    return report
