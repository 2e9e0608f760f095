"""Which engine runs a scenario: ``simpy``, ``compiled`` or ``auto``.

The compiled engine runs a scenario when every flow is open loop (its packets do
not depend on the network: ``poisson``, ``constant``, ``onoff``, ``trace``) and
numba is installed. ``auto`` picks it then and the SimPy engine otherwise;
``compiled`` on a scenario it cannot run is a user error naming the flow.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence

from sim.errors import UserError
from sim.spec.scenario import Scenario
from sim.spec.workload import OPEN_LOOP_KINDS

ENGINES = ("auto", "simpy", "compiled")
COMPILED_KINDS = (*OPEN_LOOP_KINDS, "trace")
INSTALL_FIX = "pip install 'podnetsim[fast]' (or use --engine simpy)"


def numba_available() -> bool:
    """Whether numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def _realtime_pods(dp) -> list[str]:
    """Pods whose threads run at real-time priority (``[datapath] realtime``, {pod = true})."""
    rt = getattr(dp, "realtime", None) or {}
    return [pod for pod, on in rt.items() if on] if isinstance(rt, dict) else list(rt)


def blocking_flow(scenario: Scenario) -> tuple[str, str] | None:
    """Return what keeps the compiled engine from running ``scenario``: (field, why), or None."""
    rt = _realtime_pods(scenario.datapath)
    if rt:  # preemption is not modelled by the compiled loop
        return f"datapath.realtime.{rt[0]}", (
            f"real-time pods ({', '.join(rt)}) run only on the SimPy engine so far"
        )
    for kind in type(scenario.costs).model_fields:
        cost = getattr(scenario.costs, kind)
        if getattr(cost, "loss", 0.0) > 0:
            return f"costs.{kind}.loss", (
                f"random loss at the {kind} stations runs only on the SimPy engine so far"
            )
    for i, f in enumerate(scenario.flows):
        if f.kind not in COMPILED_KINDS:
            return f"flows.{i}.kind", (
                f"flow {f.name!r} is {f.kind}, a closed-loop flow (it reacts to "
                "deliveries and drops), which only the SimPy engine runs"
            )
    return None


def choose(scenario: Scenario, engine: str, file: str = "<scenario>") -> tuple[str, str]:
    """Choose the engine that runs ``scenario`` when ``engine`` is asked for, and say why.

    Returns
    -------
    tuple of str
        ``("simpy" | "compiled", note)``; the note says why ``auto`` chose so.

    Raises
    ------
    UserError
        ``engine`` is unknown, or ``compiled`` was asked for and cannot run.
    """
    if engine not in ENGINES:
        raise UserError(
            f"unknown engine {engine!r}", field="engine", fix="use auto, simpy or compiled"
        )
    if engine == "simpy":
        return "simpy", "asked for"
    block = blocking_flow(scenario)
    if block is not None:
        if engine == "compiled":
            raise UserError(
                f"the compiled engine cannot run this scenario: {block[1]}",
                file=file,
                field=block[0],
                fix="use --engine simpy or --engine auto",
            )
        return "simpy", block[1]
    if not numba_available():
        if engine == "compiled":
            raise UserError(
                "the compiled engine needs numba, which is not installed", fix=INSTALL_FIX
            )
        return "simpy", f"numba is not installed ({INSTALL_FIX})"
    return "compiled", "every flow is open loop"


def plan_batch(
    scenarios: Sequence[Scenario],
    engine: str,
    runs_each: int,
    file: str,
    field: str,
    labels: Sequence[str] = (),
) -> dict:
    """Which engine runs each configuration of a batch, and the batch's record of it.

    Parameters
    ----------
    scenarios : sequence of Scenario
        One scenario per configuration.
    engine : {"auto", "simpy", "compiled"}
        The engine asked for (experiment file's ``engine`` or ``run --engine``).
    runs_each : int
        Runs (replications) per configuration.
    file, field : str
        Where ``engine`` was asked for, for messages.
    labels : sequence of str, optional
        A name for each configuration (its parameter values), for messages.

    Returns
    -------
    dict
        ``engine`` (``simpy``, ``compiled`` or ``mixed``: what runs),
        ``engine_requested``, ``engine_runs`` (runs per engine), ``engine_why``
        and ``engine_of`` (the engine of each configuration).

    Raises
    ------
    UserError
        ``engine`` is ``compiled`` and a configuration's flow keeps it from running
        (the message names the flow), or numba is missing.
    """
    of: list[str] = []
    whys: list[str] = []
    for i, scn in enumerate(scenarios):
        try:
            ran, why = choose(scn, engine, file)
        except UserError as err:
            where = labels[i] if labels else f"configuration {i}"
            raise _refusal(err, engine, where, file, field) from None
        of.append(ran)
        whys.append(why)
    counts = {e: of.count(e) * runs_each for e in ("compiled", "simpy") if e in of}
    kind = next(iter(counts)) if len(counts) == 1 else "mixed"
    why = whys[0] if kind != "mixed" else whys[of.index("simpy")]
    return {
        "engine": kind,
        "engine_requested": engine,
        "engine_runs": counts,
        "engine_why": why,
        "engine_of": of,
    }


def _refusal(err: UserError, engine: str, where: str, file: str, field: str) -> UserError:
    """Blame a configuration's refusal of ``engine`` on the batch's ``field``."""
    if err.field is None:  # numba is missing
        return UserError(err.problem, file=file, field=field, fix=err.fix)
    use = "--engine auto" if field.startswith("--") else 'engine = "auto"'
    return UserError(
        f"engine {engine!r}: {where}: {err.field}: {err.problem}",
        file=file,
        field=field,
        fix=f"use {use} (SimPy runs what the compiled engine cannot) or simpy",
    )


def describe(plan: dict) -> str:
    """One line saying which engine ran a batch and why, e.g. for stderr."""
    if plan["engine"] == "mixed":
        counts = ", ".join(f"{e} {n} runs" for e, n in plan["engine_runs"].items())
        return f"engine: mixed ({counts}; simpy where {plan['engine_why']})"
    return f"engine: {plan['engine']} ({plan['engine_why']})"
