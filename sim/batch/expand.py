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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ValidationError

from sim.errors import ExperimentError, ScenarioError
from sim.spec.load import read_toml, scenario_from_dict, set_dotted, validation_error_to_user
from sim.spec.scenario import Scenario

from .spec import Experiment

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


@dataclass(frozen=True)
class Batch:
    """An expanded experiment."""

    experiment: Experiment
    file: str
    file_sha256: str
    param_names: tuple[str, ...]
    configs: tuple[dict[str, Any], ...]
    runs: tuple[RunSpec, ...]
    quick: bool


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
    measured: tuple[str, ...],
) -> tuple[dict, dict[str, Any], tuple[str, ...]]:
    """Raw scenario and overrides of one configuration; returns the measured flows."""
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
        templates = [f for f in raw.get("flows", []) if f.get("name") in measured]
        kept = [f for f in raw.get("flows", []) if f.get("name") not in measured]
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
        flows = [f["name"] for f in new_flows]
    elif placement is not None:
        src, dst = placement_endpoints(scn, placement, exp.placements)
        for name in measured:
            overrides[f"flows.{name}.src"] = src
            overrides[f"flows.{name}.dst"] = dst
    return raw, overrides, tuple(flows)


def load_experiment(path: str | Path, quick: bool = False, crn: bool | None = None) -> Batch:
    """Read, validate and expand an experiment file.

    Parameters
    ----------
    path : str or Path
        Experiment file.
    quick : bool
        Apply the file's ``[quick]`` settings.
    crn : bool, optional
        Override ``common_random_numbers``.

    Raises
    ------
    ExperimentError
        One line naming the file, the field and the fix.
    """
    file = str(path)
    raw = read_toml(path, ExperimentError)
    try:
        exp = Experiment.model_validate(raw)
    except ValidationError as exc:
        raise validation_error_to_user(exc, file, Experiment, ExperimentError) from None
    base_dir = Path(path).resolve().parent
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
    if exp.flows is not None:
        scn_raw["flows"] = [dict(f) for f in exp.flows]
        for f in scn_raw["flows"]:  # the experiment's own trace files: relative to it
            tf = f.get("trace_file")
            if isinstance(tf, str) and not Path(tf).is_absolute():
                f["trace_file"] = str((base_dir / tf).resolve())
    replications, duration, warmup = exp.replications, exp.duration_s, exp.warmup_s
    sweep, zipped = dict(exp.sweep), dict(exp.zip)
    if quick:
        q = exp.quick
        replications = q.replications
        duration = q.duration_s if q.duration_s is not None else duration / 5
        warmup = q.warmup_s if q.warmup_s is not None else warmup / 5
        for table, base, changes in (("sweep", sweep, q.sweep), ("zip", zipped, q.zip)):
            for k, v in changes.items():
                if k not in base:
                    raise ExperimentError(
                        f"quick.{table} changes {k!r}, which {table} does not have",
                        file=file,
                        field=f"quick.{table}.{k}",
                        fix=f"only override parameters of [{table}]",
                    )
                base[k] = v
    if warmup >= duration:
        raise ExperimentError(
            f"warm-up {warmup} s is not shorter than the duration {duration} s",
            file=file,
            field="warmup_s",
            fix="make warmup_s smaller than duration_s",
        )
    for table, params in (("sweep", sweep), ("zip", zipped)):
        for k, v in params.items():
            if not v:
                from_quick = quick and k in getattr(exp.quick, table)
                raise ExperimentError(
                    "empty list of values",
                    file=file,
                    field=f"quick.{table}.{k}" if from_quick else f"{table}.{k}",
                    fix="give at least one value, or remove the parameter",
                )
    if zipped and len({len(v) for v in zipped.values()}) > 1:
        lens = ", ".join(f"{k}: {len(v)}" for k, v in zipped.items())
        raise ExperimentError(
            f"zipped lists differ in length ({lens})",
            file=file,
            field="zip",
            fix="give every zipped parameter the same number of values",
        )
    dup = set(sweep) & set(zipped)
    if dup:
        raise ExperimentError(
            f"{sorted(dup)[0]!r} is both swept and zipped",
            file=file,
            field=f"zip.{sorted(dup)[0]}",
            fix="put it in one of the two tables",
        )
    fixed = dict(exp.set)
    fixed["simulation.duration_s"] = duration
    fixed["simulation.warmup_s"] = warmup
    placements = sweep.get("placement") or zipped.get("placement")
    if placements:
        # endpoints for validating the base: the first placement's
        try:
            pods_only = scenario_from_dict({**scn_raw, "flows": []}, scn_file, fixed, scn_dir)
            src, dst = placement_endpoints(pods_only, placements[0], exp.placements)
        except (ScenarioError, ValueError):
            src = dst = None
        if src is not None:
            for f in scn_raw.get("flows", []):
                if isinstance(f, dict) and f.get("kind") != "trace":
                    f.setdefault("src", src)
                    f.setdefault("dst", dst)
    try:
        base = scenario_from_dict(scn_raw, scn_file, fixed, scn_dir)
    except ScenarioError as err:
        bad = err.field or ""
        key = next(
            (
                k
                for k in exp.set
                if bad and (bad == k or bad.startswith(k + ".") or k.startswith(bad + "."))
            ),
            None,
        )
        if key is not None:
            raise ExperimentError(
                f"set {key!r} = {exp.set[key]!r}: {bad}: {err.problem}",
                file=file,
                field=f"set.{key}",
                fix=err.fix or "use a scenario field path like flows.NAME.load",
            ) from None
        if exp.flows is not None and (err.field or "").startswith("flows"):
            raise ExperimentError(err.problem, file=file, field=err.field, fix=err.fix) from None
        raise ExperimentError(
            f"base scenario: {err}", file=file, field="scenario", fix="correct the scenario"
        ) from None
    flow_names = tuple(f.name for f in base.flows)
    measured = exp.placement_flows or flow_names
    for name in measured:
        if name not in flow_names:
            raise ExperimentError(
                f"placement_flows names {name!r}, which is not a flow",
                file=file,
                field="placement_flows",
                fix=f"use one of: {', '.join(flow_names) or '(no flows)'}",
            )
    if not measured:
        raise ExperimentError(
            "nothing to measure: the scenario and the experiment declare no flows",
            file=file,
            field="flows",
            fix="add [[flows]] to the experiment",
        )
    names = tuple(sweep) + tuple(zipped)
    grid = list(itertools.product(*sweep.values())) if sweep else [()]
    zrows = list(zip(*zipped.values(), strict=True)) if zipped else [()]
    configs = []
    for g in grid:
        for z in zrows:
            configs.append(dict(zip(names, (*g, *z), strict=True)))
    base_raw = json.loads(json.dumps(scn_raw))
    for k, v in fixed.items():
        set_dotted(base_raw, k, v, file, ExperimentError)
    prepared = []
    for params in configs:
        field_of = next(iter(params), "sweep")
        try:
            raw_c, overrides, flows = _apply_config(exp, base, base_raw, params, measured)
        except ValueError as err:
            key = "placement" if "placement" in params else "pod_pairs"
            table = "sweep" if key in sweep else "zip"
            raise ExperimentError(
                str(err), file=file, field=f"{table}.{key}", fix="pick a valid value"
            ) from None
        try:
            scenario_from_dict(raw_c, scn_file, overrides, scn_dir)
        except ScenarioError as err:
            bad = err.field or field_of
            param = next((k for k in params if bad == k or bad.startswith(k + ".")), None)
            if param is None:
                param = next((k for k in params if k.startswith(bad + ".")), None)
            if param is None:
                param = next((k for k in params if k.split(".")[-1] == bad.split(".")[-1]), None)
            table = "sweep" if (param or field_of) in sweep else "zip"
            problem = err.problem
            if err.field and err.field not in problem:
                problem = f"{err.field}: {problem}"
            raise ExperimentError(
                f"parameter {param or field_of!r} = {params.get(param or field_of)!r}: {problem}",
                file=file,
                field=f"{table}.{param or field_of}",
                fix=err.fix or "use a scenario field path like flows.NAME.load",
            ) from None
        prepared.append((params, raw_c, overrides, flows))
    root = np.random.SeedSequence(exp.seed)
    rep_seeds = [int(c.generate_state(1)[0]) for c in root.spawn(replications)]
    runs = []
    for ci, (params, raw_c, overrides, flows) in enumerate(prepared):
        if exp.common_random_numbers if crn is None else crn:
            seeds = rep_seeds
        else:
            ss = np.random.SeedSequence(exp.seed, spawn_key=(ci + 1,))
            seeds = [int(c.generate_state(1)[0]) for c in ss.spawn(replications)]
        for rep in range(replications):
            spec = RunSpec(
                run_id=f"c{ci:03d}-r{rep:02d}",
                config_index=ci,
                replication=rep,
                params=params,
                seed=seeds[rep],
                scenario_raw=raw_c,
                overrides=overrides,
                base_dir=str(scn_dir),
                file=scn_file,
                duration_s=duration,
                warmup_s=warmup,
                measured_flows=flows,
            )
            fp = _fingerprint(
                [params, spec.seed, raw_c, overrides, duration, warmup, flows, rep, ci]
            )
            runs.append(_with_fp(spec, fp))
    text = Path(path).read_bytes()
    return Batch(
        experiment=exp,
        file=file,
        file_sha256=hashlib.sha256(text).hexdigest(),
        param_names=names,
        configs=tuple(configs),
        runs=tuple(runs),
        quick=quick,
    )


def _with_fp(spec: RunSpec, fp: str) -> RunSpec:
    return replace(spec, fingerprint=fp)
