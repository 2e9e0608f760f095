"""Results directory: one file per finished run, then tables, summary, manifest.

Layout of DIR::

    .podnetsim-results   marker: podnetsim created DIR (--resume/--force need it)
    .podnetsim.lock      held (flock) by the batch writing DIR; names its pid and host
    runs/<run_id>.json   each finished run, written atomically the moment it ends
    runs/damaged/        stored runs a resume found damaged (kept, never deleted)
    runs.parquet         one row per (run, flow): parameters, role, kind, metrics
    runs.csv             the same, as CSV (byte-identical whatever the worker count)
    stations.parquet     one row per (run, station): kind, node, utilization, queue ...
    stations.csv         the same, as CSV
    flow_stations.parquet  one row per (run, flow, hop of its path): station, kind,
                         the flow's own packets and mean sojourn there
    flow_stations.csv    the same, as CSV
    latency_quantiles.parquet  per (run, flow): latency quantiles 0..100 % and 99.9 %
    tcp_series.parquet   per (run, flow, connection, interval): cwnd and goodput, for
                         the tcp flows with record_cwnd (only when one has it)
    summary.csv          per (configuration, flow): mean, 95% CI half-width (t), n
    stations_summary.csv per (configuration, station): the same
    flow_stations_summary.csv  per (configuration, flow, hop): the same
    manifest.json        schema and software versions, git commit, file hash, times,
                         swept values and units, params file, engine, question, plots
    plots/               figures (PNG + SVG)

A batch killed at any moment keeps every finished run in ``runs/``; ``--resume``
runs only the missing ones (a run whose fingerprint differs from the current
expansion is refused: the experiment file changed; a run file that fails its
schema, :mod:`sim.batch.schema`, is set aside and run again). Every file is
written through :func:`sim.batch.files.atomic_write`.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import sim
from sim.analysis.results import (
    RESULT_FILES,
    flow_stations_summary_table,
    flow_stations_table,
    run_tables,
    stations_summary_table,
    summary_table,
    unit_of,
)
from sim.errors import UserError

from .expand import Batch, RunSpec
from .files import (
    LOCK,
    MARKER,
    RUN_FILE,
    ResultsLock,
    atomic_write,
    atomic_write_text,
    is_ours,
    mark_ours,
    remove_ours,
    remove_temporaries,
    write_error,
)
from .schema import OLD_FORMAT, read_stored_run, row_mismatch

#: 2: tidy tables (one row per run and flow, per run and station).
SCHEMA_VERSION = 2
#: Tables a run's record may hold (``tcp_series`` only when a flow records one).
RECORD_TABLES = ("flows", "stations", "flow_stations", "tcp_series")
#: The series table's file (written only when a run has series rows).
TCP_SERIES_FILE = RESULT_FILES["tcp_series"]


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


class ResultStore:
    """A results directory being filled by a batch.

    Parameters
    ----------
    root : Path
        The results directory.
    warn : callable, optional
        Receives warnings (a lock taken over, a damaged run moved aside).
    """

    def __init__(self, root: str | Path, warn: Callable[[str], None] | None = None) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.warn = warn or _warn
        self.lock = ResultsLock(self.root)

    def prepare(self, resume: bool, force: bool) -> None:
        """Create or take the directory and lock it; refuse to overwrite results unless asked.

        Raises
        ------
        UserError
            DIR is locked by a live batch, was not made by podnetsim, holds results
            and neither ``resume`` nor ``force`` was given, or cannot be written.
        """
        self._refuse_foreign(resume, force)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise write_error(self.root, exc) from None
        self.lock.acquire(self.warn)
        try:
            self._refuse_foreign(resume, force, ignore=(LOCK,))
            if not (self.root / MARKER).is_file():
                mark_ours(self.root)
            if self._holds_results() and not (resume or force):
                raise UserError(
                    f"results directory {str(self.root)!r} is not empty",
                    field="--out",
                    fix="pass --resume to finish that batch, --force to replace it, "
                    "or choose another --out",
                )
            if force:
                remove_ours(self.root)
            remove_temporaries(self.root)
            self._make_runs_dir()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Unlock the directory (the batch is over)."""
        self.lock.release()

    def _refuse_foreign(self, resume: bool, force: bool, ignore: tuple[str, ...] = ()) -> None:
        """Refuse a non-empty directory podnetsim did not create (never written or cleared)."""
        if not self.root.is_dir() or is_ours(self.root):
            if self.root.exists() and not self.root.is_dir():
                raise UserError(
                    f"{str(self.root)!r} is a file, not a directory",
                    field="--out",
                    fix="choose a new or empty --out directory",
                )
            return
        if any(p.name not in ignore for p in self.root.iterdir()):
            what = "--force would delete in" if force else "podnetsim would write into"
            raise UserError(
                f"{what} {str(self.root)!r}, which is not empty and was not created by "
                f"podnetsim (no {MARKER} file); --resume and --force only act on podnetsim "
                "results directories",
                field="--out",
                fix="choose an empty or new --out directory",
            )

    def _holds_results(self) -> bool:
        names = {p.name for p in self.root.iterdir()} - {MARKER, LOCK}
        return bool(names)

    def _make_runs_dir(self) -> None:
        if self.runs_dir.exists() and not self.runs_dir.is_dir():
            raise UserError(
                f"{str(self.runs_dir)!r} is a file, but a results directory keeps its runs "
                "in a directory of that name",
                field="--out",
                fix="move that file away, or choose another --out",
            )
        try:
            self.runs_dir.mkdir(exist_ok=True)
        except OSError as exc:
            raise write_error(self.runs_dir, exc) from None

    def finished(self, batch: Batch) -> dict[str, dict]:
        """Rows of runs already stored that belong to ``batch``.

        A stored run that does not fit its schema, or is not the run its name
        says, is moved to ``runs/damaged/`` with a warning (it will run again).

        Raises
        ------
        UserError
            A stored run has a different fingerprint (the experiment changed).
        """
        want = {r.run_id: r for r in batch.runs}
        out: dict[str, dict] = {}
        for p in sorted(self.runs_dir.iterdir()):
            if not RUN_FILE.fullmatch(p.name):
                continue  # not a run file (damaged/, temporaries, the user's own files)
            spec = want.get(p.stem)
            if spec is None:
                raise _different_experiment(p)
            rec, why = read_stored_run(p)
            if why == OLD_FORMAT:
                raise UserError(
                    f"{p} was {why}",
                    field="--resume",
                    fix="use --force to run the batch again, or another --out",
                )
            mine = rec is not None and rec["run_id"] == spec.run_id
            if mine and rec["fingerprint"] != spec.fingerprint:
                raise _different_experiment(p)
            if rec is not None:
                why = row_mismatch(rec, spec, p.name)
            if why is not None:
                self._set_aside(p, why)
                continue
            out[spec.run_id] = {k: v for k, v in rec.items() if k in RECORD_TABLES}
        return out

    def _set_aside(self, p: Path, why: str) -> None:
        """Move a damaged run file to runs/damaged/ (never over another one)."""
        damaged = self.runs_dir / "damaged"
        try:
            damaged.mkdir(exist_ok=True)
            dest = damaged / p.name
            n = 0
            while dest.exists():
                n += 1
                dest = damaged / f"{p.name}.{n}"
            os.replace(p, dest)
        except OSError as exc:
            raise write_error(p, exc) from None
        self.warn(f"{p} is damaged ({why}); moved to {dest}, the run will be done again")

    def save_run(self, spec: RunSpec, record: dict) -> None:
        """Store one finished run atomically (write to a temporary file, rename)."""
        rec = {"run_id": spec.run_id, "fingerprint": spec.fingerprint, **record}
        text = json.dumps(rec, default=_json_default, allow_nan=True)
        atomic_write_text(self.runs_dir / f"{spec.run_id}.json", text)

    # -- tables ----------------------------------------------------------------------
    def write_tables(self, batch: Batch, records: dict[str, dict]) -> int:
        """Write the runs, stations, flow-station and quantile tables and their summaries.

        Runs are in (configuration, replication) order whatever order they
        finished in, so the files are byte-identical for any worker count.

        Returns
        -------
        int
            Rows of the runs table (0: nothing written).
        """
        order = [records[r.run_id] for r in batch.runs if r.run_id in records]
        if not order:
            return 0
        params = batch.param_names
        runs, stations, quantiles = run_tables(order, params)
        hops = flow_stations_table(order, params)
        tables = {
            "runs": runs,
            "stations": stations,
            "flow_stations": hops,
            "summary": summary_table(runs, params),
            "stations_summary": stations_summary_table(stations, params),
            "flow_stations_summary": flow_stations_summary_table(hops, params),
        }
        for name in ("runs", "stations", "flow_stations"):
            self._parquet(f"{name}.parquet", tables[name])
        self._parquet("latency_quantiles.parquet", quantiles)
        series = [row for rec in order for row in rec.get("tcp_series") or ()]
        if series:
            self._parquet(TCP_SERIES_FILE, pd.DataFrame.from_records(series))
        for name, df in tables.items():
            self._csv(f"{name}.csv", df)
        return len(runs)

    def _parquet(self, name: str, df: pd.DataFrame) -> None:
        atomic_write(self.root / name, lambda t: df.to_parquet(t, index=False))

    def _csv(self, name: str, df: pd.DataFrame) -> None:
        atomic_write(self.root / name, lambda t: df.to_csv(t, index=False, float_format="%.9g"))

    def write_manifest(self, batch: Batch, started: str, n_runs: int, extra: dict) -> None:
        """Write manifest.json (schema, versions, git commit, file hash, times)."""
        import simpy

        manifest = {
            "schema_version": SCHEMA_VERSION,
            "podnetsim_version": sim.__version__,
            "git_commit": git_commit(),
            "python": platform.python_version(),
            "simpy": simpy.__version__,
            "numpy": np.__version__,
            "pandas": pd.__version__,
            "experiment": batch.experiment.name,
            "description": batch.experiment.description,
            "question": batch.experiment.question,
            "experiment_file": batch.file,
            "experiment_sha256": batch.file_sha256,
            "quick": batch.quick,
            "base_seed": batch.experiment.seed,
            "parameters": list(batch.param_names),
            "swept": {k: list(v) for k, v in batch.swept.items()},
            "units": {k: unit_of(k) for k in batch.param_names},
            "params": batch.params_file,
            "configurations": len(batch.configs),
            "replications": len({r.replication for r in batch.runs}),
            "run_count": n_runs,
            "runs_expected": len(batch.runs),
            "started_utc": started,
            "finished_utc": now_utc(),
            "plots": batch.experiment.plots.model_dump(mode="json"),
            **extra,
        }
        atomic_write_text(self.root / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def _warn(message: str) -> None:
    warnings.warn(message, stacklevel=3)


def _different_experiment(p: Path) -> UserError:
    return UserError(
        f"{p} was made by a different experiment or settings (e.g. --quick)",
        field="--resume",
        fix="resume with the same file and flags, or use --force to start over",
    )


def now_utc() -> str:
    """Return the current UTC time, ISO 8601, to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()


def git_commit() -> str | None:
    """Commit of the podnetsim checkout, if it is a git work tree."""
    here = Path(sim.__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None
