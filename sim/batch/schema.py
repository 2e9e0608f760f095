"""The schema of a stored run (``runs/<run_id>.json``), checked before a resume uses it.

A stored run is ``{"run_id", "fingerprint", "row"}``; ``row`` is the flat row
:func:`sim.batch.runner.execute` returns: identity columns, counts, metrics
(numbers; NaN where undefined), per-station and latency-quantile columns
(``station.*``, ``cdf.*``, numbers), the path and warnings (text), and the swept
parameters' values. A file that does not fit (a list, ``null``, a row without
metrics, a metric that is a string) is damaged: the resume moves it aside and
runs it again.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from .expand import RunSpec
from .runner import CDF_PERCENTS, LATENCY_KEYS

ID_COLUMNS = ("run_id", "config", "replication", "seed")
COUNT_COLUMNS = ("sent", "delivered", "dropped", "in_flight")
METRIC_COLUMNS = (
    "drop_rate",
    "throughput_gbps",
    "offered_gbps",
    *(f"latency_{k}_us" for k in LATENCY_KEYS),
    "rtt_mean_us",
    "rtt_p50_us",
    "rtt_p99_us",
    "transactions_per_s",
)
TEXT_COLUMNS = ("path", "warnings")
NUMERIC_PREFIXES = ("station.", "cdf.")


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


_FIELDS: dict[str, Any] = {
    **{_python_name(c): (str if c == "run_id" else int, Field(alias=c)) for c in ID_COLUMNS},
    **{_python_name(c): (int, Field(alias=c)) for c in COUNT_COLUMNS},
    **{_python_name(c): (float, Field(alias=c)) for c in METRIC_COLUMNS},
    **{_python_name(c): (str, Field(alias=c)) for c in TEXT_COLUMNS},
}
RunRow = create_model("RunRow", __base__=_RowBase, **_FIELDS)


class StoredRun(BaseModel):
    """One ``runs/<run_id>.json`` file."""

    model_config = ConfigDict(extra="forbid", strict=True)

    run_id: str
    fingerprint: str
    row: RunRow  # type: ignore[valid-type]


def quantile_columns() -> tuple[str, ...]:
    """Return the ``cdf.*`` columns every row has."""
    from .runner import _q_name

    return tuple(_q_name(p) for p in CDF_PERCENTS)


def read_stored_run(path: Path) -> tuple[dict | None, str | None]:
    """Read and validate a stored run: ``(record, None)`` or ``(None, why damaged)``.

    The record is returned as read (its row's columns in their stored order).
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
    try:
        StoredRun.model_validate(obj)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err.get("loc", ())) or "top level"
        return None, f"{where}: {err.get('msg', 'invalid')}"
    missing = [c for c in quantile_columns() if c not in obj["row"]]
    if missing:
        return None, f"row: {missing[0]} is missing"
    return obj, None


def row_mismatch(rec: dict, spec: RunSpec, name: str) -> str | None:
    """Why a valid record is not the run ``spec`` (None if it is)."""
    row = rec["row"]
    if rec["run_id"] != spec.run_id or name != f"{spec.run_id}.json":
        return f"holds run {rec['run_id']!r}, not {spec.run_id!r}"
    want = {
        "run_id": spec.run_id,
        "config": spec.config_index,
        "replication": spec.replication,
        "seed": spec.seed,
        **spec.params,
    }
    for key, value in want.items():
        if key not in row or row[key] != value or type(row[key]) is not type(value):
            return f"row: {key} is {row.get(key)!r}, the run has {value!r}"
    return None
