"""Which flows an experiment runs, measures and places.

* An experiment's ``[[flows]]`` are **added** to the base scenario's flows.
  ``replace_flows = true`` replaces the scenario's flows instead.
* A flow name both declare is an error (unless ``replace_flows = true``): the
  experiment would otherwise override a scenario flow it did not mean to.
* ``replace_flows`` unset while the scenario has flows: they run as background
  traffic and a **warning** names them (experiments written before this rule
  relied on silent replacement); ``replace_flows = false`` keeps them without it.
* ``measure`` lists the flows whose role is ``measured``; default: the
  experiment's own flows, or every flow if it declares none. ``placement_flows``
  (the flows ``placement`` moves) has the same default.
"""

from __future__ import annotations

from pathlib import Path

from sim.errors import ExperimentError
from sim.spec.experiment import Experiment


def merge_flows(exp: Experiment, scn_raw: dict, base_dir: Path, file: str) -> list[str]:
    """Put the experiment's flows into ``scn_raw`` (in place); return warnings.

    Raises
    ------
    ExperimentError
        ``replace_flows = true`` with no flows of its own, or a flow name the
        scenario also declares.
    """
    if exp.flows is None:
        if exp.replace_flows:
            raise ExperimentError(
                "replace_flows = true but the experiment declares no [[flows]]: nothing "
                "would be simulated",
                file=file,
                field="replace_flows",
                fix="add [[flows]] to the experiment, or remove replace_flows",
            )
        return []
    own = [dict(f) for f in exp.flows]
    for f in own:  # the experiment's own trace files: relative to it
        tf = f.get("trace_file")
        if isinstance(tf, str) and not Path(tf).is_absolute():
            f["trace_file"] = str((base_dir / tf).resolve())
    theirs = [f for f in scn_raw.get("flows", []) if isinstance(f, dict)]
    if exp.replace_flows:
        scn_raw["flows"] = own
        return []
    _check_collisions(own, theirs, file)
    scn_raw["flows"] = [*theirs, *own]
    if exp.replace_flows is None and theirs:
        names = ", ".join(repr(f.get("name")) for f in theirs)
        return [
            f"{file}: replace_flows: the base scenario's flows {names} run beside the "
            "experiment's as background traffic (an experiment's [[flows]] add to the "
            "scenario's). Fix: set replace_flows = true to drop them, or "
            "replace_flows = false to keep them without this warning"
        ]
    return []


def _check_collisions(own: list[dict], theirs: list[dict], file: str) -> None:
    names = {f.get("name") for f in theirs}
    for i, f in enumerate(own):
        if f.get("name") in names:
            raise ExperimentError(
                f"flow {f.get('name')!r} is also a flow of the base scenario; an "
                "experiment's [[flows]] add to the scenario's",
                file=file,
                field=f"flows.{i}.name",
                fix="rename the flow, or set replace_flows = true to replace the scenario's flows",
            )


def _names(exp: Experiment, listed: tuple[str, ...] | None, flow_names: tuple[str, ...]):
    if listed is not None:
        return tuple(listed)
    if exp.flows is not None:
        return tuple(f.get("name") for f in exp.flows)
    return flow_names


def chosen_flows(
    exp: Experiment, flow_names: tuple[str, ...], file: str
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Return the measured and the placed flows, checked against ``flow_names``.

    Raises
    ------
    ExperimentError
        A name that is not a flow, or nothing to measure.
    """
    measured = _names(exp, exp.measure, flow_names)
    placed = _names(exp, exp.placement_flows, flow_names)
    for fld, names in (("measure", measured), ("placement_flows", placed)):
        for name in names:
            if name not in flow_names:
                raise ExperimentError(
                    f"{fld} names {name!r}, which is not a flow",
                    file=file,
                    field=fld,
                    fix=f"use one of: {', '.join(flow_names) or '(no flows)'}",
                )
    if not measured:
        raise ExperimentError(
            "nothing to measure: the scenario and the experiment declare no flows",
            file=file,
            field="measure" if exp.measure is not None else "flows",
            fix="add [[flows]] to the experiment, or name flows in measure",
        )
    return measured, placed
