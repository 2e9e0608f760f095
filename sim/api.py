"""podnetsim from Python (notebooks, scripts): each step is one call.

>>> from sim import api
>>> scn = api.load_scenario("experiments/scenarios/article.toml")
>>> tables = api.simulate(scn, duration_s=0.01)          # dict of DataFrames
>>> out = api.run_experiment("experiments/packet-size.toml", "results/ps", quick=True)
>>> results = api.load_results(out)                      # runs, stations, summary ...

Every function raises :class:`sim.errors.UserError` (one line naming the file,
the field and the fix) on bad input, as the command line does. See
``docs/python-api.md``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from sim.analysis.results import load_results
from sim.spec.scenario import Scenario

__all__ = ["load_results", "load_scenario", "run_experiment", "simulate"]


def _overrides(params: str | Path | None, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Merge a ``calibrate`` parameter file's costs, then ``overrides`` (which win)."""
    out: dict[str, Any] = {}
    if params is not None:
        from sim.validate.params import params_overrides

        out.update(params_overrides(params))
    out.update(overrides or {})
    return out


def load_scenario(
    path: str | Path,
    overrides: dict[str, Any] | None = None,
    *,
    params: str | Path | None = None,
) -> Scenario:
    """Read and validate a scenario file.

    Parameters
    ----------
    path : str or Path
        Scenario file (TOML).
    overrides : dict, optional
        Dotted field paths to values, as ``--set`` (``{"flows.probe.load": 0.9}``).
    params : str or Path, optional
        Parameter file written by ``podnetsim calibrate`` (its ``[costs]``).

    Returns
    -------
    Scenario
        The validated, frozen scenario.
    """
    from sim.spec.load import load_scenario as load

    return load(path, _overrides(params, overrides))


def simulate(
    scenario: Scenario | str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    params: str | Path | None = None,
    seed: int | None = None,
    duration_s: float | None = None,
    warmup_s: float | None = None,
) -> dict[str, pd.DataFrame]:
    """Simulate a scenario once; its flows, stations and packets as DataFrames.

    Parameters
    ----------
    scenario : Scenario, str or Path
        A scenario from :func:`load_scenario`, or a scenario file.
    overrides : dict, optional
        Dotted overrides (only with a file).
    params : str or Path, optional
        ``calibrate`` parameter file (only with a file).
    seed : int, optional
        Seed of the run (default: the scenario's).
    duration_s, warmup_s : float, optional
        Simulated time and warm-up, seconds (default: the scenario's).

    Returns
    -------
    dict of str to DataFrame
        ``flows``: one row per flow, the columns of a batch's ``runs`` table from
        ``flow`` on (latencies in us, throughput in Gbit/s); ``stations``: one row
        per station; ``flow_stations``: one row per flow, direction (``forward``,
        or ``reply`` for its replies or acknowledgements) and hop of its path (the
        flow's own packets and mean sojourn there, us: a station's row mixes every
        flow that crosses it); ``packets``: one row per packet.
    """
    from sim.analysis.rows import CDF_PREFIX, flow_rows, flow_station_rows, station_rows
    from sim.analysis.summary import summarize
    from sim.analysis.tables import packet_table
    from sim.engine.run import simulate as run

    file = "<scenario>"
    if not isinstance(scenario, Scenario):
        file = str(scenario)
        scenario = load_scenario(scenario, overrides, params=params)
    elif overrides or params:
        raise TypeError("overrides and params apply to a scenario file; pass its path")
    res = run(scenario, seed=seed, duration_s=duration_s, warmup_s=warmup_s, file=file)
    sm = summarize(res)
    flows = pd.DataFrame(flow_rows(res, sm, tuple(f.name for f in scenario.flows)))
    flows = flows[[c for c in flows.columns if not c.startswith(CDF_PREFIX)]]
    return {
        "flows": flows,
        "stations": pd.DataFrame(station_rows(res, sm)),
        "flow_stations": pd.DataFrame(flow_station_rows(res, sm)),
        "packets": packet_table(res),
    }


def run_experiment(
    path: str | Path,
    out: str | Path | None = None,
    *,
    quick: bool = False,
    jobs: int = 1,
    resume: bool = False,
    force: bool = False,
    params: str | Path | None = None,
    sets: dict[str, Any] | None = None,
    plots: bool = True,
) -> Path:
    """Run an experiment's batch and write its results directory.

    The parameters are those of :func:`sim.batch.run_experiment` of the same
    names (this call keeps the ones a notebook needs).

    Returns
    -------
    Path
        The results directory (read it with :func:`load_results`). Failed runs
        (if any) are named in a warning and in ``manifest.json``.
    """
    from sim.batch import run_experiment as run_batch

    rep = run_batch(
        path, out, jobs=jobs, resume=resume, force=force, quick=quick,
        params=params, sets=sets, plots=plots,
    )  # fmt: skip
    for run_id, values, err in rep.failures:
        warnings.warn(f"run {run_id} {values} failed: {err}", stacklevel=2)
    return Path(rep.out)
