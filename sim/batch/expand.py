"""Expand an experiment into independent run specs.

The sweep (grid x zipped parameters) gives configurations; each configuration is
run ``replications`` times. Seeds come from one ``numpy.random.SeedSequence`` per
batch: replication ``k`` gets the ``k``-th spawned child, shared by every
configuration (common random numbers: the same flow name draws the same arrival
and size streams in every configuration of a replication). With
``common_random_numbers = false`` each (configuration, replication) gets its own.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from sim.control.cluster import Cluster, build_cluster
from sim.control.resolve import endpoint
from sim.engine.budget import check_work, estimate_work
from sim.errors import ExperimentError, ScenarioError, UserError
from sim.spec.experiment import Experiment
from sim.spec.load import read_toml, scenario_from_dict, set_dotted, validation_error_to_user
from sim.spec.scenario import Scenario

from .flows import chosen_flows, merge_flows

SPECIAL_PARAMS = ("placement", "pod_pairs")


@dataclass(frozen=True)
class RunSpec:
    """One run: a pure function of these fields.

    Attributes
    ----------
    run_id : str
        ``c{config}-r{replication}``; stable across re-expansions of the same file.
    config_index, replication : int
        Position in the sweep and replication number.
    params : dict
        The swept parameter values of this configuration (in file order).
    seed : int
        Seed of this run's random streams.
    scenario_raw : dict
        The base scenario as parsed TOML (with the experiment's flows and fixed sets).
    overrides : dict
        Dotted overrides of this configuration (placement already turned into src/dst).
    base_dir : str
        Directory for relative paths in the scenario (trace files).
    file : str
        Scenario file name for messages.
    duration_s, warmup_s : float
        Run length and warm-up, seconds.
    measured_flows : tuple of str
        Flows whose packets make the run's metrics.
    fingerprint : str
        Hash of everything above except the id; guards resumes against a changed file.
    engine : str
        ``simpy`` or ``compiled``: the engine that runs it (not in the fingerprint:
        both give identical results).
    """

    run_id: str
    config_index: int
    replication: int
    params: dict[str, Any]
    seed: int
    scenario_raw: dict
    overrides: dict[str, Any]
    base_dir: str
    file: str
    duration_s: float
    warmup_s: float
    measured_flows: tuple[str, ...]
    fingerprint: str = field(default="")
    engine: str = "simpy"


@dataclass(frozen=True)
class Batch:
    """An expanded experiment.

    Attributes
    ----------
    swept : dict
        Each swept or zipped parameter's values, in file order.
    params_file : dict or None
        ``{"file", "sha256"}`` of the ``--params`` file applied to every run.
    warnings : tuple of str
        Warnings found while expanding (e.g. the scenario's flows run as
        background traffic); the caller reports them.
    """

    experiment: Experiment
    file: str
    file_sha256: str
    param_names: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    runs: tuple[RunSpec, ...]
    quick: bool
    swept: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    params_file: dict | None = None
    warnings: tuple[str, ...] = ()
    engine: dict = field(default_factory=dict)


def _fingerprint(obj: Any) -> str:
    text = json.dumps(obj, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def placement_endpoints(scn: Scenario, placement: str, explicit: dict) -> tuple[str, str]:
    """Source and destination endpoints of a placement.

    ``same-node``: the second pod of the first node with two pods, to the first.
    ``cross-node``: the first pod of another node, to that same first pod.
    ``intra-pod``: second container of the first pod with two, to its first.
    ``external:HOST``: that same first pod, to external host HOST.

    Raises
    ------
    ValueError
        Unknown placement, or one the scenario cannot provide.
    """
    if placement in explicit:
        p = explicit[placement]
        return p.src, p.dst
    by_node: dict[str, list[str]] = {n.name: [] for n in scn.nodes}
    for pod in scn.pods:
        by_node[pod.node].append(pod.name)
    home = next((n for n, pods in by_node.items() if len(pods) >= 2), None)
    if home is None:
        home = next((n for n, pods in by_node.items() if pods), None)
    if home is None:
        raise ValueError("the scenario has no pods to place flows between")
    dst = by_node[home][0]
    if placement == "same-node":
        if len(by_node[home]) < 2:
            raise ValueError("same-node needs a node with two pods")
        return by_node[home][1], dst
    if placement == "cross-node":
        other = next((n for n, pods in by_node.items() if n != home and pods), None)
        if other is None:
            raise ValueError("cross-node needs pods on two nodes")
        return by_node[other][0], dst
    if placement == "intra-pod":
        pod = next((p for p in scn.pods if len(p.containers) >= 2), None)
        if pod is None:
            raise ValueError("intra-pod needs a pod with two containers")
        return f"{pod.name}/{pod.containers[1].name}", f"{pod.name}/{pod.containers[0].name}"
    if placement.startswith("external:"):
        host = placement.split(":", 1)[1]
        if host not in {h.name for h in scn.external_hosts}:
            names = ", ".join(h.name for h in scn.external_hosts) or "none"
            raise ValueError(f"no external host {host!r} (the scenario has: {names})")
        return dst, host
    raise ValueError(
        f"unknown placement {placement!r}; use same-node, cross-node, intra-pod, "
        "external:HOST, or define it under [placements]"
    )


def _apply_config(
    exp: Experiment,
    scn: Scenario,
    raw: dict,
    params: dict[str, Any],
    chosen: tuple[tuple[str, ...], tuple[str, ...]],
) -> tuple[dict, dict[str, Any], tuple[str, ...]]:
    """Raw scenario and overrides of one configuration; returns the measured flows.

    ``chosen`` is (measured flows, placed flows). ``pod_pairs`` copies each placed
    flow once per pair (``NAME-1`` ...); the copies of measured flows are measured.
    """
    measured, placed = chosen
    raw = json.loads(json.dumps(raw))
    overrides = {k: v for k, v in params.items() if k not in SPECIAL_PARAMS}
    placement = params.get("placement")
    pairs = params.get("pod_pairs")
    flows = list(measured)
    if pairs is not None:
        if not isinstance(pairs, int) or isinstance(pairs, bool) or pairs < 1:
            raise ValueError(f"pod_pairs must be a positive integer (got {pairs!r})")
        if placement is None:
            raise ValueError("pod_pairs needs a placement (same-node or cross-node)")
        src, dst = placement_endpoints(scn, placement, exp.placements)
        pods = {p.name: p.node for p in scn.pods}
        src_node, dst_node = pods.get(src), pods.get(dst)
        if src_node is None or dst_node is None:
            raise ValueError("pod_pairs works with pod-to-pod placements")
        templates = [f for f in raw.get("flows", []) if f.get("name") in placed]
        kept = [f for f in raw.get("flows", []) if f.get("name") not in placed]
        new_flows = []
        for i in range(1, pairs + 1):
            raw.setdefault("pods", []).append({"name": f"pair{i}-src", "node": src_node})
            raw["pods"].append({"name": f"pair{i}-dst", "node": dst_node})
            for t in templates:
                f = dict(t)
                f["name"] = f"{t['name']}-{i}"
                f["src"], f["dst"] = f"pair{i}-src", f"pair{i}-dst"
                new_flows.append(f)
        raw["flows"] = kept + new_flows
        copies = [f["name"] for f in new_flows if f["name"].rsplit("-", 1)[0] in measured]
        flows = [n for n in measured if n not in placed] + copies
    elif placement is not None:
        src, dst = placement_endpoints(scn, placement, exp.placements)
        for name in placed:
            overrides[f"flows.{name}.src"] = src
            overrides[f"flows.{name}.dst"] = dst
    return raw, overrides, tuple(flows)


#: Most runs (configurations x replications) a batch may have unless the caller
#: raises it (``podnetsim run --max-runs N``). 10,000 runs of the shipped
#: experiments' length take hours on one core; a bigger batch is rarely meant.
MAX_RUNS = 10_000

#: Experiment names become directory names (``results/<name>``): a plain name.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
NAME_MAX_CHARS = 64


@dataclass
class _Settings:
    """Run length, replications and parameter tables after ``--quick``."""

    replications: int
    duration_s: float
    warmup_s: float
    sweep: dict[str, list[Any]]
    zipped: dict[str, list[Any]]
    quick: bool

    def table_of(self, param: str) -> str:
        """``sweep`` or ``zip``: the table that varies ``param``."""
        return "sweep" if param in self.sweep else "zip"

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.sweep) + tuple(self.zipped)


@dataclass
class _Base:
    """The base scenario as parsed TOML, where it came from, and the fixed overrides."""

    raw: dict
    file: str
    dir: Path
    fixed: dict[str, Any]
    applied: dict = field(default_factory=dict)
    cli: _Cli | None = None
    warnings: list[str] = field(default_factory=list)


def load_experiment(
    path: str | Path,
    quick: bool = False,
    crn: bool | None = None,
    max_runs: int | None = None,
    *,
    params: str | Path | None = None,
    sets: dict[str, Any] | None = None,
    engine: str | None = None,
) -> Batch:
    """Read, validate and expand an experiment file.

    Everything that can be checked without simulating is checked here, before any
    run: the file's fields, the experiment name, parameter value types, the batch
    size, every configuration's scenario and cluster (addresses, endpoints,
    placements, pod pairs) and the plot settings.

    Parameters
    ----------
    path : str or Path
        Experiment file.
    quick, crn : bool
        Apply ``[quick]``; override ``common_random_numbers`` (None: the file's).
    max_runs : int, optional
        Ceiling on configurations x replications (default :data:`MAX_RUNS`).
    params, sets : optional
        A ``podnetsim calibrate`` parameter file and dotted overrides (``run
        --set``) applied to every run after ``[set]``, ``sets`` last.
    engine : str, optional
        Overrides the file's ``engine`` (``auto``, ``simpy``, ``compiled``).

    Raises
    ------
    UserError
        One line naming the file, the field and the fix (``ExperimentError`` for
        the experiment file).
    """
    file = str(path)
    exp = _read_experiment(path, file)
    _check_name(exp, file)
    settings = _settings(exp, quick, file)
    _check_tables(exp, settings, file)
    _check_size(settings, file, MAX_RUNS if max_runs is None else max_runs)
    _check_plots(exp, settings, file)
    cli = _cli_overrides(params, sets or {}, settings)
    base = _base_scenario(exp, Path(path), file, settings, cli)
    scn = _validate_base(exp, base, file)
    chosen = chosen_flows(exp, tuple(f.name for f in scn.flows), file)
    configs = _configs(settings)
    prepared = [_prepare_config(exp, scn, base, p, chosen, settings, file) for p in configs]
    runs = _make_runs(exp, prepared, settings, crn, base)
    plan = _engine_plan(exp, prepared, base, settings, file, engine)
    runs = [replace(r, engine=plan["engine_of"][r.config_index]) for r in runs]
    return Batch(
        experiment=exp,
        file=file,
        file_sha256=hashlib.sha256(Path(path).read_bytes()).hexdigest(),
        param_names=settings.names,
        configs=tuple(configs),
        runs=tuple(runs),
        quick=quick,
        swept={k: tuple(_values(settings, k)) for k in settings.names},
        params_file=cli.params_file,
        warnings=tuple(base.warnings),
        engine={k: v for k, v in plan.items() if k != "engine_of"},
    )


@dataclass
class _Cli:
    """Overrides from the command line: ``--params`` file, then ``--set``."""

    params: dict[str, Any]
    params_file: dict | None
    sets: dict[str, Any]


def _cli_overrides(params: str | Path | None, sets: dict[str, Any], s: _Settings) -> _Cli:
    """Read the ``--params`` file and check ``--set`` against the swept parameters.

    Raises
    ------
    UserError
        A bad parameter file (one line naming it), or ``--set`` of a swept parameter.
    """
    for key in sets:
        if key in s.names:
            raise UserError(
                f"{key!r} is swept by the experiment; --set would be overridden in every run",
                field="--set",
                fix="remove it from --set, or change its values in the experiment's "
                "[sweep]/[zip]",
            )
    if params is None:
        return _Cli({}, None, dict(sets))
    from sim.validate.params import read_params

    overrides, _ = read_params(params)
    digest = hashlib.sha256(Path(params).read_bytes()).hexdigest()
    return _Cli(overrides, {"file": str(params), "sha256": digest}, dict(sets))


def _engine_plan(
    exp: Experiment, prepared: list, base: _Base, s: _Settings, file: str, engine: str | None
) -> dict:
    """Return the engine of each configuration (:func:`sim.engine.compiled.select.plan_batch`)."""
    from sim.engine.compiled.select import plan_batch

    scns = [scenario_from_dict(raw, base.file, ov, base.dir) for _, raw, ov, _ in prepared]
    labels = [" ".join(f"{k}={v}" for k, v in p.items()) or "the scenario" for p, *_ in prepared]
    field_ = "engine" if engine is None else "--engine"
    try:
        return plan_batch(scns, engine or exp.engine, s.replications, file, field_, labels)
    except UserError as err:
        raise ExperimentError(err.problem, file=file, field=err.field, fix=err.fix) from None


def _read_experiment(path: str | Path, file: str) -> Experiment:
    raw = read_toml(path, ExperimentError)
    try:
        return Experiment.model_validate(raw)
    except ValidationError as exc:
        raise validation_error_to_user(exc, file, Experiment, ExperimentError) from None


def _check_name(exp: Experiment, file: str) -> None:
    """Check that the name is a plain, short directory name (it names ``results/NAME``)."""
    name = exp.name
    if len(name) > NAME_MAX_CHARS or not NAME_PATTERN.fullmatch(name):
        shown = name if len(name) <= 40 else name[:40] + "..."
        raise ExperimentError(
            f"name {shown!r} ({len(name)} characters) is not a plain name; it names the "
            "results directory",
            file=file,
            field="name",
            fix=f"use at most {NAME_MAX_CHARS} letters, digits, '.', '_' or '-', starting "
            "with a letter or digit (no '/', no '..')",
        )


def _settings(exp: Experiment, quick: bool, file: str) -> _Settings:
    """Replications, run length and parameter tables, with ``[quick]`` applied."""
    s = _Settings(exp.replications, exp.duration_s, exp.warmup_s, dict(exp.sweep), {}, quick)
    s.zipped = dict(exp.zip)
    if quick:
        q = exp.quick
        s.replications = q.replications
        s.duration_s = q.duration_s if q.duration_s is not None else s.duration_s / 5
        s.warmup_s = q.warmup_s if q.warmup_s is not None else s.warmup_s / 5
        for table, base, changes in (("sweep", s.sweep, q.sweep), ("zip", s.zipped, q.zip)):
            for k, v in changes.items():
                if k not in base:
                    raise ExperimentError(
                        f"quick.{table} changes {k!r}, which {table} does not have",
                        file=file,
                        field=f"quick.{table}.{k}",
                        fix=f"only override parameters of [{table}]",
                    )
                base[k] = v
    if s.warmup_s >= s.duration_s:
        raise ExperimentError(
            f"warm-up {s.warmup_s} s is not shorter than the duration {s.duration_s} s",
            file=file,
            field="warmup_s",
            fix="make warmup_s smaller than duration_s",
        )
    return s


def _field_of(exp: Experiment, s: _Settings, table: str, key: str) -> str:
    """Where the values of ``key`` came from: ``quick.sweep.KEY`` or ``sweep.KEY``."""
    tname = "sweep" if table == "sweep" else "zip"
    from_quick = s.quick and key in getattr(exp.quick, tname)
    return f"quick.{tname}.{key}" if from_quick else f"{tname}.{key}"


def _check_tables(exp: Experiment, s: _Settings, file: str) -> None:
    """Non-empty lists, equal zipped lengths, no parameter twice, one value type each."""
    for table, params in (("sweep", s.sweep), ("zip", s.zipped)):
        for k, values in params.items():
            fld = _field_of(exp, s, table, k)
            if not values:
                raise ExperimentError(
                    "empty list of values",
                    file=file,
                    field=fld,
                    fix="give at least one value, or remove the parameter",
                )
            _check_values(k, values, file, fld)
    if s.zipped and len({len(v) for v in s.zipped.values()}) > 1:
        lens = ", ".join(f"{k}: {len(v)}" for k, v in s.zipped.items())
        raise ExperimentError(
            f"zipped lists differ in length ({lens})",
            file=file,
            field="zip",
            fix="give every zipped parameter the same number of values",
        )
    dup = sorted(set(s.sweep) & set(s.zipped))
    if dup:
        raise ExperimentError(
            f"{dup[0]!r} is both swept and zipped",
            file=file,
            field=f"zip.{dup[0]}",
            fix="put it in one of the two tables",
        )


def _value_kind(v: Any) -> str | None:
    """Return ``number``, ``string`` or ``boolean``; None for anything else (tables, lists)."""
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int | float):
        return "number"
    if isinstance(v, str):
        return "string"
    return None


def _check_values(key: str, values: list[Any], file: str, fld: str) -> None:
    """One parameter's values: scalars of one kind (a table column has one type)."""
    kinds = [_value_kind(v) for v in values]
    for v, kind in zip(values, kinds, strict=True):
        if kind is None:
            raise ExperimentError(
                f"value {v!r} is a {type(v).__name__}; a swept value must be a number, "
                "a string or a boolean",
                file=file,
                field=fld,
                fix="sweep a scalar field (e.g. flows.NAME.rate_gbps), one value per entry",
            )
        if kind == "number" and not math.isfinite(v):
            raise ExperimentError(
                f"value {v!r} is not a finite number", file=file, field=fld, fix="use finite values"
            )
    if len(set(kinds)) > 1:
        mix = ", ".join(f"{v!r} ({k})" for v, k in zip(values, kinds, strict=True))
        raise ExperimentError(
            f"values mix types: {mix}",
            file=file,
            field=fld,
            fix="give every value of a parameter the same type (all numbers or all strings)",
        )
    want = {"placement": "string", "pod_pairs": "number"}.get(key)
    if want is not None and kinds[0] != want:
        raise ExperimentError(
            f"{key} values must be {want}s (got {values[0]!r})",
            file=file,
            field=fld,
            fix='write e.g. placement = ["same-node", "cross-node"] or pod_pairs = [1, 2, 4]',
        )


def _check_size(s: _Settings, file: str, max_runs: int) -> None:
    """Check configurations x replications against ``max_runs``, before anything is built."""
    n_configs = math.prod(len(v) for v in s.sweep.values())
    if s.zipped:
        n_configs *= len(next(iter(s.zipped.values())))
    total = n_configs * s.replications
    if total > max_runs:
        raise ExperimentError(
            f"the batch has {n_configs:,} configurations x {s.replications:,} replications "
            f"= {total:,} runs, above the ceiling of {max_runs:,}",
            file=file,
            field="quick.replications" if s.quick else "replications",
            fix=f"reduce replications or the sweep, or pass --max-runs {total} to allow it",
        )


def _check_plots(exp: Experiment, s: _Settings, file: str) -> None:
    """Check that ``[plots]`` names swept parameters, numeric where an axis needs them."""
    p = exp.plots
    names = s.names
    choices = ", ".join(names) or "(no swept parameters)"
    for fld, value in (("x", p.x), ("group", p.group)):
        if value is None or value in names or (fld == "group" and value == "placement"):
            continue
        raise ExperimentError(
            f"{value!r} is not a swept or zipped parameter",
            file=file,
            field=f"plots.{fld}",
            fix=f"use one of: {choices}",
        )
    if p.x is not None:
        values = _values(s, p.x)
        if _value_kind(values[0]) != "number":  # every plot reads x as a number
            numeric = [n for n in names if _value_kind(_values(s, n)[0]) == "number"]
            raise ExperimentError(
                f"{p.x!r} has non-numeric values ({values[0]!r}); plots.x is a numeric axis",
                file=file,
                field="plots.x",
                fix=f"use a numeric parameter ({', '.join(numeric) or 'none swept'})",
            )
    for v in p.cdf_at:
        if _value_kind(v) != "number":
            raise ExperimentError(
                f"{v!r} is not a number", file=file, field="plots.cdf_at", fix="give values of x"
            )


def _values(s: _Settings, name: str) -> list[Any]:
    return s.sweep.get(name) or s.zipped.get(name) or []


def _base_scenario(exp: Experiment, path: Path, file: str, s: _Settings, cli: _Cli) -> _Base:
    """Read the base scenario as TOML, with the experiment's flows and fixed settings.

    Fixed settings, later ones winning: the experiment's ``[set]``, the
    ``--params`` file's costs, ``--set``, the run length.
    """
    base_dir = path.resolve().parent
    if isinstance(exp.scenario, str):
        scn_path = (base_dir / exp.scenario).resolve()
        try:
            scn_raw = read_toml(scn_path, ExperimentError)
        except ExperimentError as err:
            raise ExperimentError(
                f"base scenario {exp.scenario!r}: {err.problem}",
                file=file,
                field="scenario",
                fix="give a scenario path relative to the experiment file",
            ) from None
        scn_file, scn_dir = str(scn_path), scn_path.parent
    else:
        scn_raw, scn_file, scn_dir = dict(exp.scenario), file, base_dir
    scn_raw = json.loads(json.dumps(scn_raw))
    warnings = merge_flows(exp, scn_raw, base_dir, file)
    fixed = {**exp.set, **cli.params, **cli.sets}
    fixed["simulation.duration_s"] = s.duration_s
    fixed["simulation.warmup_s"] = s.warmup_s
    placements = _values(s, "placement")
    if placements:
        # endpoints for validating the base: the first placement's
        try:
            pods_only = scenario_from_dict({**scn_raw, "flows": []}, scn_file, fixed, scn_dir)
        except ScenarioError as err:  # the cluster or a fixed setting: report that
            raise _base_error(exp, err, file, cli) from None
        try:
            src, dst = placement_endpoints(pods_only, placements[0], exp.placements)
        except ValueError:
            src = dst = None
        if src is not None:
            for f in scn_raw.get("flows", []):
                if isinstance(f, dict) and f.get("kind") != "trace":
                    f.setdefault("src", src)
                    f.setdefault("dst", dst)
    return _Base(scn_raw, scn_file, scn_dir, fixed, cli=cli, warnings=warnings)


def _param_of(bad: str, params: Any) -> str | None:
    """Return the parameter (dotted path) a scenario error's field ``bad`` points into."""
    names = list(params)
    for test in (
        lambda k: bad == k or bad.startswith(k + "."),
        lambda k: k.startswith(bad + "."),
        lambda k: k.split(".")[-1] == bad.split(".")[-1],
    ):
        found = next((k for k in names if bad and test(k)), None)
        if found is not None:
            return found
    return None


def _validate_base(exp: Experiment, base: _Base, file: str) -> Scenario:
    """Validate the base scenario with the fixed ``[set]`` overrides.

    Also builds its cluster and resolves its flows' endpoints and the explicit
    ``[placements]``, and stores the base with the overrides applied in ``base``.
    """
    try:
        scn = scenario_from_dict(base.raw, base.file, base.fixed, base.dir)
        cluster = build_cluster(scn, base.file)
    except ScenarioError as err:
        raise _base_error(exp, err, file, base.cli) from None
    for name, p in exp.placements.items():
        for end in ("src", "dst"):
            try:
                endpoint(cluster, getattr(p, end))
            except UserError as err:
                raise ExperimentError(
                    err.problem, file=file, field=f"placements.{name}.{end}", fix=err.fix
                ) from None
    try:
        _check_endpoints(cluster, scn)
    except UserError as err:
        raise _base_error(exp, err, file, base.cli) from None
    base.applied = json.loads(json.dumps(base.raw))
    for k, v in base.fixed.items():
        set_dotted(base.applied, k, v, file, ExperimentError)
    return scn


def _base_error(exp: Experiment, err: UserError, file: str, cli: _Cli | None) -> UserError:
    """Blame an error of the base scenario on its cause.

    The cause is ``--set``, ``--params``, ``[set]``, the flows or the scenario.
    """
    if cli is not None:
        key = _param_of(err.field or "", cli.sets)
        if key is not None:
            return UserError(
                f"{key} = {cli.sets[key]!r}: {err.problem}", field="--set", fix=err.fix
            )
        key = _param_of(err.field or "", cli.params)
        if key is not None and cli.params_file is not None:
            return UserError(
                err.problem, file=cli.params_file["file"], field=key, fix=err.fix
            )
    key = _param_of(err.field or "", exp.set)
    if key is not None:
        return ExperimentError(
            f"set {key!r} = {exp.set[key]!r}: {err.field}: {err.problem}",
            file=file,
            field=f"set.{key}",
            fix=err.fix or "use a scenario field path like flows.NAME.load",
        )
    if exp.flows is not None and (err.field or "").startswith("flows"):
        return ExperimentError(err.problem, file=file, field=err.field, fix=err.fix)
    return ExperimentError(
        f"base scenario: {err}", file=file, field="scenario", fix="correct the scenario"
    )


def _configs(s: _Settings) -> list[dict[str, Any]]:
    """Every configuration: the sweep's grid, each row of the zipped lists."""
    grid = list(itertools.product(*s.sweep.values())) if s.sweep else [()]
    zrows = list(zip(*s.zipped.values(), strict=True)) if s.zipped else [()]
    return [dict(zip(s.names, (*g, *z), strict=True)) for g in grid for z in zrows]


def _prepare_config(
    exp: Experiment,
    scn: Scenario,
    base: _Base,
    params: dict[str, Any],
    chosen: tuple[tuple[str, ...], tuple[str, ...]],
    s: _Settings,
    file: str,
) -> tuple[dict, dict, dict[str, Any], tuple[str, ...]]:
    """One configuration's raw scenario, overrides and measured flows, validated whole.

    The scenario is validated and its cluster built (addresses, routes); every
    flow's endpoints are resolved, and the per-run work check runs, so that a
    mistake stops the batch before its first run.
    """
    try:
        raw_c, overrides, flows = _apply_config(exp, scn, base.applied, params, chosen)
    except ValueError as err:
        key = "placement" if "placement" in params else "pod_pairs"
        raise ExperimentError(
            str(err), file=file, field=f"{s.table_of(key)}.{key}", fix="pick a valid value"
        ) from None
    try:
        scn_c = scenario_from_dict(raw_c, base.file, overrides, base.dir)
        cluster = build_cluster(scn_c, base.file)
        _check_endpoints(cluster, scn_c)
        check_run_work(scn_c, cluster, base.file)
    except UserError as err:
        raise _config_error(err, params, s, file) from None
    return params, raw_c, overrides, flows


def _check_endpoints(cluster: Cluster, scn: Scenario) -> None:
    """Every non-trace flow's source and destination name something in the cluster."""
    for i, f in enumerate(scn.flows):
        if f.kind == "trace":
            continue
        for end in ("src", "dst"):
            try:
                endpoint(cluster, getattr(f, end))
            except UserError as err:
                err.field = f"flows.{i}.{end}"
                raise


def check_run_work(scn: Scenario, cluster: Cluster, file: str) -> None:
    """Check one configuration's per-run work, before any run.

    Every replication of a configuration does the same work, so the estimate of
    :func:`sim.engine.budget.estimate_work` (packets = rate x duration per flow,
    hop records) is checked once per configuration against the default ceilings
    that :func:`sim.engine.simulate` applies to each run: a batch that would fail
    run by run stops before the first one instead.

    Raises
    ------
    UserError
        The run's estimated work is past its ceiling.
    """
    work = estimate_work(scn, cluster, file=file)
    try:
        check_work(work, file=file, packets_flag=None, hops_flag=None)
    except UserError as err:
        # name the flow as experiments do (flows.NAME), so the error is blamed
        # on the swept parameter of that flow
        head, _, rest = (err.field or "").partition(".")
        index = rest.split(".", 1)[0]
        if head == "flows" and index.isdigit() and int(index) < len(scn.flows):
            err.field = f"flows.{scn.flows[int(index)].name}"
            err.args = (str(err),)
        raise


def _config_error(
    err: UserError, params: dict[str, Any], s: _Settings, file: str
) -> ExperimentError:
    """Blame a configuration's scenario error on the parameter that made it."""
    bad = err.field or ""
    param = _param_of(bad, params)
    if param is None:
        special = [k for k in SPECIAL_PARAMS if k in params]
        param = special[-1] if special else next(iter(params), None)
    problem = err.problem
    if err.field and err.field not in problem:
        problem = f"{err.field}: {problem}"
    if param is None:
        return ExperimentError(
            f"base scenario: {problem}", file=file, field="scenario", fix=err.fix
        )
    return ExperimentError(
        f"parameter {param!r} = {params[param]!r}: {problem}",
        file=file,
        field=f"{s.table_of(param)}.{param}",
        fix=err.fix or "use a scenario field path like flows.NAME.load",
    )


def _make_runs(
    exp: Experiment, prepared: list, s: _Settings, crn: bool | None, base: _Base
) -> list[RunSpec]:
    """One run spec per configuration and replication, with its seed and fingerprint."""
    root = np.random.SeedSequence(exp.seed)
    rep_seeds = [int(c.generate_state(1)[0]) for c in root.spawn(s.replications)]
    common = exp.common_random_numbers if crn is None else crn
    runs = []
    for ci, (params, raw_c, overrides, flows) in enumerate(prepared):
        if common:
            seeds = rep_seeds
        else:
            ss = np.random.SeedSequence(exp.seed, spawn_key=(ci + 1,))
            seeds = [int(c.generate_state(1)[0]) for c in ss.spawn(s.replications)]
        for rep in range(s.replications):
            spec = RunSpec(
                run_id=f"c{ci:03d}-r{rep:02d}",
                config_index=ci,
                replication=rep,
                params=params,
                seed=seeds[rep],
                scenario_raw=raw_c,
                overrides=overrides,
                base_dir=str(base.dir),
                file=base.file,
                duration_s=s.duration_s,
                warmup_s=s.warmup_s,
                measured_flows=flows,
            )
            fp = _fingerprint(
                [params, spec.seed, raw_c, overrides, s.duration_s, s.warmup_s, flows, rep, ci]
            )
            runs.append(_with_fp(spec, fp))
    return runs


def _with_fp(spec: RunSpec, fp: str) -> RunSpec:
    return replace(spec, fingerprint=fp)
