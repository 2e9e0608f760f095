"""Results directory: one file per finished run, then tables, summary, manifest.

Layout of DIR::

    runs/<run_id>.json   each finished run, written atomically the moment it ends
    runs.parquet         one row per run (parameters, replication, seed, metrics)
    runs.csv             the same, as CSV (byte-identical whatever the worker count)
    summary.csv          per configuration: mean, 95% CI half-width (t), n per metric
    manifest.json        schema and software versions, git commit, file hash, times
    plots/               figures (PNG + SVG)

A batch killed at any moment keeps every finished run in ``runs/``; ``--resume``
runs only the missing ones (a run whose fingerprint differs from the current
expansion is refused: the experiment file changed).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

import sim
from sim.errors import UserError

from .expand import Batch, RunSpec

SCHEMA_VERSION = 1
ID_COLUMNS = ("run_id", "config", "replication", "seed")


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
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs_dir = self.root / "runs"

    def prepare(self, resume: bool, force: bool) -> None:
        """Create the directory; refuse to overwrite results unless asked.

        Raises
        ------
        UserError
            DIR holds results and neither ``resume`` nor ``force`` was given.
        """
        if self.root.exists() and any(self.root.iterdir()):
            if force:
                looks_like_results = (self.root / "manifest.json").exists() or (
                    self.runs_dir.is_dir()
                )
                if not looks_like_results:
                    raise UserError(
                        f"--force would delete {str(self.root)!r}, which is not a podnetsim "
                        "results directory (no manifest.json or runs/)",
                        field="--out",
                        fix="choose an empty or new --out directory",
                    )
                shutil.rmtree(self.root)
            elif not resume:
                raise UserError(
                    f"results directory {str(self.root)!r} is not empty",
                    field="--out",
                    fix="pass --resume to finish that batch, --force to replace it, "
                    "or choose another --out",
                )
        self.runs_dir.mkdir(parents=True, exist_ok=True)

    def finished(self, batch: Batch) -> dict[str, dict]:
        """Rows of runs already stored that belong to ``batch``.

        Raises
        ------
        UserError
            A stored run has a different fingerprint (the experiment changed).
        """
        want = {r.run_id: r for r in batch.runs}
        out: dict[str, dict] = {}
        for p in sorted(self.runs_dir.glob("*.json")):
            try:
                rec = json.loads(p.read_text())
            except (OSError, json.JSONDecodeError):
                p.unlink()  # a torn write cannot happen (atomic rename); be safe anyway
                continue
            spec = want.get(rec.get("run_id"))
            if spec is None or rec.get("fingerprint") != spec.fingerprint:
                raise UserError(
                    f"{p} was made by a different experiment or settings (e.g. --quick)",
                    field="--resume",
                    fix="resume with the same file and flags, or use --force to start over",
                )
            out[spec.run_id] = rec["row"]
        return out

    def save_run(self, spec: RunSpec, row: dict) -> None:
        """Store one finished run atomically (write to a temporary file, rename)."""
        rec = {"run_id": spec.run_id, "fingerprint": spec.fingerprint, "row": row}
        tmp = self.runs_dir / f".{spec.run_id}.json.tmp"
        tmp.write_text(json.dumps(rec, default=_json_default, allow_nan=True))
        os.replace(tmp, self.runs_dir / f"{spec.run_id}.json")

    # -- tables ----------------------------------------------------------------------
    def runs_frame(self, batch: Batch, rows: dict[str, dict]) -> pd.DataFrame:
        """All finished runs as one table, in (configuration, replication) order."""
        order = [r.run_id for r in batch.runs if r.run_id in rows]
        records = [rows[i] for i in order]
        df = pd.DataFrame.from_records(records)
        if df.empty:
            return df
        params = list(batch.param_names)
        station = sorted(c for c in df.columns if c.startswith("station."))
        cdf = sorted(c for c in df.columns if c.startswith("cdf."))
        fixed = [c for c in df.columns if c not in (*ID_COLUMNS, *params, *station, *cdf)]
        return df[[*ID_COLUMNS, *params, *fixed, *station, *cdf]]

    def write_tables(self, batch: Batch, df: pd.DataFrame) -> None:
        """Write runs.parquet, runs.csv and summary.csv."""
        df.to_parquet(self.root / "runs.parquet", index=False)
        df.to_csv(self.root / "runs.csv", index=False, float_format="%.9g")
        summarize_configs(batch, df).to_csv(
            self.root / "summary.csv", index=False, float_format="%.9g"
        )

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
            "experiment_file": batch.file,
            "experiment_sha256": batch.file_sha256,
            "quick": batch.quick,
            "parameters": list(batch.param_names),
            "configurations": len(batch.configs),
            "replications": len({r.replication for r in batch.runs}),
            "run_count": n_runs,
            "runs_expected": len(batch.runs),
            "started_utc": started,
            "finished_utc": now_utc(),
            "plots": batch.experiment.plots.model_dump(mode="json"),
            **extra,
        }
        (self.root / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


def now_utc() -> str:
    """Current UTC time, ISO 8601, seconds."""
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


def metric_columns(df: pd.DataFrame, params: tuple[str, ...]) -> list[str]:
    """Numeric metric columns (not ids, parameters or CDF quantiles)."""
    skip = set(ID_COLUMNS) | set(params)
    return [
        c
        for c in df.columns
        if c not in skip and not c.startswith("cdf.") and pd.api.types.is_numeric_dtype(df[c])
    ]


def ci_halfwidth(values: np.ndarray, level: float = 0.95) -> float:
    """Half-width of the t-based confidence interval of the mean (NaN if n < 2)."""
    v = values[~np.isnan(values)]
    n = v.size
    if n < 2:
        return math.nan
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * v.std(ddof=1) / math.sqrt(n))


def summarize_configs(batch: Batch, df: pd.DataFrame) -> pd.DataFrame:
    """Per configuration: mean, 95% CI half-width and n of every metric."""
    params = list(batch.param_names)
    metrics = metric_columns(df, batch.param_names)
    rows = []
    for ci, params_values in enumerate(batch.configs):
        sub = df[df["config"] == ci]
        if sub.empty:
            continue
        row: dict[str, Any] = {"config": ci, **{p: params_values[p] for p in params}}
        row["n"] = len(sub)
        for m in metrics:
            vals = sub[m].to_numpy(dtype=float)
            ok = vals[~np.isnan(vals)]
            row[f"{m}.mean"] = float(ok.mean()) if ok.size else math.nan
            row[f"{m}.ci95"] = ci_halfwidth(vals)
            row[f"{m}.n"] = int(ok.size)
        rows.append(row)
    return pd.DataFrame(rows)
