"""The schema of a stored run (``runs/<run_id>.json``), checked before a resume uses it.

A stored run is ``{"run_id", "fingerprint", "flows", "stations", "flow_stations"}``:
the record :func:`sim.batch.runner.execute` returns. Every row starts with the
run's identity columns and swept parameter values; a flow row then has its name,
role and kind, counts, metrics (numbers; NaN where undefined), ``drops.*``
counts, latency quantiles (``cdf.*``), the path and warnings (text); a station
row its name, kind, node and figures; a flow-station row its flow, direction,
hop, station, kind, packets and mean sojourn; ``tcp_series`` (only when a tcp flow asked
for it) rows of its cwnd/goodput series. A file that does not fit (a list, ``null``,
no flow rows, a metric that is a string, no flow-station rows as podnetsim
before them wrote) is damaged: the resume moves it aside and runs it again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from sim.analysis.rows import (
    CDF_PERCENTS,
    CDF_PREFIX,
    COUNT_METRICS,
    DROPS_PREFIX,
    FLOW_METRICS,
    quantile_name,
)

from .expand import RunSpec

ID_COLUMNS = ("run_id", "config", "replication", "seed")
COUNT_COLUMNS = COUNT_METRICS
METRIC_COLUMNS = tuple(m for m in FLOW_METRICS if m not in COUNT_METRICS)
TEXT_COLUMNS = ("flow", "role", "kind", "path", "warnings")
NUMERIC_PREFIXES = (CDF_PREFIX, DROPS_PREFIX)
STATION_TEXT = ("station", "station_kind", "node")
STATION_INTS = ("queue_max_pkts", "drops")
STATION_FLOATS = ("utilization", "wait_mean_us", "sojourn_mean_us", "queue_mean_pkts")
HOP_TEXT = ("flow", "direction", "station", "station_kind")
#: Why a run file of podnetsim before the tidy tables (one flat ``row``) is refused.
OLD_FORMAT = "written by an older podnetsim (one row per run, before the tidy tables)"
#: Why a run file of podnetsim before per-flow station means is refused.
NO_FLOW_STATIONS = "written by an older podnetsim (no flow_stations: each flow's own station means)"


def _python_name(column: str) -> str:
    return "f_" + re.sub(r"\W", "_", column)


class _RowBase(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)

    @model_validator(mode="after")
    def _numeric_extras(self) -> _RowBase:
        for key, value in (self.model_extra or {}).items():
            if key.startswith(NUMERIC_PREFIXES) and not _is_number(value):
                raise ValueError(f"{key} must be a number (got {value!r})")
        return self


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _fields(text: tuple[str, ...], ints: tuple[str, ...], floats: tuple[str, ...]) -> dict:
    return {
        **{_python_name(c): (str if c == "run_id" else int, Field(alias=c)) for c in ID_COLUMNS},
        **{_python_name(c): (int, Field(alias=c)) for c in ints},
        **{_python_name(c): (float, Field(alias=c)) for c in floats},
        **{_python_name(c): (str, Field(alias=c)) for c in text},
    }


FlowRow = create_model(
    "FlowRow", __base__=_RowBase, **_fields(TEXT_COLUMNS, COUNT_COLUMNS, METRIC_COLUMNS)
)
StationRow = create_model(
    "StationRow", __base__=_RowBase, **_fields(STATION_TEXT, STATION_INTS, STATION_FLOATS)
)
FlowStationRow = create_model(
    "FlowStationRow",
    __base__=_RowBase,
    **_fields(HOP_TEXT, ("hop", "packets"), ("sojourn_mean_us",)),
)
SeriesRow = create_model(
    "SeriesRow",
    __base__=_RowBase,
    **_fields(("flow",), ("stream",), ("time_s", "cwnd_bytes", "goodput_gbps")),
)


class StoredRun(BaseModel):
    """One ``runs/<run_id>.json`` file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    run_id: str
    fingerprint: str
    flows: list[FlowRow] = Field(min_length=1)  # type: ignore[valid-type]
    stations: list[StationRow]  # type: ignore[valid-type]
    flow_stations: list[FlowStationRow]  # type: ignore[valid-type]
    tcp_series: list[SeriesRow] | None = None  # type: ignore[valid-type]


def quantile_columns() -> tuple[str, ...]:
    """Return the ``cdf.*`` columns every flow row has."""
    return tuple(quantile_name(p) for p in CDF_PERCENTS)


def read_stored_run(path: Path) -> tuple[dict | None, str | None]:
    """Read and validate a stored run: ``(record, None)`` or ``(None, why damaged)``.

    The record is returned as read (its rows' columns in their stored order).
    """
    if not path.is_file():
        return None, "not a regular file"
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror or exc})"
    except UnicodeDecodeError:
        return None, "not UTF-8 text"
    try:
        obj = json.loads(text)
    except ValueError as exc:
        return None, f"not JSON ({exc})"
    if isinstance(obj, dict) and "row" in obj and "flows" not in obj:
        return None, OLD_FORMAT
    if isinstance(obj, dict) and "stations" in obj and "flow_stations" not in obj:
        return None, NO_FLOW_STATIONS
    try:
        StoredRun.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "top level"
        return None, f"{where}: {err.get('msg', 'invalid')}"
    for i, row in enumerate(obj["flows"]):
        missing = [c for c in quantile_columns() if c not in row]
        if missing:
            return None, f"flows.{i}: {missing[0]} is missing"
    return obj, None


def row_mismatch(rec: dict, spec: RunSpec, name: str) -> str | None:
    """Why a valid record is not the run ``spec`` (None if it is)."""
    if rec["run_id"] != spec.run_id or name != f"{spec.run_id}.json":
        return f"holds run {rec['run_id']!r}, not {spec.run_id!r}"
    want = {
        "run_id": spec.run_id,
        "config": spec.config_index,
        "replication": spec.replication,
        "seed": spec.seed,
        **spec.params,
    }
    for table in ("flows", "stations", "flow_stations"):
        for i, row in enumerate(rec[table]):
            for key, value in want.items():
                if key not in row or row[key] != value or type(row[key]) is not type(value):
                    return f"{table}.{i}: {key} is {row.get(key)!r}, the run has {value!r}"
    return None
