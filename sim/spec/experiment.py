"""Experiment files: a base scenario, parameters to sweep, replications, plots.

An experiment file (TOML) looks like::

    name = "same-vs-cross-latency"
    scenario = "scenarios/article.toml"      # relative to this file
    replications = 10
    duration_s = 0.05
    warmup_s = 0.005
    seed = 2026

    replace_flows = true                      # drop the scenario's own flows
    [[flows]]                                 # added to the scenario's flows
    name = "probe"
    kind = "poisson"
    size_bytes = 1500

    [sweep]
    placement = ["same-node", "cross-node"]  # grid: every combination
    "flows.probe.rate_gbps" = [1.0, 2.0, 4.0]

    [zip]                                     # varied together (equal lengths)

    [quick]                                   # what --quick changes
    replications = 2
    duration_s = 0.01

    [plots]
    x = "flows.probe.rate_gbps"
    x_label = "offered load (Gbit/s of 1500 B packets)"

An experiment's ``[[flows]]`` are added to the scenario's; ``replace_flows =
true`` replaces them instead. ``measure`` names the flows whose role is
``measured`` in the results (default: the experiment's own flows, or every flow
if it declares none); the others are ``background``. Every flow gets its rows.

``placement`` is a first-class parameter: ``same-node``, ``cross-node``,
``intra-pod`` or ``external:HOST``; it sets ``src``/``dst`` of the placed flows
(default: the experiment's own flows, or every flow if it declares none),
picking pods from the scenario (see
:func:`sim.batch.expand.placement_endpoints`) unless ``[placements.NAME]`` gives
them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PLOT_KINDS = (
    "latency-vs-load",
    "throughput-vs-load",
    "latency-cdf",
    "station-breakdown",
    "drops",
    "tcp-series",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PlacementSpec(_Frozen):
    """Explicit endpoints of a named placement."""

    src: str
    dst: str


class QuickSpec(_Frozen):
    """What ``--quick`` changes (smoke tests)."""

    replications: int = Field(2, ge=1)
    duration_s: float | None = Field(None, gt=0)
    warmup_s: float | None = Field(None, ge=0)
    sweep: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}


class PlotSpec(_Frozen):
    """Which plots to draw and how.

    Attributes
    ----------
    kinds : list of str
        Any of ``latency-vs-load``, ``throughput-vs-load``, ``latency-cdf``,
        ``station-breakdown``, ``drops``, ``tcp-series`` (drawn when a tcp flow has
        ``record_cwnd``).
    x : str or None
        Swept parameter on the x axis (default: the first swept parameter that is
        not ``placement``).
    x_label : str or None
        Axis label with its unit.
    group : str
        Parameter whose values are separate lines (default ``placement``).
    cdf_at : list
        Values of ``x`` at which to draw latency CDFs (default: lowest and highest).
    breakdown_at : float or None
        Value of ``x`` for the per-station breakdown (default: the highest with no drops).
    log_latency : bool
        Logarithmic latency axis.
    """

    kinds: tuple[
        Literal[
            "latency-vs-load",
            "throughput-vs-load",
            "latency-cdf",
            "station-breakdown",
            "drops",
            "tcp-series",
        ],
        ...,
    ] = PLOT_KINDS
    x: str | None = None
    x_label: str | None = None
    group: str = "placement"
    cdf_at: tuple[Any, ...] = ()
    breakdown_at: float | None = None
    log_latency: bool = True


class Experiment(_Frozen):
    """A whole experiment file.

    Attributes
    ----------
    name, description : str
        Identification.
    question : str
        The question the experiment answers (shown in reports).
    scenario : str or dict
        Path to a scenario file (relative to the experiment file) or an inline table.
    flows : list of dict
        Flows added to the scenario's (flow tables as in a scenario file;
        ``src``/``dst`` may be left to ``placement``). A name the scenario also
        uses is an error unless ``replace_flows``.
    replace_flows : bool or None
        True: the experiment's flows replace the scenario's. False: they are
        added. Unset: added, with a warning naming the scenario's flows that run
        beside them (experiments written when flows replaced silently).
    measure : list of str or None
        Flows whose role is ``measured`` (default: the experiment's own flows,
        or all flows if it declares none).
    placement_flows : list of str
        Flows whose endpoints ``placement`` sets (default: the experiment's own
        flows, or all flows if it declares none).
    placements : dict
        Explicit endpoints for placement names.
    sweep : dict
        Grid parameters: dotted scenario field (or ``placement``) -> list of values.
    zip : dict
        Parameters varied together; every list has the same length.
    set : dict
        Fixed overrides applied to every run (dotted field -> value).
    replications : int
        Independent replications per configuration.
    duration_s, warmup_s : float
        Simulated time and warm-up per run, seconds.
    seed : int
        Base seed of the batch's SeedSequence.
    common_random_numbers : bool
        Reuse the same arrival streams across configurations of a replication.
    quick : QuickSpec
        What ``--quick`` changes.
    plots : PlotSpec
        Plot settings.
    engine : {"auto", "simpy", "compiled"}
        Engine of the runs (identical results): ``auto`` runs the compiled one
        where every flow is open loop (:mod:`sim.engine.compiled.select`).
    """

    name: str = Field(min_length=1)
    description: str = ""
    question: str = ""
    scenario: str | dict
    flows: tuple[dict[str, Any], ...] | None = None
    replace_flows: bool | None = None
    measure: tuple[str, ...] | None = None
    placement_flows: tuple[str, ...] | None = None
    placements: dict[str, PlacementSpec] = {}
    sweep: dict[str, list[Any]] = {}
    zip: dict[str, list[Any]] = {}
    set: dict[str, Any] = {}
    replications: int = Field(10, ge=1)
    duration_s: float = Field(0.05, gt=0)
    warmup_s: float = Field(0.005, ge=0)
    seed: int = Field(2026, ge=0)
    common_random_numbers: bool = True
    quick: QuickSpec = QuickSpec()
    plots: PlotSpec = PlotSpec()
    engine: Literal["auto", "simpy", "compiled"] = "auto"
