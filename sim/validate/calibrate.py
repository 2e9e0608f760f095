"""Fit the model's per-hop costs to round trips measured on the replica.

At one outstanding request there is no queueing, so the model's round trip is
exact arithmetic on the resolved request and reply paths: the sum of the
stations' service times (:meth:`sim.spec.costs.StationCost.mean_service_us`),
propagation and the NAT extra where a hop rewrites an address. The timing tool
adds its own software cost once per round trip: the **endpoint term**.

Each model station kind is a fixed sum of elementary kinds of kernel work
(:data:`sim.testbed.render.COMPOSITION`, declared with the replica's build).
The fit:

1. the endpoint term is the measured intra-pod (localhost) p50 minus the
   model's loopback cost (without a fitted localhost case it is one more
   unknown);
2. every other fitted case's p50 minus the endpoint term and the fixed parts
   (serialization at the scenario's link rates) is linear in the elements:
   non-negative least squares (:func:`scipy.optimize.lsq_linear`);
3. directions the fitted cases do not determine stay near the scenario's
   costs (a ridge of weight :data:`PRIOR_WEIGHT`) and are listed.

Per-byte costs and propagation are set to 0 (one packet size cannot tell
per-byte from per-packet cost; the replica's links have no length).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import lsq_linear

from sim.control.cluster import Cluster
from sim.control.resolve import resolve, resolve_reply
from sim.errors import UserError
from sim.spec.costs import Costs
from sim.testbed.render import COMPOSITION, ELEMENTS
from sim.validate.cases import CASES
from sim.validate.models import Measurements

DEFAULT_FIT_ON = ("localhost", "same_node", "ext_nomasq")
"""Cases fitted by default; the others are held out to test the prediction."""

PRIOR_WEIGHT = 1e-3
"""Weight of the pull towards the scenario's costs for undetermined directions."""


@dataclass(frozen=True)
class FitCase:
    """Measured and fitted p50 of one case, microseconds."""

    src: str
    dst: str
    measured_p50_us: float
    model_p50_us: float
    fitted: bool

    @property
    def residual_us(self) -> float:
        """Model minus measured, microseconds."""
        return self.model_p50_us - self.measured_p50_us


@dataclass(frozen=True)
class Fit:
    """A calibration: endpoint term, elementary costs and calibrated :class:`Costs`."""

    endpoint_us: float
    elements_us: dict[str, float]
    costs: Costs
    fit_on: tuple[str, ...]
    held_out: tuple[str, ...]
    cases: dict[str, FitCase]
    undetermined: tuple[str, ...]
    ip_bytes: int


def _prior(costs: Costs, element: str) -> float:
    """Return the scenario's cost of an element in us (a LAN bridge costs a node bridge's)."""
    if element == "nat":
        return costs.nat_extra_us
    return getattr(costs, "bridge" if element == "lan_bridge" else element).per_packet_us


def _paths(cl: Cluster, src: str, dst: str):
    fwd = resolve(cl, src, dst)
    rep = resolve_reply(cl, fwd)
    if fwd.verdict != "delivered" or rep.verdict != "delivered":
        raise UserError(
            f"the model has no round trip {src} -> {dst}: {fwd.reason or rep.reason}",
            file=cl.file,
            fix="fit only pairs whose request and reply are both delivered",
        )
    return fwd, rep


def model_rtt_us(cl: Cluster, src: str, dst: str, costs: Costs, ip_bytes: float) -> float:
    """Return the model's round trip at zero load, without any endpoint term, microseconds.

    Sum over the request's and the reply's hops (both ``ip_bytes`` long) of
    each station's mean service time and propagation, plus ``nat_extra_us``
    where a hop rewrites an address.
    """
    total = 0.0
    for path in _paths(cl, src, dst):
        for hop in path.hops:
            c = getattr(costs, hop.kind)
            total += c.mean_service_us(ip_bytes) + c.propagation_us
            total += costs.nat_extra_us if hop.nat else 0.0
    return total


def design_row(cl: Cluster, src: str, dst: str) -> np.ndarray:
    """How many times each of :data:`ELEMENTS` is paid in one round trip ``src -> dst``."""
    row = np.zeros(len(ELEMENTS))
    for path in _paths(cl, src, dst):
        for hop in path.hops:
            for elem, k in COMPOSITION.get(hop.kind, {}).items():
                row[ELEMENTS.index(elem)] += k
            row[ELEMENTS.index("nat")] += hop.nat
    return row


def fitted_costs(base: Costs, elements: dict[str, float]) -> Costs:
    """Return ``base`` with per-packet costs from ``elements`` (us), per-byte and propagation 0."""
    update: dict = {"nat_extra_us": elements["nat"]}
    for kind, comp in COMPOSITION.items():
        per_packet = sum(k * elements[e] for e, k in comp.items())
        update[kind] = getattr(base, kind).model_copy(
            update={"per_packet_us": per_packet, "per_byte_ns": 0.0, "propagation_us": 0.0}
        )
    return base.model_copy(update=update)


def _fit_set(
    doc: Measurements, fit_on: tuple[str, ...] | None
) -> tuple[list[str], tuple[str, ...]]:
    good = [c for c, e in doc.rtt.items() if e.ok and e.p50_us is not None]
    if fit_on is None:
        fit_on = tuple(c for c in DEFAULT_FIT_ON if c in good)
    elif tuple(fit_on) == ("all",):
        fit_on = tuple(good)
    for case in fit_on:
        if case not in good:
            why = "was not measured" if case not in doc.rtt else "failed (no round trips)"
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
    return good, tuple(fit_on)


def _solve(rows, y, fixed, fit_on, prior: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Endpoint term, elements and the fitted design matrix (endpoint column first if unknown)."""
    fit_rows = [c for c in fit_on if c != "localhost"]
    a = np.array([rows[c] for c in fit_rows]).reshape(len(fit_rows), len(ELEMENTS))
    if "localhost" in fit_on:
        endpoint = y["localhost"] - fixed["localhost"] - float(rows["localhost"] @ prior)
        b = np.array([y[c] - endpoint - fixed[c] for c in fit_rows])
        theta0 = prior
    else:  # the endpoint term is one more unknown, with coefficient 1 in every row
        a = np.hstack([np.ones((len(fit_rows), 1)), a])
        b = np.array([y[c] - fixed[c] for c in fit_rows])
        theta0 = np.concatenate([[0.0], prior])
    n = a.shape[1]
    sol = lsq_linear(
        np.vstack([a, PRIOR_WEIGHT * np.eye(n)]),
        np.concatenate([b, PRIOR_WEIGHT * theta0]),
        bounds=(0.0, np.inf),
        method="bvls",
    ).x
    if "localhost" not in fit_on:
        endpoint, sol = float(sol[0]), sol[1:]
    return float(endpoint), sol, a


def calibrate(cl: Cluster, doc: Measurements, fit_on: tuple[str, ...] | None = None) -> Fit:
    """Fit the elementary costs to the measured RTT cases.

    Parameters
    ----------
    cl : Cluster
        The model cluster of the measured scenario.
    doc : Measurements
        The measurements.
    fit_on : tuple of str or None, default None
        Cases to fit (default :data:`DEFAULT_FIT_ON`); ``("all",)`` fits every
        measured case; the others are held out.

    Returns
    -------
    Fit
        Endpoint term, elements, calibrated costs and per-case residuals.

    Raises
    ------
    UserError
        A requested case was not measured or failed, or fewer than two are left.
    """
    good, fit_on = _fit_set(doc, fit_on)
    size = doc.timing.ip_bytes
    base = cl.scenario.costs
    zero = fitted_costs(base, dict.fromkeys(ELEMENTS, 0.0))
    cases = {c: doc.rtt[c] for c in good}
    rows = {c: design_row(cl, e.src, e.dst) for c, e in cases.items()}
    fixed = {c: model_rtt_us(cl, e.src, e.dst, zero, size) for c, e in cases.items()}
    y = {c: float(e.p50_us) for c, e in cases.items()}
    prior = np.array([_prior(base, e) for e in ELEMENTS])
    endpoint, sol, a = _solve(rows, y, fixed, fit_on, prior)
    elements = {e: float(v) for e, v in zip(ELEMENTS, sol, strict=True)}
    costs = fitted_costs(base, elements)
    names = ELEMENTS if "localhost" in fit_on else ("endpoint", *ELEMENTS)
    return Fit(
        endpoint_us=endpoint,
        elements_us=elements,
        costs=costs,
        fit_on=fit_on,
        held_out=tuple(c for c in good if c not in fit_on),
        cases={
            c: FitCase(
                e.src,
                e.dst,
                y[c],
                endpoint + model_rtt_us(cl, e.src, e.dst, costs, size),
                c in fit_on,
            )
            for c, e in cases.items()
        },
        undetermined=tuple(_undetermined(a, names)),
        ip_bytes=size,
    )


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
        out.append(
            terms[0].lstrip("+").replace("1*", "")
            if len(terms) == 1
            else " ".join(terms).lstrip("+")
        )
    return out


def parse_fit_on(text: str | None) -> tuple[str, ...] | None:
    """Parse ``--fit-on`` (comma-separated case names, or ``all``); ``None`` is the default."""
    if text is None:
        return None
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    bad = [n for n in names if n not in CASES]
    if names == ("all",):
        return names
    if bad or not names:
        raise UserError(
            f"unknown RTT case(s) {', '.join(bad) or '(none given)'}",
            field="--fit-on",
            fix=f"give a comma-separated list of {', '.join(CASES)}, or all",
        )
    return names
