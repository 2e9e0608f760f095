"""Execute one run spec: build the scenario, simulate, reduce to tidy rows.

A run's record is ``{"flows": [...], "stations": [...], "flow_stations": [...]}``:
one row per flow of the run (measured and background,
:func:`sim.analysis.rows.flow_rows`), one per station
(:func:`sim.analysis.rows.station_rows`) and one per flow, direction and hop of its path
(:func:`sim.analysis.rows.flow_station_rows`), each prefixed with the
run's identity (``run_id, config, replication, seed``) and its swept parameter
values; plus ``"tcp_series"`` when a tcp flow records its window
(:func:`sim.analysis.tcp_series.series_rows`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.analysis.rows import flow_rows, flow_station_rows, station_rows
from sim.analysis.summary import summarize
from sim.analysis.tcp_series import series_rows
from sim.engine.run import RunResult, simulate
from sim.spec.load import scenario_from_dict

from .expand import RunSpec


def identity(spec: RunSpec) -> dict[str, Any]:
    """Return the columns that name a run: ids, seed, then its parameter values."""
    return {
        "run_id": spec.run_id,
        "config": spec.config_index,
        "replication": spec.replication,
        "seed": spec.seed,
        **spec.params,
    }


def simulate_spec(spec: RunSpec) -> RunResult:
    """Build the scenario of ``spec`` (its overrides applied) and simulate it."""
    scn = scenario_from_dict(spec.scenario_raw, spec.file, spec.overrides, Path(spec.base_dir))
    return simulate(scn, seed=spec.seed, file=spec.file, engine=spec.engine)


def execute(spec: RunSpec) -> dict[str, list[dict[str, Any]]]:
    """Run ``spec`` and return its record: flow, station and flow-station rows.

    Metrics count each flow's packets sent in the window (warm-up removed):
    counts, drop rate, one-way latency (us), delivered and offered throughput
    (Gbit/s), round trips (request-response), drops by reason, latency
    quantiles; stations give utilization, mean wait and sojourn (us), mean and
    maximum number in the station, drops; a flow-station row the flow's own
    packets' mean sojourn (us) at one hop of its path.
    """
    res = simulate_spec(spec)
    sm = summarize(res)
    ids = identity(spec)
    record = {
        "flows": [{**ids, **r} for r in flow_rows(res, sm, spec.measured_flows)],
        "stations": [{**ids, **r} for r in station_rows(res, sm)],
        "flow_stations": [{**ids, **r} for r in flow_station_rows(res, sm)],
    }
    series = series_rows(res)
    if series:
        record["tcp_series"] = [{**ids, **r} for r in series]
    return record
