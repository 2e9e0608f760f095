"""Measure a scenario's replica: round-trip times and what each receiver saw.

Two kinds of measurement, both with the UDP request/response probe of
:mod:`sim.testbed.probe` (busy-polling client and server pinned to different
CPUs, one request in flight):

* **RTT cases** (:data:`CASES`), timed with tens of thousands of round trips
  after a warm-up, repeated with fresh processes: two containers of one pod
  over localhost, same-node pod to pod, cross-node pod to pod, pod to an
  external host inside (not masqueraded) and outside (masqueraded) the
  non-masquerade range. Which endpoints play each case is chosen from the
  *model's* resolved paths (:func:`rtt_cases`).
* **Endpoint pairs** (:func:`endpoint_pairs`): every ordered pair of pods,
  external hosts (and optionally nodes), plus the containers of each pod, each
  probed briefly to record the outcome (round trip, reply lost, request lost)
  and the source address the receiver saw: the proof of SNAT or its absence.

The result is a JSON-ready dict (:data:`SCHEMA_VERSION`), written with
:func:`write_measurements` and read back with :func:`read_measurements`.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from ipaddress import IPv4Address
from pathlib import Path

from sim.control.cluster import Cluster
from sim.control.resolve import resolve, resolve_reply
from sim.errors import UserError
from sim.testbed.mapping import Replica
from sim.testbed.probe import measure_pair

__all__ = [
    "CASES",
    "IP_UDP_HEADER_BYTES",
    "SCHEMA_VERSION",
    "endpoint_pairs",
    "measure_replica",
    "model_outcome",
    "observed_outcome",
    "read_measurements",
    "rtt_cases",
    "write_measurements",
]

SCHEMA_VERSION = 1
"""Version of the measurements file format."""

KIND = "podnetsim-testbed-measurements"

CASES = ("localhost", "same_node", "cross_node", "ext_nomasq", "ext_masq")
"""RTT cases, in the order they are measured."""

CASE_TITLES = {
    "localhost": "two containers of one pod over localhost",
    "same_node": "pod to pod on the same node",
    "cross_node": "pod to pod on another node",
    "ext_nomasq": "pod to external host inside the non-masquerade range",
    "ext_masq": "pod to external host outside the non-masquerade range (SNAT)",
}

IP_UDP_HEADER_BYTES = 28
"""IPv4 (20 B) plus UDP (8 B) header: probe payload + this = IP packet size, bytes."""

OUTCOMES = ("round trip", "reply lost", "request lost")


# ------------------------------------------------------------------ model side
def model_outcome(cl: Cluster, src: str, dst: str) -> dict:
    """What the model says happens to a request from ``src`` to ``dst`` and its reply.

    Parameters
    ----------
    cl : Cluster
        The model cluster.
    src, dst : str
        Endpoint names (pod, ``pod/container``, node, external host).

    Returns
    -------
    dict
        ``outcome`` (one of ``"round trip"``, ``"reply lost"``,
        ``"request lost"``), ``seen_source`` (scenario address the receiver
        sees, or ``None`` if the request is lost), ``snat`` (the receiver sees
        a node address for a pod sender), ``reason`` (why something is lost),
        ``stations`` and ``reply_stations`` (the resolved hops).
    """
    fwd = resolve(cl, src, dst)
    rep = resolve_reply(cl, fwd)
    if fwd.verdict != "delivered":
        outcome, reason, seen = "request lost", fwd.reason, None
    elif rep.verdict != "delivered":
        outcome, reason, seen = "reply lost", rep.reason, fwd.seen_src
    else:
        outcome, reason, seen = "round trip", "", fwd.seen_src
    node_ips = {n.address for n in cl.plan.nodes}
    snat = seen is not None and fwd.src.kind in ("pod", "container") and seen in node_ips
    return {
        "outcome": outcome,
        "seen_source": None if seen is None else str(seen),
        "snat": snat,
        "reason": reason,
        "stations": fwd.stations,
        "reply_stations": rep.stations,
    }


def rtt_cases(cl: Cluster) -> dict[str, tuple[str, str]]:
    """Pick the endpoints of each RTT case from the model's resolved paths.

    One source pod is used for every case: the first pod that has another pod
    on its node and one on another node (else the first pod). ``localhost``
    uses two containers of a pod (the source pod if it has two, else the first
    pod that has; else one container to itself). ``ext_nomasq`` is the first
    external host the model reaches without SNAT and with a working reply path
    (else the first one without SNAT); ``ext_masq`` the first one reached with
    SNAT.

    Parameters
    ----------
    cl : Cluster
        The model cluster.

    Returns
    -------
    dict of str to (str, str)
        ``{case: (src, dst)}`` for the cases the scenario offers, in
        :data:`CASES` order.
    """
    pods = list(cl.plan.pods)
    if not pods:
        return {}

    def peers(p, same: bool):
        return [q for q in pods if q.name != p.name and (q.node == p.node) == same]

    src = next((p for p in pods if peers(p, True) and peers(p, False)), pods[0])
    out: dict[str, tuple[str, str]] = {}
    multi = [p for p in pods if len(p.containers) >= 2]
    lp = src if len(src.containers) >= 2 else (multi[0] if multi else src)
    c = lp.containers
    out["localhost"] = (f"{lp.name}/{c[0].name}", f"{lp.name}/{c[1 if len(c) > 1 else 0].name}")
    if peers(src, True):
        out["same_node"] = (src.name, peers(src, True)[0].name)
    if peers(src, False):
        out["cross_node"] = (src.name, peers(src, False)[0].name)
    nomasq, nomasq_lossy, masq = None, None, None
    for h in cl.plan.hosts:
        m = model_outcome(cl, src.name, h.name)
        if m["outcome"] == "request lost":
            continue
        if m["snat"]:
            masq = masq or h.name
        elif m["outcome"] == "round trip":
            nomasq = nomasq or h.name
        else:
            nomasq_lossy = nomasq_lossy or h.name
    if nomasq or nomasq_lossy:
        out["ext_nomasq"] = (src.name, nomasq or nomasq_lossy)
    if masq:
        out["ext_masq"] = (src.name, masq)
    return out


def endpoint_pairs(cl: Cluster, *, include_nodes: bool = False) -> list[tuple[str, str]]:
    """Every ordered endpoint pair whose SNAT verdict is checked.

    Parameters
    ----------
    cl : Cluster
        The model cluster.
    include_nodes : bool, default False
        Also use the nodes themselves as endpoints.

    Returns
    -------
    list of (str, str)
        Container pairs of each multi-container pod first, then every ordered
        pair of distinct pods, external hosts (and nodes).
    """
    out: list[tuple[str, str]] = []
    for p in cl.plan.pods:
        names = [f"{p.name}/{c.name}" for c in p.containers]
        out += [(a, b) for a in names for b in names if a != b]
    eps = [p.name for p in cl.plan.pods] + [h.name for h in cl.plan.hosts]
    if include_nodes:
        eps += [n.name for n in cl.plan.nodes]
    out += [(a, b) for a in eps for b in eps if a != b]
    return out


# ------------------------------------------------------------- replica side
def _same_pod(src: str, dst: str) -> bool:
    return src.split("/", 1)[0] == dst.split("/", 1)[0]


def _target(replica: Replica, src: str, dst: str) -> tuple[str, str, str]:
    """(client namespace, server namespace, address the client sends to)."""
    src_ns, dst_ns = replica.namespace(src), replica.namespace(dst)
    addr = "127.0.0.1" if _same_pod(src, dst) else str(replica.address(dst))
    return src_ns, dst_ns, addr


def observed_outcome(result: dict, replica: Replica) -> dict:
    """Classify one :func:`~sim.testbed.probe.measure_pair` run like :func:`model_outcome`.

    Parameters
    ----------
    result : dict
        A ``measure_pair`` result (its first repeat is used).
    replica : Replica
        For translating replica addresses back to scenario addresses.

    Returns
    -------
    dict
        ``outcome``; ``seen_source`` (replica address the server saw, from the
        hello reply or, when replies are lost, from the server's own report);
        ``seen_source_scenario`` (the same, unmapped); ``snat``; ``served``,
        ``send_errors`` and ``error`` as reported.
    """
    rep = result["per_repeat"][0]
    server = rep.get("server") or {}
    peers = server.get("peers") or []
    seen = result.get("seen_source")
    if seen is not None:
        outcome = "round trip"
    elif server.get("served", 0) > 0:
        outcome, seen = "reply lost", (peers[0] if peers else None)
    elif rep.get("server") is None:
        outcome = "unknown (no server report)"
    else:
        outcome = "request lost"
    scen = replica.mapping.unmap_address(seen)
    node_ips = {n.address for n in replica.cluster.plan.nodes}
    return {
        "outcome": outcome,
        "seen_source": seen,
        "seen_source_scenario": None if scen is None else str(scen),
        "snat": scen in node_ips,
        "served": server.get("served"),
        "send_errors": server.get("send_errors"),
        "error": rep.get("error"),
    }


def _machine() -> dict:
    model = ""
    try:
        for line in (
            Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace").splitlines()
        ):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "loadavg_1min_start": round(os.getloadavg()[0], 2),
        "kernel": platform.release(),
        "cpu_model": model,
        "cpus_allowed": len(os.sched_getaffinity(0)),
        "python": platform.python_version(),
    }


def measure_replica(
    replica: Replica,
    *,
    n: int = 30000,
    warmup: int = 3000,
    repeats: int = 5,
    pair_n: int = 200,
    payload_bytes: int = 32,
    include_nodes: bool = False,
    cases: tuple[str, ...] | None = None,
    pairs: bool | list[tuple[str, str]] = True,
    cpus: tuple[int, int] | None = None,
    overrides: dict | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict:
    """Measure RTT cases and endpoint-pair outcomes on a running replica.

    Parameters
    ----------
    replica : Replica
        A replica already built (see :func:`sim.testbed.replica.build`).
    n : int, default 30000
        Timed round trips per repeat of each RTT case.
    warmup : int, default 3000
        Untimed round trips before them.
    repeats : int, default 5
        Rounds over the RTT cases: each round measures every case once with
        fresh client and server processes, so a slow drift of the machine
        affects all cases alike. Per case, ``p50_us`` is the median of the
        rounds' p50s and ``spread_p50_us`` their (min, max).
    pair_n : int, default 200
        Round trips of each endpoint-pair probe (after 20 warm-up ones).
    payload_bytes : int, default 32
        UDP payload of requests and replies, bytes (IP packet: +28 bytes).
    include_nodes : bool, default False
        Also probe pairs involving the nodes themselves.
    cases : tuple of str or None, default None
        RTT cases to measure (``None``: all the scenario offers; ``()``: none).
    pairs : bool or list of (str, str), default True
        Probe the endpoint pairs of :func:`endpoint_pairs` (``True``), none
        (``False``), or the given ones.
    cpus : (int, int) or None, default None
        CPUs of (client, server); default the first two allowed.
    overrides : dict or None, default None
        The scenario overrides used (recorded in the result).
    progress : callable or None, default None
        Called with one line of text per measurement.

    Returns
    -------
    dict
        JSON-ready measurements (see ``docs/testbed.md``): ``rtt`` by case with
        ``p50_us``/``p99_us`` (median over repeats, microseconds), their
        ``spread`` (min, max over repeats) and the source the server saw;
        ``pairs`` with each pair's observed outcome and source address.
    """
    cl = replica.cluster
    say = progress or (lambda _line: None)
    t0 = time.monotonic()
    doc: dict = {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "scenario": {
            "name": cl.scenario.name,
            "file": str(Path(cl.file).resolve()) if Path(cl.file).exists() else cl.file,
            "sha256": cl.scenario.digest(),
            "overrides": dict(overrides or {}),
        },
        "prefix": replica.topology.prefix,
        "mapping": replica.mapping.to_dict(),
        "probe": {
            "payload_bytes": payload_bytes,
            "ip_bytes": payload_bytes + IP_UDP_HEADER_BYTES,
            "n": n,
            "warmup": warmup,
            "repeats": repeats,
            "pair_n": pair_n,
            "outstanding": 1,
        },
        "machine": _machine(),
        "rtt": {},
        "pairs": [],
    }
    chosen = rtt_cases(cl)
    todo = []
    for case in CASES if cases is None else cases:
        if case in chosen:
            todo.append(case)
        elif cases:
            raise UserError(
                f"the scenario offers no endpoints for RTT case {case!r}",
                file=cl.file,
                fix=f"choose among {', '.join(chosen) or '(none)'}",
            )
    runs: dict[str, list[dict]] = {case: [] for case in todo}
    failed: dict[str, str] = {}
    # Rounds: every case once per round, so slow drifts of the machine (other
    # tenants, frequency) hit every case alike instead of biasing one.
    for rnd in range(repeats):
        for case in todo:
            if case in failed:
                continue
            src, dst = chosen[case]
            src_ns, dst_ns, addr = _target(replica, src, dst)
            res = measure_pair(
                src_ns,
                dst_ns,
                addr,
                n,
                warmup,
                1,
                cpus=cpus,
                size=payload_bytes,
                server_bind=addr,
                # a request counts as lost after 0.2 s without reply; on a busy
                # machine a descheduled probe can cause a few: tolerate 1 %
                max_lost=max(10, n // 100),
                check=False,
            )
            rep = res["per_repeat"][0]
            runs[case].append(rep)
            # a few lost requests (within max_lost) still leave a good sample
            if rep["error"] is not None or rep["p50_us"] is None:
                failed[case] = rep["error"] or "no round trips"
                say(f"round {rnd + 1}/{repeats} {case} {src} -> {dst}: failed: {failed[case]}")
            else:
                say(
                    f"round {rnd + 1}/{repeats} {case} {src} -> {dst} ({addr}): "
                    f"p50 {rep['p50_us']:.2f} us, p99 {rep['p99_us']:.2f} us"
                )
    for case in todo:
        src, dst = chosen[case]
        src_ns, dst_ns, addr = _target(replica, src, dst)
        reps = runs[case]
        p50s = [r["p50_us"] for r in reps if r["p50_us"] is not None]
        p99s = [r["p99_us"] for r in reps if r["p99_us"] is not None]
        seen = next((r["seen_source"] for r in reps if r["seen_source"]), None)
        ok = case not in failed and len(reps) == repeats
        entry = {
            "title": CASE_TITLES[case],
            "src": src,
            "dst": dst,
            "src_ns": src_ns,
            "dst_ns": dst_ns,
            "dst_addr": addr,
            "ok": ok,
            "p50_us": statistics.median(p50s) if ok else None,
            "p99_us": statistics.median(p99s) if ok else None,
            "spread_p50_us": [min(p50s), max(p50s)] if ok else None,
            "spread_p99_us": [min(p99s), max(p99s)] if ok else None,
            "seen_source": seen,
            "seen_source_scenario": (
                None if seen is None else str(replica.mapping.unmap_address(seen))
            ),
            "lost": sum(r["lost"] for r in reps),
            "per_repeat": reps,
        }
        if not ok:
            entry["error"] = failed.get(case, "incomplete")
        doc["rtt"][case] = entry
    if pairs is True:
        pairs = endpoint_pairs(cl, include_nodes=include_nodes)
    if pairs:
        for src, dst in pairs:
            src_ns, dst_ns, addr = _target(replica, src, dst)
            res = measure_pair(
                src_ns,
                dst_ns,
                addr,
                pair_n,
                20,
                1,
                cpus=cpus,
                size=payload_bytes,
                hello_timeout_s=1.0,
                max_lost=3,
                timeout_s=20.0,
                server_bind=addr,
                check=False,
            )
            obs = observed_outcome(res, replica)
            say(f"pair {src} -> {dst}: {obs['outcome']}, receiver saw {obs['seen_source']}")
            doc["pairs"].append(
                {
                    "src": src,
                    "dst": dst,
                    "dst_addr": addr,
                    "observed": obs,
                    "p50_us": res["median_p50_us"],
                }
            )
    doc["machine"]["loadavg_1min_end"] = round(os.getloadavg()[0], 2)
    doc["elapsed_s"] = round(time.monotonic() - t0, 3)
    return doc


# --------------------------------------------------------------------- files
def write_measurements(doc: dict, path: str | Path) -> None:
    """Write measurements as indented JSON.

    Parameters
    ----------
    doc : dict
        From :func:`measure_replica`.
    path : str or Path
        Output file.
    """
    Path(path).write_text(json.dumps(doc, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def read_measurements(path: str | Path) -> dict:
    """Read and check a measurements file.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`write_measurements`.

    Returns
    -------
    dict
        The measurements.

    Raises
    ------
    UserError
        If the file is missing, not JSON, or not a measurements file of this
        schema version.
    """
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError("file not found", file=str(path), fix="check the path") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise UserError(
            f"cannot read measurements ({err})",
            file=str(path),
            fix="give a file written by `podnetsim testbed measure`",
        ) from None
    if not isinstance(doc, dict) or doc.get("kind") != KIND:
        raise UserError(
            "not a measurements file",
            file=str(path),
            fix="give a file written by `podnetsim testbed measure`",
        )
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise UserError(
            f"measurements schema version {doc.get('schema_version')} is not supported "
            f"(expected {SCHEMA_VERSION})",
            file=str(path),
            fix="measure again with this version of podnetsim",
        )
    for case, entry in doc.get("rtt", {}).items():
        if case not in CASES or not isinstance(entry, dict):
            raise UserError(
                f"unknown RTT case {case!r}", file=str(path), field=f"rtt.{case}", fix="remove it"
            )
    return doc


def as_address(text: str | None) -> IPv4Address | None:
    """``IPv4Address(text)``, or ``None`` for ``None``."""
    return None if text is None else IPv4Address(text)
