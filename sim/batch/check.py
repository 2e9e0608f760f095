"""``podnetsim check`` of an experiment file: validate it whole, describe the batch.

An experiment file is told from a scenario file by its top-level ``scenario``
key (a scenario has ``nodes`` instead).
"""

from __future__ import annotations

import re
from pathlib import Path

from .expand import Batch, load_experiment

_SCENARIO_KEY = re.compile(r"""^\s*["']?scenario["']?\s*=""")


def is_experiment_file(path: str | Path) -> bool:
    """Tell whether ``path`` reads as an experiment file.

    False if unreadable: the scenario loader then reports the problem.

    Only the top-level keys are looked at (the lines before the first table
    header), without parsing the file: a 1,000-node scenario is 6 MB of TOML,
    which the loader parses once, not twice.
    """
    try:
        with open(path, encoding="utf-8-sig", errors="replace") as fh:
            for line in fh:
                if line.lstrip().startswith("["):
                    return False
                if _SCENARIO_KEY.match(line):
                    return True
    except OSError:
        return False
    return False


def check_experiment(
    path: str | Path, sets: dict | None = None, max_runs: int | None = None
) -> list[str]:
    """Validate an experiment as ``podnetsim run`` would, with and without ``--quick``.

    Parameters
    ----------
    path : str or Path
        Experiment file.
    sets : dict, optional
        ``--set`` overrides applied to every run, as ``podnetsim run --set``.
    max_runs : int, optional
        Ceiling on runs, as ``podnetsim run --max-runs``.

    Returns
    -------
    list of str
        A description of both batches (configurations, replications, runs), then
        any warnings (``warning: ...``).

    Raises
    ------
    ExperimentError
        The first problem, as one line naming the file, the field and the fix.
    """
    full = load_experiment(path, max_runs=max_runs, sets=sets)
    quick = load_experiment(path, quick=True, max_runs=max_runs, sets=sets)
    exp = full.experiment
    scenario = exp.scenario if isinstance(exp.scenario, str) else "(inline table)"
    lines = [f"experiment {exp.name!r} ({path}): valid", f"  base scenario: {scenario}"]
    for label, batch in (("batch", full), ("--quick", quick)):
        lines.append(f"  {label}: {_describe(batch)}")
    for name in full.param_names:
        values = {repr(c[name]) for c in full.configs}
        lines.append(f"  parameter {name}: {len(values)} values")
    measured = full.runs[0].measured_flows
    lines.append(f"  measured flows (first configuration): {', '.join(measured)}")
    return lines + [f"warning: {w}" for w in full.warnings]


def _describe(batch: Batch) -> str:
    n_configs = len(batch.configs)
    reps = len(batch.runs) // n_configs
    run = batch.runs[0]
    return (
        f"{n_configs} configurations x {reps} replications = {len(batch.runs)} runs "
        f"of {run.duration_s} s simulated ({run.warmup_s} s warm-up)"
    )
