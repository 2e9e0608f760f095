"""A results directory in the tidy form of issue 10, read and checked once for plots.

The batch writes ``runs.parquet`` (one row per run and flow), ``summary.csv``
(per configuration and flow: ``M.mean``, ``M.ci95``, ``M.n``),
``stations_summary.csv`` (per configuration and station, with ``station_kind``),
``flow_stations_summary.csv`` (per configuration, flow, direction and hop of its
path: the flow's own mean sojourn at each station) and ``manifest.json`` (``swept``,
``units``, ``[plots]`` ...). Figures and the report draw from the summaries,
so a number in a figure is the number in the table. A damaged or foreign
directory is one line naming the file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from sim.errors import UserError

#: Columns of ``summary.csv`` every view reads, besides the parameters.
SUMMARY_KEYS = ("config", "flow", "role", "kind", "n")
#: Columns of ``stations_summary.csv`` the breakdown reads.
STATIONS_KEYS = ("config", "station", "station_kind", "sojourn_mean_us.mean")
#: Columns of ``flow_stations_summary.csv`` the breakdown reads.
FLOW_STATIONS_KEYS = (
    "config", "flow", "direction", "hop", "station", "station_kind", "sojourn_mean_us.mean",
)  # fmt: skip


@dataclass(frozen=True)
class Results:
    """What plots and reports read from a results directory.

    Attributes
    ----------
    root : Path
        The directory.
    manifest : dict
        ``manifest.json`` (with ``plots`` an object and ``swept`` in sweep order).
    summary : pandas.DataFrame
        ``summary.csv``: one row per (configuration, flow).
    paths : pandas.DataFrame
        ``config, flow, path`` from ``runs.parquet`` (the stations a flow crosses,
        ``" > "``-separated; first replication).
    stations : pandas.DataFrame or None
        ``stations_summary.csv`` if the batch wrote one.
    flow_stations : pandas.DataFrame or None
        ``flow_stations_summary.csv`` if the batch wrote one (podnetsim before
        it did not: the breakdown then falls back on the stations' means).
    """

    root: Path
    manifest: dict
    summary: pd.DataFrame
    paths: pd.DataFrame
    stations: pd.DataFrame | None
    flow_stations: pd.DataFrame | None = None

    @property
    def params(self) -> list[str]:
        """Swept parameters, in sweep order."""
        return list(self.manifest["swept"])

    def unit(self, param: str) -> str | None:
        """Return the unit of a swept parameter (None for none)."""
        unit = self.manifest.get("units", {}).get(param)
        return None if unit in (None, "", "none") else str(unit)

    @property
    def plots(self) -> dict:
        """The experiment's ``[plots]`` table."""
        return self.manifest["plots"]


def read_results(root: str | Path) -> Results:
    """Read and check the tables and manifest of a tidy results directory.

    Raises
    ------
    UserError
        Missing, unreadable, empty or inconsistent files (one line naming the file).
    """
    root = Path(root)
    runs_p, summary_p, manifest_p = (root / n for n in ("runs.parquet", "summary.csv",
                                                        "manifest.json"))  # fmt: skip
    if not all(p.is_file() for p in (runs_p, summary_p, manifest_p)):
        raise UserError(
            f"{str(root)!r} holds no results (runs.parquet, summary.csv and manifest.json)",
            field="DIR",
            fix="give the --out directory of a finished `podnetsim run`",
        )
    manifest = read_manifest(manifest_p)
    params = list(manifest["swept"])
    numeric = [p for p, v in manifest["swept"].items() if v and all(map(_is_number, v))]
    summary = _read_table(summary_p, (*SUMMARY_KEYS, *params), numeric)
    runs = _read_runs(runs_p, ("config", *params, "flow", "path"))
    paths = runs.drop_duplicates(["config", "flow"])[["config", "flow", "path"]]
    st_p = root / "stations_summary.csv"
    stations = _read_table(st_p, (*STATIONS_KEYS, *params), numeric) if st_p.is_file() else None
    fs_p = root / "flow_stations_summary.csv"
    hops = _read_table(fs_p, (*FLOW_STATIONS_KEYS, *params), numeric) if fs_p.is_file() else None
    return Results(root, manifest, summary, paths.reset_index(drop=True), stations, hops)


def _read_runs(path: Path, needed: tuple[str, ...]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    try:
        names = pq.read_schema(path).names
        missing = [c for c in needed if c not in names]
        df = None if missing else pd.read_parquet(path, columns=list(needed))
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise damaged(path, f"cannot be read ({_reason(exc)})") from None
    if df is None:
        raise damaged(path, f"has no column {missing[0]!r}")
    if df.empty:
        raise damaged(path, "holds no runs")
    return df


def _read_table(path: Path, needed: tuple[str, ...], numeric: list[str]) -> pd.DataFrame:
    """Read a summary CSV: ``needed`` columns present, ``M.mean``/``ci95``/``n`` numbers.

    ``numeric`` are the swept parameters whose values are numbers: their cells
    must be numbers too (a figure puts them on a numeric axis).
    """
    try:
        df = pd.read_csv(path, low_memory=False)  # one dtype per column, no DtypeWarning
    except Exception as exc:  # pandas raises several types for a damaged CSV
        raise damaged(path, f"cannot be read ({_reason(exc)})") from None
    if df.empty:
        raise damaged(path, "holds no rows")
    stats = [c for c in df.columns if c.endswith((".mean", ".ci95", ".n"))]
    metrics = {c.rsplit(".", 1)[0] for c in df.columns if c.endswith((".mean", ".ci95"))}
    paired = [f"{m}.{s}" for m in sorted(metrics) for s in ("mean", "ci95")]
    missing = [c for c in (*needed, *paired) if c not in df.columns]
    if missing:
        raise damaged(path, f"has no column {missing[0]!r}")
    as_numbers(df, path, numeric, empty_ok=False)
    as_numbers(df, path, stats)
    return df


def as_numbers(df: pd.DataFrame, path: Path, cols, empty_ok: bool = True) -> None:
    """Make columns ``cols`` of ``df`` numeric in place (empty cells NaN where ``empty_ok``).

    Raises
    ------
    UserError
        A cell that is not a number (or is empty, unless ``empty_ok``), naming the column.
    """
    for col in cols:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & (df[col].notna() | (not empty_ok))
        if bad.any():
            cell = df[col][bad].iloc[0]
            what = "an empty cell" if pd.isna(cell) else repr(cell)
            raise damaged(path, f"holds {what}, not a number", col)
        df[col] = values


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _reason(exc: Exception) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def read_manifest(path: Path) -> dict:
    """Read ``manifest.json`` and check the fields plots use.

    Raises
    ------
    UserError
        Not JSON, not an object, or ``swept``/``units``/``plots`` of the wrong type.
    """
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise damaged(path, f"is not readable JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise damaged(path, "is not a JSON object")
    swept = manifest.get("swept")
    if not (isinstance(swept, dict) and swept and all(isinstance(v, list) for v in swept.values())):
        raise damaged(path, "swept is not an object of parameter -> list of values", "swept")
    for key in ("plots", "units"):
        if not isinstance(manifest.get(key, {}), dict):
            raise damaged(path, f"{key} is not an object", key)
    plots = _check_plots(path, dict(manifest.get("plots") or {}))
    x = plots.get("x")
    if x is not None and x not in swept:
        names = ", ".join(swept)
        raise damaged(path, f"plots.x {x!r} is not a swept parameter (swept: {names})", "plots.x")
    manifest.setdefault("experiment", path.parent.name)
    return {**manifest, "plots": plots, "units": manifest.get("units") or {}}


def _check_plots(path: Path, plots: dict) -> dict:
    """Check the manifest's ``[plots]`` table as an experiment file's (``PlotSpec``)."""
    from pydantic import ValidationError

    from sim.spec.experiment import PlotSpec

    known = {k: v for k, v in plots.items() if k in PlotSpec.model_fields}
    try:
        checked = PlotSpec.model_validate(known).model_dump(mode="json", include=set(known))
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(["plots", *map(str, err["loc"])])
        raise damaged(path, err["msg"], field) from None
    if not all(_is_number(v) for v in checked.get("cdf_at") or []):
        raise damaged(path, "not a list of numbers", "plots.cdf_at")
    return {**plots, **checked}


def damaged(path: Path, problem: str, field: str | None = None) -> UserError:
    """One line for a damaged results file, with the way to rewrite it."""
    return UserError(
        problem,
        file=str(path),
        field=field,
        fix="run the batch again (podnetsim run EXPERIMENT --out DIR --resume rewrites "
        "the tables and manifest)",
    )
