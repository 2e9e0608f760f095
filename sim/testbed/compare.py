"""Compare the calibrated model with the replica's measurements.

For every measured RTT case the scenario is simulated with the calibrated
costs and a single request-response flow between the case's endpoints (one
outstanding request, the probe's packet sizes, the probe's endpoint cost as
think time so the request rate matches the measured one). The simulated round
trip covers the network only, so the predicted RTT is

    predicted p50 = simulated p50 + endpoint_us

where ``endpoint_us`` is the probe's software cost from the parameter file
(added here explicitly, not hidden in a station's cost). Each prediction is set
next to the measured p50 with their ratio, and the cross-node / same-node ratio
of both is compared.

For every probed endpoint pair the model's verdict (:func:`resolve` and
:func:`resolve_reply`: which source address the receiver sees, is it a node
address, are request and reply delivered) is set next to what the receiver in
the replica observed.
"""

from __future__ import annotations

from typing import Any

from sim.analysis.summary import summarize
from sim.control.cluster import Cluster, build_cluster
from sim.engine.run import simulate
from sim.errors import UserError
from sim.spec.load import load_scenario
from sim.testbed.calibrate import model_rtt_us, read_params
from sim.testbed.mapping import Replica, map_cluster
from sim.testbed.measure import model_outcome

__all__ = ["RTT_TOLERANCE", "RATIO_TOLERANCE", "compare", "format_report"]

RTT_TOLERANCE = 0.15
"""Accepted relative error of a predicted p50 RTT (held-out cases)."""

RATIO_TOLERANCE = 0.10
"""Accepted relative error of the predicted cross-node / same-node ratio."""

_MIN_RTTS = 300


def _predict(
    scenario: str, overrides: dict, case: dict, ip_bytes: int, endpoint_us: float, seed: int
) -> tuple[float, float]:
    """Simulated p50 RTT of one case (microseconds) and the analytic zero-load value."""
    cl0 = build_cluster(load_scenario(scenario, overrides), scenario)
    analytic = model_rtt_us(cl0, case["src"], case["dst"], cl0.scenario.costs, ip_bytes, ip_bytes)
    period_s = (analytic + endpoint_us) * 1e-6
    duration_s = max(2e-3, 1.2 * _MIN_RTTS * period_s)
    flow = {
        "name": "probe",
        "kind": "request-response",
        "src": case["src"],
        "dst": case["dst"],
        "outstanding": 1,
        "size_bytes": ip_bytes,
        "reply_bytes": ip_bytes,
        "think_us": endpoint_us,
    }
    ov = dict(overrides)
    ov.update(
        {
            "flows": [flow],
            "simulation.duration_s": duration_s,
            "simulation.warmup_s": duration_s / 6,
            "simulation.seed": seed,
        }
    )
    scn = load_scenario(scenario, ov)
    sm = summarize(simulate(scn, file=scenario))
    return float(sm["flows"]["probe"]["rtt_us"]["p50"]), analytic


def compare(
    scenario: str,
    doc: dict,
    params: str,
    *,
    overrides: dict[str, Any] | None = None,
    seed: int = 1,
) -> dict:
    """Predicted vs measured RTTs and model vs observed SNAT verdicts.

    Parameters
    ----------
    scenario : str
        Scenario file (the one measured).
    doc : dict
        Measurements (:func:`sim.testbed.measure.read_measurements`).
    params : str
        Parameter file from ``podnetsim calibrate``.
    overrides : dict or None, default None
        Scenario overrides; must give the scenario that was measured (its
        digest is checked). The parameter file's costs are applied on top.
    seed : int, default 1
        Simulation seed.

    Returns
    -------
    dict
        ``rtt``: per case measured/predicted p50 (microseconds), ratio,
        whether it was fitted, whether it is within :data:`RTT_TOLERANCE`;
        ``ratio_cross_same``: measured and predicted cross-node / same-node
        ratios; ``verdicts``: per endpoint pair the model's and the observed
        outcome and receiver-seen source, and whether they agree;
        ``endpoint_us``; ``mapping`` lines.

    Raises
    ------
    UserError
        If the scenario (with overrides) is not the one measured, or the
        files are unusable.
    """
    overrides = dict(overrides or {})
    scn = load_scenario(scenario, overrides)
    want = doc.get("scenario", {}).get("sha256")
    if want and scn.digest() != want:
        meas_ov = doc.get("scenario", {}).get("overrides") or {}
        sets = " ".join(f"--set {k}={v}" for k, v in meas_ov.items()) or "no --set options"
        raise UserError(
            "the measurements were taken on a different scenario (digest differs)",
            file=scenario,
            fix=f"give the scenario file and the --set options used by `testbed measure` ({sets})",
        )
    cl = build_cluster(scn, scenario)
    replica = map_cluster(cl, doc.get("prefix", "pns-"))
    cost_ov, cal = read_params(params)
    endpoint = float(cal["endpoint_us"])
    fitted = set(cal.get("fit_on", []))
    ip_bytes = int(doc["probe"]["ip_bytes"])
    sim_ov = {**overrides, **cost_ov}

    rtt: dict[str, dict] = {}
    for case, entry in doc.get("rtt", {}).items():
        row: dict[str, Any] = {
            "src": entry["src"],
            "dst": entry["dst"],
            "title": entry.get("title", case),
            "measured_p50_us": entry.get("p50_us"),
            "spread_p50_us": entry.get("spread_p50_us"),
            "measured_p99_us": entry.get("p99_us"),
            "fitted": case in fitted,
        }
        mo = model_outcome(cl, entry["src"], entry["dst"])
        if mo["outcome"] != "round trip":
            row.update(predicted_p50_us=None, ratio=None, within=None, note=mo["outcome"])
        else:
            sim_p50, analytic = _predict(scenario, sim_ov, entry, ip_bytes, endpoint, seed)
            pred = sim_p50 + endpoint
            row.update(
                simulated_network_p50_us=sim_p50,
                analytic_network_us=analytic,
                predicted_p50_us=pred,
            )
            meas = entry.get("p50_us")
            if meas:
                row["ratio"] = pred / meas
                row["within"] = abs(pred / meas - 1.0) <= RTT_TOLERANCE
            else:
                row.update(ratio=None, within=None, note=entry.get("error", "not measured"))
        rtt[case] = row

    ratio = None
    same, cross = rtt.get("same_node"), rtt.get("cross_node")
    if same and cross and same.get("ratio") and cross.get("ratio"):
        m = cross["measured_p50_us"] / same["measured_p50_us"]
        p = cross["predicted_p50_us"] / same["predicted_p50_us"]
        ratio = {
            "measured": m,
            "predicted": p,
            "ratio": p / m,
            "within": abs(p / m - 1.0) <= RATIO_TOLERANCE,
        }

    verdicts = []
    seen_pairs = set()
    probes = [(p["src"], p["dst"], p["observed"]) for p in doc.get("pairs", [])]
    for entry in doc.get("rtt", {}).values():
        if entry.get("seen_source") is not None:
            obs = {
                "outcome": "round trip",
                "seen_source": entry["seen_source"],
                "seen_source_scenario": entry.get("seen_source_scenario"),
            }
            probes.append((entry["src"], entry["dst"], obs))
    for src, dst, obs in probes:
        if (src, dst) in seen_pairs:
            continue
        seen_pairs.add((src, dst))
        verdicts.append(_verdict(cl, replica, src, dst, obs))
    return {
        "scenario": scn.name,
        "endpoint_us": endpoint,
        "ip_bytes": ip_bytes,
        "rtt": rtt,
        "ratio_cross_same": ratio,
        "verdicts": verdicts,
        "mapping": replica.mapping.lines(),
    }


def _verdict(cl: Cluster, replica: Replica, src: str, dst: str, obs: dict) -> dict:
    mo = model_outcome(cl, src, dst)
    model_seen = mo["seen_source"]
    model_seen_replica = (
        None if model_seen is None else str(replica.mapping.map_address(model_seen))
    )
    node_ips = {str(n.address) for n in cl.plan.nodes}
    obs_scen = obs.get("seen_source_scenario")
    obs_snat = obs_scen in node_ips and src.split("/")[0] in cl.pods
    agree = mo["outcome"] == obs.get("outcome") and model_seen_replica == obs.get("seen_source")
    return {
        "src": src,
        "dst": dst,
        "model_outcome": mo["outcome"],
        "model_seen_source": model_seen,
        "model_seen_source_replica": model_seen_replica,
        "model_snat": mo["snat"],
        "model_reason": mo["reason"],
        "observed_outcome": obs.get("outcome"),
        "observed_seen_source": obs.get("seen_source"),
        "observed_seen_source_scenario": obs_scen,
        "observed_snat": bool(obs_snat),
        "agree": bool(agree),
    }


def _side(outcome: str, scen: str | None, rep: str | None, snat: bool) -> str:
    if scen is None and rep is None:
        return outcome
    tag = "SNAT" if snat else "no SNAT"
    return f"{outcome}: {scen or '?'} [{rep or '?'}] {tag}"


def _f(x: float | None, nd: int = 2) -> str:
    return "-" if x is None else f"{x:.{nd}f}"


def format_report(res: dict) -> list[str]:
    """The comparison as printable lines.

    Parameters
    ----------
    res : dict
        From :func:`compare`.

    Returns
    -------
    list of str
        Tables of RTTs (microseconds) and SNAT verdicts.
    """
    out = [
        f"scenario {res['scenario']!r}: predicted = simulated network RTT + endpoint cost "
        f"{res['endpoint_us']:.2f} us (probe software, from the intra-pod RTT); "
        f"{res['ip_bytes']} B IP packets, 1 outstanding request",
        "",
        f"{'case':<11} {'pair':<26} {'measured p50':>12} {'(spread)':>15} "
        f"{'predicted':>9} {'ratio':>6}  use",
    ]
    for case, r in res["rtt"].items():
        spread = r.get("spread_p50_us")
        sp = f"({spread[0]:.2f}-{spread[1]:.2f})" if spread else ""
        use = "fitted" if r["fitted"] else "held out"
        if r.get("within") is not None and not r["fitted"]:
            use += ", within 15%" if r["within"] else ", OUTSIDE 15%"
        if r.get("note"):
            use += f" ({r['note']})"
        out.append(
            f"{case:<11} {r['src'] + ' -> ' + r['dst']:<26} {_f(r['measured_p50_us']):>12} "
            f"{sp:>15} {_f(r.get('predicted_p50_us')):>9} {_f(r.get('ratio'), 3):>6}  {use}"
        )
    rc = res["ratio_cross_same"]
    if rc:
        out.append(
            f"cross-node / same-node RTT: measured {rc['measured']:.3f}, predicted "
            f"{rc['predicted']:.3f}, ratio {rc['ratio']:.3f} "
            f"({'within' if rc['within'] else 'OUTSIDE'} 10%)"
        )
    out += [
        "",
        "SNAT verdicts: outcome, source address the receiver sees (scenario address"
        " [replica address]), SNAT to a node address or not",
        f"{'pair':<26} {'model':<44} {'replica':<44} agree",
    ]
    for v in res["verdicts"]:
        m = _side(
            v["model_outcome"],
            v["model_seen_source"],
            v["model_seen_source_replica"],
            v["model_snat"],
        )
        o = _side(
            v["observed_outcome"],
            v["observed_seen_source_scenario"],
            v["observed_seen_source"],
            v["observed_snat"],
        )
        pair = f"{v['src']} -> {v['dst']}"
        out.append(f"{pair:<26} {m:<44} {o:<44} {'yes' if v['agree'] else 'NO'}")
    n_bad = sum(not v["agree"] for v in res["verdicts"])
    out.append(
        f"{len(res['verdicts']) - n_bad} of {len(res['verdicts'])} endpoint pairs agree"
        + (f"; {n_bad} DISAGREE" if n_bad else "")
    )
    return out
