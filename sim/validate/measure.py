"""Measure a running replica: RTT cases with sockperf, verdicts with the echo probe.

The campaign of the validation: it runs the cases of :mod:`sim.validate.cases`
on a replica with the kernel tools of :mod:`sim.testbed` (root) and writes the
:class:`~sim.validate.models.Measurements` record that ``calibrate`` and
``compare`` read (no root). It lives here, above :mod:`sim.testbed`, so that
the testbed never imports the validation (one-way dependency).

* **RTT cases** (:func:`sim.validate.cases.rtt_cases`) are timed with
  ``sockperf`` ping-pong (:mod:`sim.testbed.timing`) in ``repeats`` rounds,
  every case once per round, so a slow drift of the machine hits all cases
  alike. A case's p50 is the median of its rounds' p50s.
* **Endpoint pairs** (:func:`sim.validate.cases.endpoint_pairs`) are probed
  with the echo of :mod:`sim.testbed.probe`: who received the request and
  which source address it saw.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from sim.errors import UserError
from sim.testbed.errors import ProbeError
from sim.testbed.probe import observe
from sim.testbed.render import Replica
from sim.testbed.timing import busy_poll_works, sockperf_rtt
from sim.validate.cases import CASE_TITLES, CASES, endpoint_pairs, rtt_cases, snat_seen
from sim.validate.models import Measurements, Observation, PairResult, RttCase, ScenarioRef, Timing


def _machine() -> dict:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    return {
        "loadavg_1min_start": round(os.getloadavg()[0], 2),
        "kernel": platform.release(),
        "cpu_model": model,
        "cpus_allowed": len(os.sched_getaffinity(0)),
    }


def _target(replica: Replica, src: str, dst: str) -> tuple[str, str, str]:
    """(client namespace, server namespace, address the client sends to)."""
    same_pod = src.split("/", 1)[0] == dst.split("/", 1)[0]
    addr = "127.0.0.1" if same_pod else str(replica.address(dst))
    return replica.namespace(src), replica.namespace(dst), addr


def _time_case(replica: Replica, case: str, src: str, dst: str, runs: list[dict]) -> RttCase:
    """Build a case from its runs: ok when most runs succeeded (a busy machine can spoil one)."""
    src_ns, dst_ns, addr = _target(replica, src, dst)
    good = [r for r in runs if r.get("p50_us") is not None]
    errors = [r["error"] for r in runs if r.get("error")]
    p50s, p99s = [r["p50_us"] for r in good], [r["p99_us"] for r in good]
    ok = len(good) > len(runs) / 2
    return RttCase(
        title=CASE_TITLES[case],
        src=src,
        dst=dst,
        src_ns=src_ns,
        dst_ns=dst_ns,
        dst_addr=addr,
        ok=ok,
        p50_us=statistics.median(p50s) if ok else None,
        p99_us=statistics.median(p99s) if ok else None,
        spread_p50_us=(min(p50s), max(p50s)) if ok else None,
        spread_p99_us=(min(p99s), max(p99s)) if ok else None,
        samples=sum(r.get("samples", 0) for r in good),
        error=errors[0] if errors else None,
        per_repeat=runs,
    )


def _rtt(replica, cases, timing: Timing, say) -> dict[str, RttCase]:
    chosen = rtt_cases(replica.cluster)
    todo = [c for c in (CASES if cases is None else cases) if c in chosen]
    for case in set(cases or ()) - set(chosen):
        raise UserError(
            f"the scenario offers no endpoints for RTT case {case!r}",
            file=replica.cluster.file,
            fix=f"choose among {', '.join(chosen) or '(none)'}",
        )
    runs: dict[str, list[dict]] = {c: [] for c in todo}
    for rnd in range(timing.repeats):
        for case in todo:
            src, dst = chosen[case]
            src_ns, dst_ns, addr = _target(replica, src, dst)
            try:
                res = sockperf_rtt(
                    src_ns,
                    dst_ns,
                    addr,
                    duration_s=timing.duration_s,
                    payload_bytes=timing.payload_bytes,
                    busy_poll=timing.busy_poll,
                )
            except ProbeError as err:
                res = {"error": str(err)}
            runs[case].append(res)
            say(f"round {rnd + 1}/{timing.repeats} {case} {src} -> {dst} ({addr}): {res}")
    return {c: _time_case(replica, c, *chosen[c], runs[c]) for c in todo}


def observe_pair(replica: Replica, src: str, dst: str) -> PairResult:
    """Probe one endpoint pair; servers run in every namespace owning the address."""
    src_ns, dst_ns, addr = _target(replica, src, dst)
    owners = {name: ns for name, ns in replica.owners.items() if name not in ("gateway", "lan")}
    if addr == "127.0.0.1":
        nss = [dst_ns]
    else:
        nss = [dst_ns] + sorted(
            {ns for n, ns in owners.items() if ns != dst_ns and str(replica.address(n)) == addr}
        )
    res = observe(src_ns, nss, addr)
    served = {ns: r["served"] for ns, r in res["servers"].items()}
    got = [ns for ns in nss if served[ns] > 0]
    by_ns = {ns: n for n, ns in owners.items()}
    seen = res["seen_source"] or next((res["servers"][ns]["peers"][0] for ns in got), None)
    if got and got[0] != dst_ns:
        outcome = "misdelivered"
    elif res["seen_source"] is not None:
        outcome = "round trip"
    else:
        outcome = "reply lost" if got else "request lost"
    scen = replica.mapping.unmap(seen)
    rep = res["servers"][dst_ns]
    obs = Observation(
        outcome=outcome,
        seen_source=seen,
        seen_source_scenario=None if scen is None else str(scen),
        snat=snat_seen(replica.cluster, src, scen),
        delivered_to=by_ns.get(got[0]) if got else None,
        served=rep["served"],
        send_errors=rep["send_errors"],
        error=res["error"],
    )
    return PairResult(src=src, dst=dst, dst_addr=addr, observed=obs)


def _scenario_ref(replica: Replica, overrides: dict | None) -> ScenarioRef:
    cl = replica.cluster
    file = str(Path(cl.file).resolve()) if Path(cl.file).exists() else cl.file
    digest = cl.scenario.digest()
    return ScenarioRef(name=cl.scenario.name, file=file, sha256=digest, overrides=overrides or {})


def measure_replica(
    replica: Replica,
    timing: Timing | None = None,
    *,
    cases: tuple[str, ...] | None = None,
    pairs: bool | list[tuple[str, str]] = True,
    include_nodes: bool = False,
    overrides: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> Measurements:
    """Time the RTT cases and probe the endpoint pairs of a running replica.

    Parameters
    ----------
    replica : Replica
        Built with :func:`sim.testbed.replica.build`.
    timing : Timing or None, default None
        Runs per case, their length, payload; ``busy_poll=None`` means where
        it works (:func:`sim.testbed.timing.busy_poll_works`).
    cases : tuple of str or None, default None
        RTT cases (``None``: all the scenario offers; ``()``: none).
    pairs : bool or list of (str, str), default True
        Probe :func:`endpoint_pairs` (``True``), none, or the given pairs.
    include_nodes : bool, default False
        Also probe pairs involving the nodes.
    overrides : dict or None, default None
        The scenario overrides used (recorded).
    progress : callable or None, default None
        Called with one line per measurement.
    """
    say = progress or (lambda _line: None)
    t0, machine = time.monotonic(), _machine()
    timing = timing or Timing()
    if timing.busy_poll is None:
        timing = timing.model_copy(update={"busy_poll": busy_poll_works()})
    rtt = _rtt(replica, cases, timing, say) if cases != () else {}
    todo = endpoint_pairs(replica.cluster, include_nodes=include_nodes) if pairs is True else pairs
    results = []
    for src, dst in todo or []:
        results.append(observe_pair(replica, src, dst))
        obs = results[-1].observed
        say(f"pair {src} -> {dst}: {obs.outcome}, receiver saw {obs.seen_source}")
    machine["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    return Measurements(
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        scenario=_scenario_ref(replica, overrides),
        prefix=replica.prefix,
        mapping=replica.mapping.to_dict(),
        timing=timing,
        machine=machine,
        rtt=rtt,
        pairs=results,
        elapsed_s=round(time.monotonic() - t0, 3),
    )
