"""Load and validate scenario files (TOML) into frozen :class:`Scenario` objects.

Every problem becomes one :class:`~sim.errors.ScenarioError` that names the file,
the dotted field and the fix: malformed TOML, unknown fields, bad values, duplicate
names, pods on unknown nodes, two containers of a pod on one port.
Address-level problems (pods that do not fit a subnet, overlapping subnets) are
found by the control plane (:mod:`sim.control.addressing`) with the same format.
"""

from __future__ import annotations

import copy
import tomllib
import typing
from collections import Counter
from ipaddress import IPv4Network
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from sim.errors import ScenarioError
from sim.spec.scenario import Scenario

#: Deepest nesting of tables and arrays accepted in an input file. Scenario and
#: experiment files nest 3-4 levels; the bound keeps recursive code (the TOML parser,
#: validation, copies) far from Python's recursion limit.
MAX_NESTING = 32

#: Largest input file read, bytes: scenario and experiment files are a few kB.
MAX_INPUT_BYTES = 16 * 1024 * 1024


def nesting_problem(value: Any, path: str = "", depth: int = 0) -> str | None:
    """Dotted path of the first value nested deeper than :data:`MAX_NESTING`, if any."""
    if depth > MAX_NESTING:
        return path or "(top level)"
    items = (
        value.items()
        if isinstance(value, dict)
        else enumerate(value)
        if isinstance(value, list)
        else ()
    )
    for key, sub in items:
        if isinstance(sub, dict | list):
            found = nesting_problem(sub, f"{path}.{key}" if path else str(key), depth + 1)
            if found:
                return found
    return None


def parse_toml(text: str, file: str, error_cls: type[ScenarioError] = ScenarioError) -> dict:
    """Parse TOML text, turning syntax errors and runaway nesting into ``error_cls``."""
    too_deep = error_cls(
        f"tables or arrays nested more than {MAX_NESTING} deep",
        file=file,
        fix="flatten the file (scenario and experiment files nest a few levels)",
    )
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise error_cls(
            f"malformed TOML: {exc}", file=file, fix="correct the TOML syntax"
        ) from None
    except RecursionError:
        raise too_deep from None
    where = nesting_problem(raw)
    if where:
        too_deep.field = where
        too_deep.args = (str(too_deep),)
        raise too_deep
    return raw


def read_toml(path: str | Path, error_cls: type[ScenarioError] = ScenarioError) -> dict:
    """Read a TOML file into a dict, turning I/O and syntax errors into ``error_cls``."""
    p = Path(path)
    if not str(path):
        raise error_cls("no file name given", file="''", fix="give the path of a TOML file")
    try:
        if p.is_dir():
            raise error_cls("is a directory, not a file", file=str(path), fix="give a TOML file")
        if p.stat().st_size > MAX_INPUT_BYTES:
            raise error_cls(
                f"file is larger than {MAX_INPUT_BYTES // 2**20} MiB",
                file=str(path),
                fix="give a scenario or experiment file (a few kB)",
            )
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise error_cls("file not found", file=str(path), fix="check the path") from None
    except UnicodeDecodeError as exc:
        raise error_cls(
            f"not UTF-8 text (byte {exc.start})", file=str(path), fix="save the file as UTF-8"
        ) from None
    except OSError as exc:
        raise error_cls(
            f"cannot read file ({exc.strerror or exc})", file=str(path), fix="check the path"
        ) from None
    return parse_toml(text.removeprefix("\ufeff"), str(path), error_cls)


def _loc_to_field(loc: tuple) -> str:
    return ".".join(str(x) for x in loc if not str(x).startswith("function-"))


def _allowed_fields(model: type[BaseModel], loc: tuple) -> list[str] | None:
    """Field names allowed at ``loc`` (the parent of an unknown field)."""
    cur: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(cur, type) and issubclass(cur, BaseModel)):
            return None
        info = cur.model_fields.get(part)
        if info is None:
            return None
        cur = _inner_model(info.annotation)
    if isinstance(cur, type) and issubclass(cur, BaseModel):
        return sorted(cur.model_fields)
    return None


def _inner_model(annotation: Any) -> Any:
    """Return the BaseModel class inside ``tuple[X, ...]``, ``X | None``, else the annotation."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        inner = _inner_model(arg)
        if isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def validation_error_to_user(
    exc: ValidationError, file: str, model: type[BaseModel], error_cls: type[ScenarioError]
) -> ScenarioError:
    """Turn pydantic's first error into one clear line."""
    err = exc.errors()[0]
    loc = tuple(err.get("loc", ()))
    field = _loc_to_field(loc) or None
    kind = err.get("type", "")
    if kind == "extra_forbidden":
        allowed = _allowed_fields(model, loc[:-1])
        fix = "remove it or correct the spelling"
        if allowed:
            fix += f" (allowed here: {', '.join(allowed)})"
        return error_cls("unknown field", file=file, field=field, fix=fix)
    if kind == "missing":
        return error_cls("required field is missing", file=file, field=field, fix="add it")
    msg = err.get("msg", "invalid value")
    msg = msg.removeprefix("Value error, ")
    got = err.get("input")
    fix = "correct the value"
    if "IPv4 network" in msg and isinstance(got, str):
        try:
            net = IPv4Network(got, strict=False)
        except ValueError:
            fix = "write a CIDR such as 10.0.0.0/14"
        else:
            if str(net) != got:
                msg = "host bits are set in this network address"
                fix = f"write the network address, {net}"
    if kind != "model_type" and not isinstance(got, dict | list) and got is not None:
        msg += f" (got {got!r})"
    return error_cls(msg, file=file, field=field, fix=fix)


def _check_names(scn: Scenario, file: str) -> None:
    """Check names, pods, pod subnets and times across fields (one error per problem).

    Duplicate names, unknown nodes, port conflicts inside a pod, pod subnets
    against the pod network mode, warm-up against duration.
    """
    _check_unique_names(scn, file)
    _check_pods(scn, file)
    _check_pod_subnets(scn, file)
    sim = scn.simulation
    if sim.warmup_s >= sim.duration_s:
        raise ScenarioError(
            f"warm-up ({sim.warmup_s} s) is not shorter than the duration ({sim.duration_s} s)",
            file=file,
            field="simulation.warmup_s",
            fix="make warmup_s smaller than duration_s",
        )


def _check_unique_names(scn: Scenario, file: str) -> None:
    """Refuse duplicate names in a group, or across the endpoints, and 'gateway'."""
    groups = {
        "nodes": [n.name for n in scn.nodes],
        "pods": [p.name for p in scn.pods],
        "external_hosts": [h.name for h in scn.external_hosts],
        "flows": [f.name for f in scn.flows],
    }
    for group, names in groups.items():
        for name, count in Counter(names).items():
            if count > 1:
                idx = [i for i, n in enumerate(names) if n == name][1]
                raise ScenarioError(
                    f"duplicate name {name!r}",
                    file=file,
                    field=f"{group}.{idx}.name",
                    fix="give every entry a unique name",
                )
    endpoint_names = groups["nodes"] + groups["pods"] + groups["external_hosts"]
    for name, count in Counter(endpoint_names).items():
        if count > 1:
            raise ScenarioError(
                f"name {name!r} is used by more than one node, pod or external host",
                file=file,
                field="name",
                fix="endpoint names must be unique across nodes, pods and external hosts",
            )
    if "gateway" in endpoint_names:
        raise ScenarioError(
            "the name 'gateway' is reserved for the gateway router",
            file=file,
            field="name",
            fix="rename that node, pod or host",
        )


def _check_pods(scn: Scenario, file: str) -> None:
    """Refuse a pod on an unknown node, and container names or ports used twice in a pod."""
    node_names = {n.name for n in scn.nodes}
    for i, pod in enumerate(scn.pods):
        if pod.node not in node_names:
            raise ScenarioError(
                f"pod {pod.name!r} is on unknown node {pod.node!r}",
                file=file,
                field=f"pods.{i}.node",
                fix=f"use one of: {', '.join(sorted(node_names))}",
            )
        cnames = [c.name for c in pod.containers]
        for name, count in Counter(cnames).items():
            if count > 1:
                raise ScenarioError(
                    f"pod {pod.name!r} has two containers named {name!r}",
                    file=file,
                    field=f"pods.{i}.containers",
                    fix="give each container of a pod a unique name",
                )
        seen: dict[int, str] = {}
        for j, c in enumerate(pod.containers):
            for port in c.ports:
                if port in seen:
                    raise ScenarioError(
                        f"containers {seen[port]!r} and {c.name!r} of pod {pod.name!r} both "
                        f"listen on port {port}, but a pod's containers share one network "
                        "namespace and one port space",
                        file=file,
                        field=f"pods.{i}.containers.{j}.ports",
                        fix="give each container of a pod distinct ports",
                    )
                seen[port] = c.name


def _check_pod_subnets(scn: Scenario, file: str) -> None:
    """Require a node's pod_subnet exactly in the 'explicit' pod network mode."""
    mode = scn.pod_network.mode
    for i, node in enumerate(scn.nodes):
        if mode == "explicit" and node.pod_subnet is None:
            raise ScenarioError(
                "pod_network.mode is 'explicit' but this node has no pod_subnet",
                file=file,
                field=f"nodes.{i}.pod_subnet",
                fix="give every node a pod_subnet, or use mode = 'cluster-cidr'",
            )
        if mode != "explicit" and node.pod_subnet is not None:
            raise ScenarioError(
                f"pod_subnet is only used with pod_network.mode = 'explicit' (mode is {mode!r})",
                file=file,
                field=f"nodes.{i}.pod_subnet",
                fix="remove it, or set pod_network.mode = 'explicit'",
            )


def _resolve_trace_paths(raw: dict, base: Path) -> None:
    flows = raw.get("flows")
    for flow in flows if isinstance(flows, list) else ():
        if isinstance(flow, dict) and isinstance(flow.get("trace_file"), str):
            tf = Path(flow["trace_file"])
            if not tf.is_absolute():
                flow["trace_file"] = str((base / tf).resolve())


def set_dotted(raw: dict, dotted: str, value: Any, file: str, error_cls=ScenarioError) -> None:
    """Set ``raw[a][b][c] = value`` for ``dotted = "a.b.c"``.

    List items are addressed by index (``flows.0.load``) or by their ``name``
    (``flows.probe.load``). Missing intermediate tables are created; whether the
    final field exists is checked when the result is validated.
    """
    parts = dotted.split(".")
    cur: Any = raw
    for k, part in enumerate(parts):
        last = k == len(parts) - 1
        if isinstance(cur, list):
            idx = None
            if part.isdigit() and len(part) < 10 and int(part) < len(cur):
                idx = int(part)
            else:
                for i, item in enumerate(cur):
                    if isinstance(item, dict) and item.get("name") == part:
                        idx = i
                        break
            if idx is None:
                raise error_cls(
                    f"parameter {dotted!r}: no list item {part!r}",
                    file=file,
                    field=dotted,
                    fix="address list items by index or by name",
                )
            if last:
                cur[idx] = value
            else:
                cur = cur[idx]
        elif isinstance(cur, dict):
            if last:
                cur[part] = value
            else:
                cur = cur.setdefault(part, {})
        else:
            raise error_cls(
                f"parameter {dotted!r}: {'.'.join(parts[:k])!r} is a value, not a table",
                file=file,
                field=dotted,
                fix="check the parameter path",
            )


def scenario_from_dict(
    raw: dict,
    file: str = "<scenario>",
    overrides: dict[str, Any] | None = None,
    base_dir: Path | None = None,
) -> Scenario:
    """Validate a raw scenario dict (with optional dotted overrides) into a Scenario.

    Parameters
    ----------
    raw : dict
        Parsed TOML.
    file : str
        Name used in error messages.
    overrides : dict, optional
        ``{"flows.probe.load": 0.5, ...}`` applied before validation.
    base_dir : Path, optional
        Directory that relative ``trace_file`` paths are relative to.
    """
    raw = copy.deepcopy(raw)
    for dotted, value in (overrides or {}).items():
        set_dotted(raw, dotted, value, file)
    if base_dir is not None:
        _resolve_trace_paths(raw, base_dir)
    try:
        scn = Scenario.model_validate(raw)
    except ValidationError as exc:
        raise validation_error_to_user(exc, file, Scenario, ScenarioError) from None
    _check_names(scn, file)
    return scn


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Load, validate and return the scenario in ``path``.

    Raises
    ------
    ScenarioError
        One line naming the file, the field and the fix.
    """
    raw = read_toml(path)
    return scenario_from_dict(raw, str(path), overrides, Path(path).resolve().parent)
