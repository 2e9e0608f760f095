"""A batch's tables from its runs' records, and the results directory read back.

Tables (tidy: one observation per row):

* runs: one row per (run, flow); :data:`RUN_ID_COLUMNS`, the swept parameters,
  ``flow, role, kind``, the metrics of :data:`sim.analysis.rows.FLOW_METRICS`,
  ``drops.<reason>`` (every reason seen in the batch, 0 where none), ``path,
  warnings``.
* stations: one row per (run, station).
* flow stations: one row per (run, flow, direction, hop of the flow's path): the
  flow's own packets (forward) or its replies (reply) and their mean sojourn at
  that station (a station's row mixes every flow).
* latency quantiles: one row per (run, flow), ``cdf.q000.0 ... cdf.q099.9`` (us).
* summaries: per (configuration, flow), (configuration, station) and
  (configuration, flow, direction, hop), mean, 95 % Student-t half-width and count of every
  numeric metric (:func:`sim.analysis.stats.summarize_groups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from sim.analysis.rows import (
    CDF_PREFIX,
    DROPS_PREFIX,
    FLOW_METRICS,
    FLOW_STATION_COLUMNS,
    STATION_COLUMNS,
)
from sim.analysis.stats import numeric_columns, summarize_groups

RUN_ID_COLUMNS = ("run_id", "config", "replication", "seed")
FLOW_KEYS = ("flow", "role", "kind")

#: Unit of a parameter, from the suffix of its last name part (``flows.x.rate_gbps``).
UNIT_SUFFIXES = (
    ("_gbps", "Gbit/s"),
    ("_bytes", "B"),
    ("_us", "us"),
    ("_ns", "ns"),
    ("_s", "s"),
    ("_pps", "packets/s"),
    ("_pkts", "packets"),
    ("_packets", "packets"),
)


def unit_of(param: str) -> str | None:
    """Return the unit of parameter ``param`` from its name's suffix (None if none)."""
    for suffix, unit in UNIT_SUFFIXES:
        if param.endswith(suffix):
            return unit
    return None


def run_tables(
    records: Sequence[dict], params: Sequence[str]
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Build the runs, stations and latency-quantile tables, in record order.

    Parameters
    ----------
    records : sequence of dict
        ``{"flows": [...], "stations": [...]}`` per run
        (:func:`sim.batch.runner.execute`), in (configuration, replication) order.
    params : sequence of str
        Swept parameter names, in file order.
    """
    ids = [*RUN_ID_COLUMNS, *params]
    flows = pd.DataFrame.from_records([r for rec in records for r in rec["flows"]])
    stations = pd.DataFrame.from_records([r for rec in records for r in rec["stations"]])
    drops = sorted(c for c in flows.columns if c.startswith(DROPS_PREFIX))
    flows[drops] = flows[drops].fillna(0).astype("int64")
    cdf = [c for c in flows.columns if c.startswith(CDF_PREFIX)]
    runs = flows[[*ids, *FLOW_KEYS, *FLOW_METRICS, *drops, "path", "warnings"]]
    quantiles = flows[[*ids, "flow", "role", *cdf]]
    if not stations.empty:
        stations = stations[[*ids, "station", *STATION_COLUMNS]]
    return runs, stations, quantiles


def summary_table(runs: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Summarize runs per (configuration, flow).

    Columns: ``config, <params>, flow, role, kind, n``, then ``M.mean, M.ci95,
    M.n`` of every numeric metric ``M``.
    """
    metrics = numeric_columns(runs, (*RUN_ID_COLUMNS, *params))
    return summarize_groups(runs, ("config", "flow"), ("config", *params, *FLOW_KEYS), metrics)


def stations_summary_table(stations: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Summarize stations per (configuration, station).

    Columns: ``config, <params>, station, station_kind, node, n``, then the
    statistics of every numeric column.
    """
    if stations.empty:
        return stations
    carry = ("config", *params, "station", "station_kind", "node")
    metrics = numeric_columns(stations, (*RUN_ID_COLUMNS, *params))
    return summarize_groups(stations, ("config", "station"), carry, metrics)


def flow_stations_table(records: Sequence[dict], params: Sequence[str]) -> pd.DataFrame:
    """One row per (run, flow, hop), in record order (empty if no run has any)."""
    rows = [r for rec in records for r in rec.get("flow_stations") or ()]
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame.from_records(rows)[[*RUN_ID_COLUMNS, *params, *FLOW_STATION_COLUMNS]]


def flow_stations_summary_table(hops: pd.DataFrame, params: Sequence[str]) -> pd.DataFrame:
    """Summarize flow stations per (configuration, flow, direction, hop).

    Columns: ``config, <params>, flow, direction, hop, station, station_kind, n``,
    then ``packets`` and ``sojourn_mean_us`` as ``M.mean, M.ci95, M.n``.
    """
    if hops.empty:
        return hops
    carry = ("config", *params, "flow", "direction", "hop", "station", "station_kind")
    metrics = ("packets", "sojourn_mean_us")
    return summarize_groups(hops, ("config", "flow", "direction", "hop"), carry, metrics)


#: Files of a results directory read by :func:`load_results`, by table name.
RESULT_FILES = {
    "runs": "runs.parquet",
    "stations": "stations.parquet",
    "flow_stations": "flow_stations.parquet",
    "latency_quantiles": "latency_quantiles.parquet",
    "tcp_series": "tcp_series.parquet",
    "summary": "summary.csv",
    "stations_summary": "stations_summary.csv",
    "flow_stations_summary": "flow_stations_summary.csv",
}


def load_results(results_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Every table of a results directory as pandas DataFrames.

    Parameters
    ----------
    results_dir : str or Path
        The ``--out`` directory of a finished ``podnetsim run``.

    Returns
    -------
    dict of str to DataFrame
        ``runs``, ``stations``, ``flow_stations``, ``latency_quantiles``,
        ``tcp_series``, ``summary``, ``stations_summary``,
        ``flow_stations_summary`` (those present).

    Raises
    ------
    UserError
        The directory holds no runs table.
    """
    from sim.errors import UserError

    root = Path(results_dir)
    if not (root / "runs.parquet").is_file():
        raise UserError(
            f"{str(root)!r} holds no results (no runs.parquet)",
            field="DIR",
            fix="give the --out directory of a finished `podnetsim run`",
        )
    out = {}
    for name, file in RESULT_FILES.items():
        p = root / file
        if p.is_file():
            out[name] = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
    return out
