"""Compare the calibrated model with the replica's measurements.

Each measured RTT case is simulated with the calibrated costs and a single
request-response flow between its endpoints (one outstanding request, the
measured packet size, the endpoint term as think time so the request rate
matches the measured one). The simulated round trip covers the network only:

    predicted p50 = simulated p50 + endpoint_us

Each prediction is set next to the measured p50 with their ratio, and the
cross-node / same-node ratios are compared. For every probed endpoint pair the
model's verdict (outcome, source address the receiver sees) is set next to
what the replica's receiver observed.

The loaded-CPU and TCP comparisons (:mod:`sim.validate.loaded`,
:mod:`sim.validate.tcp`) simulate their flows and lay out their rows with the
helpers here: :func:`flow`, :func:`probe_flow`, :func:`run_flows`, :func:`row`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sim.analysis.summary import summarize
from sim.control.cluster import Cluster, build_cluster
from sim.engine.run import RunResult, simulate
from sim.errors import UserError
from sim.spec.load import load_scenario
from sim.testbed.mapping import AddressMapping, map_cluster
from sim.validate.calibrate import model_rtt_us
from sim.validate.cases import model_outcome, snat_seen
from sim.validate.models import (
    CaseComparison,
    Comparison,
    Measurements,
    Observation,
    RatioCheck,
    RttCase,
    Verdict,
)
from sim.validate.params import read_params

RTT_TOLERANCE = 0.15
"""Accepted relative error of a held-out predicted p50 RTT."""

RATIO_TOLERANCE = 0.10
"""Accepted relative error of the predicted cross-node / same-node ratio."""

_MIN_RTTS = 300


def flow(name: str, kind: str, src: str, dst: str, **params: Any) -> dict:
    """One ``[[flows]]`` entry of a scenario, as an override."""
    return {"name": name, "kind": kind, "src": src, "dst": dst, **params}


def probe_flow(src: str, dst: str, ip_bytes: int, think_us: float = 0.0) -> dict:
    """Return the timing tool's probe ``probe``: one request in flight, ``ip_bytes`` each way."""
    sizes = {"size_bytes": ip_bytes, "reply_bytes": ip_bytes}
    return flow("probe", "request-response", src, dst, outstanding=1, think_us=think_us, **sizes)


def run_flows(
    scenario: str | Path,
    overrides: dict,
    flows: list[dict],
    duration_s: float,
    warmup_s: float,
    seed: int = 1,
) -> RunResult:
    """Simulate ``scenario`` with ``overrides`` and only ``flows`` for ``duration_s`` seconds."""
    sim = {"simulation.duration_s": duration_s, "simulation.warmup_s": warmup_s}
    ov = {**overrides, "flows": flows, **sim, "simulation.seed": seed}
    return simulate(load_scenario(scenario, ov), file=str(scenario))


def row(case: str, measured: float, predicted: float, held_out: bool, **extra: float) -> dict:
    """Return one figure, measured vs predicted, as a row of a comparison table.

    Its keys: ``case``, ``measured``, ``predicted``, any ``extra`` (another
    model's prediction), ``ratio`` (predicted / measured), ``held_out`` (not fitted).
    """
    out = {"case": case, "measured": measured, "predicted": predicted, **extra}
    return {**out, "ratio": predicted / measured, "held_out": held_out}


def _case_row(
    cal: Cluster,
    scenario: str,
    sim_ov: dict,
    entry: RttCase,
    fitted: bool,
    ip_bytes: int,
    endpoint_us: float,
    seed: int,
) -> CaseComparison:
    """Measured vs predicted p50 of one case; ``cal`` is the calibrated cluster (``sim_ov``)."""
    base = CaseComparison(
        src=entry.src,
        dst=entry.dst,
        title=entry.title,
        fitted=fitted,
        measured_p50_us=entry.p50_us,
        spread_p50_us=entry.spread_p50_us,
    )
    mo = model_outcome(cal, entry.src, entry.dst)
    if mo.outcome != "round trip":
        return base.model_copy(update={"note": mo.outcome})
    analytic = model_rtt_us(cal, entry.src, entry.dst, cal.scenario.costs, ip_bytes)
    duration_s = max(2e-3, 1.2 * _MIN_RTTS * (analytic + endpoint_us) * 1e-6)
    flows = [probe_flow(entry.src, entry.dst, ip_bytes, think_us=endpoint_us)]
    res = run_flows(scenario, sim_ov, flows, duration_s, duration_s / 6, seed)
    sim_p50 = float(summarize(res)["flows"]["probe"]["rtt_us"]["p50"])
    pred = sim_p50 + endpoint_us
    update: dict[str, Any] = {
        "simulated_network_p50_us": sim_p50,
        "analytic_network_us": analytic,
        "predicted_p50_us": pred,
    }
    if entry.p50_us:
        ratio = pred / entry.p50_us
        update.update(ratio=ratio, within=abs(ratio - 1.0) <= RTT_TOLERANCE)
    else:
        update["note"] = entry.error or "not measured"
    return base.model_copy(update=update)


def _ratio(rtt: dict[str, CaseComparison]) -> RatioCheck | None:
    same, cross = rtt.get("same_node"), rtt.get("cross_node")
    if not (same and cross and same.ratio and cross.ratio):
        return None
    m = cross.measured_p50_us / same.measured_p50_us
    p = cross.predicted_p50_us / same.predicted_p50_us
    return RatioCheck(
        measured=m, predicted=p, ratio=p / m, within=abs(p / m - 1.0) <= RATIO_TOLERANCE
    )


def _check_digest(scenario: str, scn, doc: Measurements) -> None:
    if doc.scenario.sha256 and scn.digest() != doc.scenario.sha256:
        sets = (
            " ".join(f"--set {k}={v}" for k, v in doc.scenario.overrides.items())
            or "no --set options"
        )
        raise UserError(
            "the measurements were taken on a different scenario (digest differs)",
            file=scenario,
            fix=f"give the scenario file and the --set options used by `testbed measure` ({sets})",
        )


def compare(
    scenario: str,
    doc: Measurements,
    params: str,
    *,
    overrides: dict[str, Any] | None = None,
    seed: int = 1,
) -> Comparison:
    """Predicted vs measured RTTs and model vs observed verdicts.

    Parameters
    ----------
    scenario : str
        The scenario file measured.
    doc : Measurements
        The measurements.
    params : str
        Parameter file from ``podnetsim calibrate``.
    overrides : dict or None, default None
        Scenario overrides; must give the scenario measured (digest checked).
    seed : int, default 1
        Simulation seed.

    Raises
    ------
    UserError
        If the scenario is not the one measured, or a file is unusable.
    """
    overrides = dict(overrides or {})
    scn = load_scenario(scenario, overrides)
    _check_digest(scenario, scn, doc)
    cl = build_cluster(scn, scenario)
    mapping = map_cluster(cl)
    cost_ov, cal = read_params(params)
    endpoint, fitted = float(cal["endpoint_us"]), set(cal.get("fit_on", []))
    ip_bytes, sim_ov = doc.timing.ip_bytes, {**overrides, **cost_ov}
    cal = build_cluster(load_scenario(scenario, sim_ov), scenario)
    rtt = {
        case: _case_row(cal, scenario, sim_ov, e, case in fitted, ip_bytes, endpoint, seed)
        for case, e in doc.rtt.items()
    }
    seen: set[tuple[str, str]] = set()
    verdicts = []
    for p in doc.pairs:
        if (p.src, p.dst) not in seen:
            seen.add((p.src, p.dst))
            verdicts.append(_verdict(cl, mapping, p.src, p.dst, p.observed))
    return Comparison(
        scenario=scn.name,
        endpoint_us=endpoint,
        ip_bytes=ip_bytes,
        rtt=rtt,
        ratio_cross_same=_ratio(rtt),
        verdicts=verdicts,
        mapping=mapping.lines(),
    )


def _verdict(cl: Cluster, m: AddressMapping, src: str, dst: str, obs: Observation) -> Verdict:
    mo = model_outcome(cl, src, dst)
    mapped = None if mo.seen_source is None else str(m.address(mo.seen_source))
    agree = mo.outcome == obs.outcome and mapped == obs.seen_source
    if mo.outcome == "misdelivered":
        agree = agree and mo.delivered_to == obs.delivered_to
    return Verdict(
        src=src,
        dst=dst,
        model_outcome=mo.outcome,
        model_seen_source=mo.seen_source,
        model_seen_source_replica=mapped,
        model_snat=mo.snat,
        model_reason=mo.reason,
        observed_outcome=obs.outcome,
        observed_seen_source=obs.seen_source,
        observed_seen_source_scenario=obs.seen_source_scenario,
        observed_snat=snat_seen(cl, src, obs.seen_source_scenario),
        agree=agree,
    )


def _side(outcome: str | None, scen: str | None, rep: str | None, snat: bool) -> str:
    if scen is None and rep is None:
        return str(outcome)
    return f"{outcome}: {scen or '?'} [{rep or '?'}] {'SNAT' if snat else 'no SNAT'}"


def _f(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def _rtt_lines(res: Comparison) -> list[str]:
    out = [
        f"{'case':<11} {'pair':<26} {'measured p50':>12} {'(spread)':>15} "
        f"{'predicted':>9} {'ratio':>6}  use"
    ]
    for case, r in res.rtt.items():
        sp = f"({r.spread_p50_us[0]:.2f}-{r.spread_p50_us[1]:.2f})" if r.spread_p50_us else ""
        use = "fitted" if r.fitted else "held out"
        if r.within is not None and not r.fitted:
            use += f", {'within' if r.within else 'OUTSIDE'} {RTT_TOLERANCE:.0%}"
        use += f" ({r.note})" if r.note else ""
        out.append(
            f"{case:<11} {r.src + ' -> ' + r.dst:<26} {_f(r.measured_p50_us):>12} {sp:>15} "
            f"{_f(r.predicted_p50_us):>9} {_f(r.ratio, 3):>6}  {use}"
        )
    rc = res.ratio_cross_same
    if rc:
        out.append(
            f"cross-node / same-node RTT: measured {rc.measured:.3f}, "
            f"predicted {rc.predicted:.3f}, "
            f"ratio {rc.ratio:.3f} ({'within' if rc.within else 'OUTSIDE'} {RATIO_TOLERANCE:.0%})"
        )
    return out


def format_report(res: Comparison) -> list[str]:
    """Return the comparison as printable lines: RTTs (microseconds) and verdicts."""
    out = [
        f"scenario {res.scenario!r}: predicted = simulated network RTT + endpoint term "
        f"{res.endpoint_us:.2f} us (timing tool's software, from the intra-pod RTT); "
        f"{res.ip_bytes} B IP packets, 1 outstanding request",
        "",
        *_rtt_lines(res),
        "",
        "verdicts: outcome, source address the receiver sees (scenario address [replica address])",
        f"{'pair':<26} {'model':<44} {'replica':<44} agree",
    ]
    for v in res.verdicts:
        m = _side(v.model_outcome, v.model_seen_source, v.model_seen_source_replica, v.model_snat)
        o = _side(
            v.observed_outcome,
            v.observed_seen_source_scenario,
            v.observed_seen_source,
            v.observed_snat,
        )
        out.append(f"{v.src + ' -> ' + v.dst:<26} {m:<44} {o:<44} {'yes' if v.agree else 'NO'}")
    bad = sum(not v.agree for v in res.verdicts)
    out.append(
        f"{len(res.verdicts) - bad} of {len(res.verdicts)} endpoint pairs agree"
        + (f"; {bad} DISAGREE" if bad else "")
    )
    return out
