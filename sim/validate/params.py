"""The calibrated parameter file (TOML): ``[costs]`` and ``[calibration]``.

``[costs]`` is a partial scenario: its keys work as ``--set costs.KIND.FIELD=V``
and :func:`params_overrides` returns them as dotted overrides for
:func:`sim.spec.load.load_scenario`. ``[calibration]`` holds the endpoint term
(add it to simulated round trips to compare them with measured ones), the
elements, the fitted and held-out cases and what stayed undetermined.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import tomli_w

from sim.analysis.io import OUTPUT_FIX, atomic_write_text
from sim.errors import UserError
from sim.spec.load import read_toml
from sim.testbed.render import COMPOSITION
from sim.validate.calibrate import Fit
from sim.validate.models import SCHEMA_VERSION

_HEADER = """\
# podnetsim calibrate: per-hop costs fitted to real-kernel round trips.
# [costs] is a partial scenario: apply it as dotted overrides, e.g.
#   podnetsim simulate SCENARIO --set costs.veth.per_packet_us=...
# or sim.validate.params.params_overrides(PATH) -> load_scenario(path, overrides).
# Simulated round trips exclude the timing tool's own software cost:
# add [calibration].endpoint_us to each (podnetsim compare does).
"""


_COST_FIELDS = ("per_packet_us", "per_byte_ns", "propagation_us")


def _num(v: float) -> float:
    """Return ``v`` rounded to 1e-6 (microseconds: picoseconds), refusing NaN and infinity."""
    if not math.isfinite(v):
        raise ValueError(f"cannot write {v} to the parameter file")
    return round(v, 6)


def write_params(fit: Fit, path: str | Path, *, source: dict[str, str] | None = None) -> None:
    """Write the parameter file.

    Parameters
    ----------
    fit : Fit
        From :func:`sim.validate.calibrate.calibrate`.
    path : str or Path
        Output file.
    source : dict or None, default None
        ``measurements``, ``scenario``, ``scenario_sha256``, ``timing``
        recorded in ``[calibration]``.
    """
    costs: dict[str, Any] = {"nat_extra_us": _num(fit.costs.nat_extra_us)}
    for kind in COMPOSITION:
        c = getattr(fit.costs, kind)
        costs[kind] = {f: _num(getattr(c, f)) for f in _COST_FIELDS}
    cal = {
        "schema_version": SCHEMA_VERSION,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "endpoint_us": _num(fit.endpoint_us),
        "ip_bytes": fit.ip_bytes,
        "fit_on": list(fit.fit_on),
        "held_out": list(fit.held_out),
        "undetermined": list(fit.undetermined),
        **{k: str(v) for k, v in (source or {}).items()},
        "elements_us": {e: _num(v) for e, v in fit.elements_us.items()},
        "cases": {
            case: {
                "src": c.src,
                "dst": c.dst,
                "measured_p50_us": _num(c.measured_p50_us),
                "model_p50_us": _num(c.model_p50_us),
                "fitted": c.fitted,
            }
            for case, c in fit.cases.items()
        },
    }
    text = tomli_w.dumps({"costs": costs, "calibration": cal})
    atomic_write_text(Path(path), _HEADER + "\n" + text, "--output", OUTPUT_FIX)


def read_params(path: str | Path) -> tuple[dict[str, Any], dict]:
    """Read a parameter file: (dotted ``costs.*`` overrides, the ``[calibration]`` table).

    Raises
    ------
    UserError
        Missing or malformed file, no ``[costs]`` table, or a missing or
        negative ``[calibration].endpoint_us``.
    """
    raw = read_toml(path, UserError)
    costs, cal = raw.get("costs"), raw.get("calibration", {})
    fix = "give a parameter file written by `podnetsim calibrate`"
    if not isinstance(costs, dict):
        raise UserError("no [costs] table", file=str(path), fix=fix)
    endpoint = cal.get("endpoint_us") if isinstance(cal, dict) else None
    if not isinstance(endpoint, int | float) or endpoint < 0:
        raise UserError(
            "missing or negative endpoint_us",
            file=str(path),
            field="calibration.endpoint_us",
            fix=fix,
        )
    overrides: dict[str, Any] = {}

    def flatten(prefix: str, table: dict) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                flatten(f"{prefix}.{key}", value)
            else:
                overrides[f"{prefix}.{key}"] = value

    flatten("costs", costs)
    return overrides, cal


def params_overrides(path: str | Path) -> dict[str, Any]:
    """Return the ``[costs]`` of a parameter file as dotted scenario overrides."""
    return read_params(path)[0]
