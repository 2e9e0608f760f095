"""Which engine runs a scenario: ``simpy``, ``compiled`` or ``auto``.

The compiled engine runs a scenario when every flow is open loop (its packets do
not depend on the network: ``poisson``, ``constant``, ``onoff``, ``trace``) and
numba is installed. ``auto`` picks it then and the SimPy engine otherwise;
``compiled`` on a scenario it cannot run is a user error naming the flow.
"""

from __future__ import annotations

import importlib.util

from sim.errors import UserError
from sim.spec.scenario import Scenario
from sim.spec.workload import OPEN_LOOP_KINDS

ENGINES = ("auto", "simpy", "compiled")
COMPILED_KINDS = (*OPEN_LOOP_KINDS, "trace")
INSTALL_FIX = "pip install 'podnetsim[fast]' (or use --engine simpy)"


def numba_available() -> bool:
    """Whether numba can be imported (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def blocking_flow(scenario: Scenario) -> tuple[str, str] | None:
    """Return what keeps the compiled engine from running ``scenario``: (field, why), or None."""
    if scenario.datapath.model != "stations":
        return "datapath.model", (
            f"the {scenario.datapath.model!r} data path (cores revisited by a packet) "
            "runs only on the SimPy engine so far"
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
