"""Fit the model's per-hop costs to round trips measured on the replica.

The model's round trip at one outstanding request (no queueing) is exact
arithmetic on the resolved paths: the sum, over the request's and the reply's
hops, of each station's service time (per-packet cost, per-byte cost,
serialization on links, the NAT extra where a hop rewrites an address) and
propagation. The probe adds its own software cost on both ends (Python, the
socket calls): the **endpoint term** ``endpoint_us``, one per round trip.

Elementary costs
----------------
The replica is made of a few kinds of kernel work, each fitted as one
non-negative cost per packet, in microseconds (:data:`ELEMENTS`):

``veth``        one veth crossing into another namespace
``bridge``      a node bridge (``cbr0``; bridged frames also pass the node's
                netfilter hooks, ``br_netfilter``)
``lan_bridge``  the LAN bridge namespace that stands for the node network
``forward``     a node's IP forwarding + netfilter/conntrack
``gateway``     the gateway's IP forwarding
``nat``         extra for a packet that is SNAT'd or de-NAT'd

Each model station kind is a fixed sum of them (:data:`KIND_COMPOSITION`),
from how the replica is built: the node LAN is a bridge namespace, so a
node's ``eth0:tx`` (node -> gateway) is two veth crossings and the LAN bridge,
and the gateway's link back plus the node's ``eth0:rx`` are one crossing each
with the LAN bridge counted in ``eth0:rx``; a gateway link to an external host
and the host's link back are one crossing each.

The fit
-------
1. The endpoint term is the intra-pod localhost RTT minus the model's own
   loopback cost (the kernel's loopback work cannot be told apart from the
   probe's; the loopback cost keeps the scenario's value). Without a
   localhost case in the fit it is one more unknown (pulled towards 0 like
   the others, so it is only as good as the fitted paths make it: they
   rarely determine it, and the result then lists it as undetermined).
2. The remaining cost of every other fitted path (measured p50 minus the
   endpoint term minus the known serialization on links) is a linear
   function of the elementary costs: non-negative least squares
   (:func:`scipy.optimize.lsq_linear`).
3. Costs or combinations of costs the fitted paths do not determine stay as
   close as possible to the scenario's current values (a ridge term of weight
   :data:`PRIOR_WEIGHT`, negligible next to the data): e.g. ``nat`` keeps
   ``nat_extra_us`` unless a masqueraded path is fitted. They are listed in the
   result.

Per-byte costs are set to 0 and propagation delays to 0: one packet size
cannot tell per-byte from per-packet cost, and the replica's links have no
length. Link rates are kept (their serialization is counted as known).

The parameter file is TOML with a ``[costs]`` table (a partial scenario) and a
``[calibration]`` table (endpoint term, fit report); :func:`params_overrides`
turns its ``[costs]`` into the dotted overrides ``load_scenario`` takes.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear

from sim.control.cluster import Cluster
from sim.control.resolve import Path as ResolvedPath
from sim.control.resolve import resolve, resolve_reply
from sim.errors import UserError
from sim.spec.costs import Costs

__all__ = [
    "DEFAULT_FIT_ON",
    "ELEMENTS",
    "KIND_COMPOSITION",
    "calibrate",
    "model_rtt_us",
    "params_overrides",
    "read_params",
    "write_params",
]

ELEMENTS = ("veth", "bridge", "lan_bridge", "forward", "gateway", "nat")
"""Elementary costs fitted, microseconds per packet."""

KIND_COMPOSITION: dict[str, dict[str, int]] = {
    "veth": {"veth": 1},
    "bridge": {"bridge": 1},
    "forward": {"forward": 1},
    "gateway": {"gateway": 1},
    "eth0_tx": {"veth": 2, "lan_bridge": 1},
    "eth0_rx": {"veth": 1, "lan_bridge": 1},
    "gateway_link": {"veth": 1},
    "external_link": {"veth": 1},
}
"""Each fitted station kind as a sum of elementary costs (``loopback`` is not fitted)."""

DEFAULT_FIT_ON = ("localhost", "same_node", "ext_nomasq")
"""Cases fitted by default; the others are held out to test the prediction."""

PRIOR_WEIGHT = 1e-3
"""Weight of the pull towards the scenario's costs for undetermined directions."""

PARAMS_SCHEMA_VERSION = 1


# ------------------------------------------------------------------ the model
def _prior(costs: Costs) -> dict[str, float]:
    return {
        "veth": costs.veth.per_packet_us,
        "bridge": costs.bridge.per_packet_us,
        "lan_bridge": costs.bridge.per_packet_us,
        "forward": costs.forward.per_packet_us,
        "gateway": costs.gateway.per_packet_us,
        "nat": costs.nat_extra_us,
    }


def _paths(cl: Cluster, src: str, dst: str) -> tuple[ResolvedPath, ResolvedPath]:
    fwd = resolve(cl, src, dst)
    rep = resolve_reply(cl, fwd)
    if fwd.verdict != "delivered" or rep.verdict != "delivered":
        raise UserError(
            f"the model has no round trip {src} -> {dst}: "
            f"{fwd.reason or rep.reason or 'not delivered'}",
            file=cl.file,
            fix="fit only pairs whose request and reply are both delivered",
        )
    return fwd, rep


def _fixed_us(costs: Costs, kind: str, size_bytes: float) -> float:
    """Service + propagation of a station under ``costs`` that the fit does not change."""
    c = getattr(costs, kind)
    t = c.per_byte_ns * size_bytes / 1000.0 + c.propagation_us
    if c.rate_gbps is not None:
        t += (size_bytes + c.framing_bytes) * 8.0 / (c.rate_gbps * 1000.0)
    if kind not in KIND_COMPOSITION:  # loopback: nothing of it is fitted
        t += c.per_packet_us
    return t


def design_row(
    cl: Cluster, src: str, dst: str, costs: Costs, size_bytes: float, reply_bytes: float
) -> tuple[np.ndarray, float]:
    """Coefficients of the elementary costs in a pair's model RTT, and the fixed rest.

    Parameters
    ----------
    cl : Cluster
        The model cluster.
    src, dst : str
        Endpoints of the request.
    costs : Costs
        Costs giving the fixed (unfitted) parts: serialization, per-byte,
        propagation and loopback.
    size_bytes, reply_bytes : float
        IP sizes of request and reply, bytes.

    Returns
    -------
    ndarray
        How many times each of :data:`ELEMENTS` is paid in one round trip.
    float
        The round trip's fixed part, microseconds.
    """
    fwd, rep = _paths(cl, src, dst)
    row = np.zeros(len(ELEMENTS))
    fixed = 0.0
    for path, size in ((fwd, size_bytes), (rep, reply_bytes)):
        for hop in path.hops:
            for elem, k in KIND_COMPOSITION.get(hop.kind, {}).items():
                row[ELEMENTS.index(elem)] += k
            if hop.nat:
                row[ELEMENTS.index("nat")] += 1
            fixed += _fixed_us(costs, hop.kind, size)
    return row, fixed


def fitted_costs(base: Costs, elements: dict[str, float]) -> Costs:
    """``base`` with fitted per-packet costs, per-byte and propagation set to 0.

    Parameters
    ----------
    base : Costs
        The scenario's costs (rates, buffers, servers and loopback are kept).
    elements : dict of str to float
        Elementary costs, microseconds per packet.

    Returns
    -------
    Costs
        The calibrated costs.
    """
    update: dict[str, Any] = {"nat_extra_us": elements["nat"]}
    for kind, comp in KIND_COMPOSITION.items():
        per_packet = sum(k * elements[e] for e, k in comp.items())
        update[kind] = getattr(base, kind).model_copy(
            update={"per_packet_us": per_packet, "per_byte_ns": 0.0, "propagation_us": 0.0}
        )
    return base.model_copy(update=update)


def model_rtt_us(
    cl: Cluster, src: str, dst: str, costs: Costs, size_bytes: float, reply_bytes: float
) -> float:
    """The model's round trip at zero load (no queueing), microseconds.

    Parameters
    ----------
    cl : Cluster
        The model cluster.
    src, dst : str
        Endpoints.
    costs : Costs
        Station costs.
    size_bytes, reply_bytes : float
        IP sizes of request and reply, bytes.

    Returns
    -------
    float
        Sum of service times (with the NAT extra) and propagation over the
        request's and the reply's hops, without any endpoint term.
    """
    fwd, rep = _paths(cl, src, dst)
    total = 0.0
    for path, size in ((fwd, size_bytes), (rep, reply_bytes)):
        for hop in path.hops:
            c = getattr(costs, hop.kind)
            total += c.mean_service_us(size) + c.propagation_us
            if hop.nat:
                total += costs.nat_extra_us
    return total


# -------------------------------------------------------------------- the fit
def calibrate(cl: Cluster, doc: dict, fit_on: tuple[str, ...] | None = None) -> dict:
    """Fit the elementary costs to the measured RTT cases.

    Parameters
    ----------
    cl : Cluster
        The model cluster of the measured scenario.
    doc : dict
        Measurements, from :func:`sim.testbed.measure.read_measurements`.
    fit_on : tuple of str or None, default None
        Cases to fit (default :data:`DEFAULT_FIT_ON`); ``("all",)`` fits every
        measured case.

    Returns
    -------
    dict
        ``endpoint_us``; ``elements_us`` (fitted elementary costs);
        ``costs`` (the calibrated :class:`Costs`); ``fit_on``; ``held_out``;
        ``cases`` (per case: measured and fitted p50, residual, all in
        microseconds); ``undetermined`` (elementary costs or combinations the
        fitted cases do not determine, which stayed near the scenario's
        values).

    Raises
    ------
    UserError
        If a requested case was not measured or failed, or nothing is left to fit.
    """
    rtt = doc.get("rtt", {})
    good = [c for c, e in rtt.items() if e.get("ok") and e.get("p50_us") is not None]
    if fit_on is None:
        fit_on = tuple(c for c in DEFAULT_FIT_ON if c in good)
    elif tuple(fit_on) == ("all",):
        fit_on = tuple(good)
    for case in fit_on:
        if case not in good:
            why = "was not measured" if case not in rtt else "failed (no round trips)"
            raise UserError(
                f"RTT case {case!r} {why}",
                field="--fit-on",
                fix=f"fit on measured cases only: {', '.join(good) or '(none)'}",
            )
    if len(fit_on) < 2:
        raise UserError(
            f"too few measured cases to fit ({', '.join(fit_on) or 'none'})",
            field="--fit-on",
            fix="measure and fit at least localhost and one other case",
        )
    size = float(doc["probe"]["ip_bytes"])
    base = cl.scenario.costs
    zero = fitted_costs(base, dict.fromkeys(ELEMENTS, 0.0))
    rows, fixed, y = {}, {}, {}
    for case, entry in rtt.items():
        if case in good:
            rows[case], fixed[case] = design_row(cl, entry["src"], entry["dst"], zero, size, size)
            y[case] = float(entry["p50_us"])

    prior = _prior(base)
    theta0 = np.array([prior[e] for e in ELEMENTS])
    fit_rows = [c for c in fit_on if c != "localhost"]
    a = np.array([rows[c] for c in fit_rows]) if fit_rows else np.zeros((0, len(ELEMENTS)))
    if "localhost" in fit_on:
        endpoint = y["localhost"] - fixed["localhost"] - float(rows["localhost"] @ theta0)
        b = np.array([y[c] - endpoint - fixed[c] for c in fit_rows])
        a_fit, theta0_fit = a, theta0
    else:  # the endpoint term is one more unknown, with coefficient 1 in every row
        a_fit = np.hstack([np.ones((len(fit_rows), 1)), a])
        b = np.array([y[c] - fixed[c] for c in fit_rows])
        theta0_fit = np.concatenate([[0.0], theta0])
    n = a_fit.shape[1]
    aug_a = np.vstack([a_fit, PRIOR_WEIGHT * np.eye(n)])
    aug_b = np.concatenate([b, PRIOR_WEIGHT * theta0_fit])
    sol = lsq_linear(aug_a, aug_b, bounds=(0.0, np.inf), method="bvls").x
    if "localhost" not in fit_on:
        endpoint, sol = float(sol[0]), sol[1:]
    elements = {e: float(v) for e, v in zip(ELEMENTS, sol, strict=True)}
    costs = fitted_costs(base, elements)

    cases = {}
    for case in rtt:
        if case not in good:
            continue
        entry = rtt[case]
        pred = endpoint + model_rtt_us(cl, entry["src"], entry["dst"], costs, size, size)
        cases[case] = {
            "src": entry["src"],
            "dst": entry["dst"],
            "measured_p50_us": y[case],
            "model_p50_us": pred,
            "residual_us": pred - y[case],
            "fitted": case in fit_on,
        }
    return {
        "endpoint_us": float(endpoint),
        "elements_us": elements,
        "costs": costs,
        "fit_on": list(fit_on),
        "held_out": [c for c in good if c not in fit_on],
        "cases": cases,
        "undetermined": _undetermined(
            a_fit, ELEMENTS if "localhost" in fit_on else ("endpoint", *ELEMENTS)
        ),
        "ip_bytes": size,
    }


def _undetermined(a: np.ndarray, names: tuple[str, ...]) -> list[str]:
    """Directions of the unknowns (``names``) the fitted rows do not constrain."""
    if a.size == 0:
        return ["all elementary costs (no path besides localhost fitted)"]
    _, s, vt = np.linalg.svd(a)
    rank = int((s > 1e-9 * max(s.max(), 1.0)).sum())
    out = []
    for vec in vt[rank:]:
        vec = vec / np.abs(vec).max()
        terms = [
            f"{'+' if v > 0 else '-'}{abs(v):.2g}*{e}"
            for v, e in zip(vec, names, strict=True)
            if abs(v) > 1e-6
        ]
        if len(terms) == 1:
            out.append(terms[0].lstrip("+").replace("1*", ""))
        else:
            out.append(" ".join(terms).lstrip("+"))
    return out


# ------------------------------------------------------------------ the file
def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"cannot write {v} to TOML")
        return repr(round(v, 6))
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise ValueError(f"cannot write {type(v).__name__} to TOML")


def write_params(fit: dict, path: str | Path, *, source: dict | None = None) -> None:
    """Write the calibrated parameter file (TOML).

    Parameters
    ----------
    fit : dict
        From :func:`calibrate`.
    path : str or Path
        Output file.
    source : dict or None, default None
        ``{"measurements": file, "scenario": name, "scenario_sha256": digest}``
        recorded in ``[calibration]``.
    """
    costs: Costs = fit["costs"]
    src = source or {}
    lines = [
        "# podnetsim calibrate: per-hop costs fitted to real-kernel round trips.",
        "# [costs] is a partial scenario: apply it as dotted overrides, e.g.",
        "#   podnetsim simulate SCENARIO --set costs.veth.per_packet_us=...",
        "# or sim.testbed.calibrate.params_overrides(PATH) -> load_scenario(path, overrides).",
        "# Simulated round trips exclude the probe's own software cost:",
        "# add [calibration].endpoint_us to each (podnetsim compare does).",
        "",
        "[costs]",
        f"nat_extra_us = {_toml_value(costs.nat_extra_us)}",
    ]
    for kind in KIND_COMPOSITION:
        c = getattr(costs, kind)
        lines += [
            "",
            f"[costs.{kind}]",
            f"per_packet_us = {_toml_value(c.per_packet_us)}",
            f"per_byte_ns = {_toml_value(c.per_byte_ns)}",
            f"propagation_us = {_toml_value(c.propagation_us)}",
        ]
    lines += [
        "",
        "[calibration]",
        f"schema_version = {PARAMS_SCHEMA_VERSION}",
        f"created = {_toml_value(datetime.now(UTC).isoformat(timespec='seconds'))}",
        f"endpoint_us = {_toml_value(fit['endpoint_us'])}",
        f"ip_bytes = {_toml_value(int(fit['ip_bytes']))}",
        f"fit_on = {_toml_value(fit['fit_on'])}",
        f"held_out = {_toml_value(fit['held_out'])}",
        f"undetermined = {_toml_value(fit['undetermined'])}",
    ]
    for key in ("measurements", "scenario", "scenario_sha256"):
        if key in src:
            lines.append(f"{key} = {_toml_value(str(src[key]))}")
    lines += ["", "[calibration.elements_us]"]
    lines += [f"{e} = {_toml_value(v)}" for e, v in fit["elements_us"].items()]
    for case, c in fit["cases"].items():
        lines += [
            "",
            f"[calibration.cases.{case}]",
            f"src = {_toml_value(c['src'])}",
            f"dst = {_toml_value(c['dst'])}",
            f"measured_p50_us = {_toml_value(c['measured_p50_us'])}",
            f"model_p50_us = {_toml_value(c['model_p50_us'])}",
            f"fitted = {_toml_value(c['fitted'])}",
        ]
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


def read_params(path: str | Path) -> tuple[dict[str, Any], dict]:
    """Read a parameter file.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`write_params` (or any TOML with a
        ``[costs]`` table and ``[calibration].endpoint_us``).

    Returns
    -------
    dict
        Dotted overrides for :func:`sim.spec.load.load_scenario`
        (``{"costs.veth.per_packet_us": 1.2, ...}``).
    dict
        The ``[calibration]`` table.

    Raises
    ------
    UserError
        If the file is missing, malformed or lacks ``[costs]`` or
        ``[calibration].endpoint_us``.
    """
    from sim.spec.load import read_toml

    raw = read_toml(path, UserError)
    costs = raw.get("costs")
    cal = raw.get("calibration", {})
    if not isinstance(costs, dict):
        raise UserError(
            "no [costs] table",
            file=str(path),
            fix="give a parameter file written by `podnetsim calibrate`",
        )
    endpoint = cal.get("endpoint_us") if isinstance(cal, dict) else None
    if not isinstance(endpoint, int | float) or endpoint < 0:
        raise UserError(
            "missing or negative endpoint_us",
            file=str(path),
            field="calibration.endpoint_us",
            fix="give a parameter file written by `podnetsim calibrate`",
        )
    overrides: dict[str, Any] = {}

    def flatten(prefix: str, table: dict) -> None:
        for key, value in table.items():
            if isinstance(value, dict):
                flatten(f"{prefix}.{key}", value)
            else:
                overrides[f"{prefix}.{key}"] = value

    flatten("costs", costs)
    return overrides, cal


def params_overrides(path: str | Path) -> dict[str, Any]:
    """The ``[costs]`` of a parameter file as dotted scenario overrides.

    Parameters
    ----------
    path : str or Path
        Parameter file.

    Returns
    -------
    dict
        ``{"costs.veth.per_packet_us": ..., ...}``, to pass to
        :func:`sim.spec.load.load_scenario` (or merge with ``--set`` values).
    """
    return read_params(path)[0]


def parse_fit_on(text: str | None) -> tuple[str, ...] | None:
    """Parse ``--fit-on`` (comma-separated case names, or ``all``).

    Parameters
    ----------
    text : str or None
        Option value.

    Returns
    -------
    tuple of str or None
        Case names, ``("all",)``, or ``None`` for the default.
    """
    from sim.testbed.measure import CASES

    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    if names == ("all",):
        return names
    bad = [n for n in names if n not in CASES]
    if bad or not names:
        raise UserError(
            f"unknown RTT case(s) {', '.join(bad) or '(none given)'}",
            field="--fit-on",
            fix=f"give a comma-separated list of {', '.join(CASES)}, or all",
        )
    return names
