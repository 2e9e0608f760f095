"""Experiment files: a base scenario, parameters to sweep, replications, plots.

An experiment file (TOML) looks like::

    name = "same-vs-cross-latency"
    scenario = "scenarios/article.toml"      # relative to this file
    replications = 10
    duration_s = 0.05
    warmup_s = 0.005
    seed = 2026

    [[flows]]                                 # flows measured (replace the scenario's)
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

``placement`` is a first-class parameter: ``same-node``, ``cross-node``,
``intra-pod`` or ``external:HOST``; it sets ``src``/``dst`` of the placed flows
(default: every flow the experiment declares), picking pods from the scenario
(see :func:`sim.batch.expand.placement_endpoints`) unless ``[placements.NAME]``
gives them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PLOT_KINDS = ("latency-vs-load", "throughput-vs-load", "latency-cdf", "station-breakdown", "drops")


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
        ``station-breakdown``, ``drops``.
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
            "latency-vs-load", "throughput-vs-load", "latency-cdf", "station-breakdown", "drops"
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
    scenario : str or dict
        Path to a scenario file (relative to the experiment file) or an inline table.
    flows : list of dict
        If given, replace the scenario's flows (flow tables as in a scenario file;
        ``src``/``dst`` may be left to ``placement``).
    placement_flows : list of str
        Flows whose endpoints ``placement`` sets (default: all declared flows).
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
    scenario: str | dict
    flows: tuple[dict[str, Any], ...] | None = None
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
