"""Calibrate the CPU data path on the replica and predict it under load.

The replica is simulated as it is built: ``[datapath] model = "cpu"``,
``topology = "replica"``, the host's cores shared by every namespace, the pods'
threads pinned where ``taskset`` put them (:mod:`sim.testbed.load`).

The fit (:func:`fit_loaded`) uses idle round trips and ONE saturation point:

* every element of kernel work a packet crosses (``sim.testbed.render.ELEMENTS``
  counted by :func:`sim.validate.calibrate.design_row`: veth, node bridge, LAN
  bridge, forwarding, gateway) costs the same ``element_us``, fitted from the
  cross-node minus same-node idle round trip (the two paths differ only in
  elements);
* the sender's ``sendto`` (with the tool's own work per message) is what the
  saturation rate leaves of the sender's core: ``1 / rate - n_same * element_us``
  (in the replica the whole path runs inline on the sender's core, so one UDP
  sender saturates when that core is busy all the time);
* the receiver's ``recvfrom`` (with its wake-up) is the rest of the idle
  same-node round trip: ``rtt / 2 - 1 / rate`` (the probe is one message in
  flight, each way ``sendto`` + path + ``recvfrom`` on one core);
* the per-byte cost is the idle round trip's growth from 64 B to 1400 B
  payloads, half on each syscall (``copy_from_user``, ``copy_to_user``), never
  negative.

Everything else is predicted: the other path's and the other size's
saturation rates (:func:`predict_saturation`) and the probe's p50 RTT with a
background flow on the probe's core or on another (:func:`predict_loaded_p50`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sim.analysis.summary import summarize
from sim.control.cluster import Cluster, build_cluster
from sim.spec.load import load_scenario
from sim.testbed.render import ELEMENTS
from sim.validate.calibrate import design_row, fitted_costs
from sim.validate.compare import flow, probe_flow, row, run_flows
from sim.validate.models import IP_UDP_HEADER_BYTES

__all__ = [
    "LoadedFit",
    "compare_loaded",
    "compare_overload",
    "drop_location",
    "elements_one_way",
    "fit_element_us",
    "fit_loaded",
    "predict_loaded_p50",
    "predict_saturation",
]

SMALL, LARGE = 64, 1400
"""The two payload sizes measured, bytes."""
OVERLOAD_S = 0.4
"""Simulated time of the shared-core overload, s: ~20 of its cycles (see ``predict_saturation``)."""


@dataclass(frozen=True)
class LoadedFit:
    """Fitted CPU costs of the replica (microseconds, nanoseconds per byte).

    Attributes
    ----------
    element_us : float
        Each element of kernel work (veth, bridges, forwarding, gateway).
    send_us, recv_us : float
        The sender's and receiver's per-message work (syscall and tool).
    per_byte_ns : float
        Per byte of IP packet, on each of the two syscalls.
    cpus : int
        The host's cores.
    """

    element_us: float
    send_us: float
    recv_us: float
    per_byte_ns: float
    cpus: int

    def overrides(self, cl: Cluster) -> dict:
        """Scenario overrides that make ``cl``'s scenario the calibrated replica model."""
        elements = dict.fromkeys(ELEMENTS, self.element_us)
        elements["nat"] = 0.0
        return {
            "costs": fitted_costs(cl.scenario.costs, elements).model_dump(),
            "flows": [],
            "datapath.model": "cpu",
            "datapath.topology": "replica",
            "datapath.cpus": self.cpus,
            "datapath.send_per_packet_us": self.send_us,
            "datapath.recv_per_packet_us": self.recv_us,
            "datapath.send_per_byte_ns": self.per_byte_ns,
            "datapath.recv_per_byte_ns": self.per_byte_ns,
        }


def elements_one_way(cl: Cluster, src: str, dst: str) -> float:
    """Elements crossed one way ``src -> dst`` (half the round trip's, NAT excluded)."""
    counts = design_row(cl, src, dst)
    return float(counts.sum() - counts[ELEMENTS.index("nat")]) / 2


def fit_element_us(cl: Cluster, same: tuple, cross: tuple, rtt_us: tuple[float, float]) -> float:
    """Fit each element's cost (us, >= 0) to the idle same- and cross-node round trips.

    Their difference, ``rtt_us[1] - rtt_us[0]``, is the elements the cross-node
    pair ``cross`` crosses beyond the same-node pair ``same``, both ways.
    """
    rtt_same_us, rtt_cross_us = rtt_us
    extra = elements_one_way(cl, *cross) - elements_one_way(cl, *same)
    return max(0.0, (rtt_cross_us - rtt_same_us) / 2 / extra)


def fit_loaded(
    cl: Cluster,
    same: tuple[str, str],
    cross: tuple[str, str],
    idle_p50_us: dict[tuple[str, int], float],
    saturation_pps: float,
    cpus: int,
) -> LoadedFit:
    """Fit the replica's CPU costs to idle round trips and one saturation rate.

    Parameters
    ----------
    cl : Cluster
        The measured scenario's cluster.
    same, cross : (str, str)
        The same-node and cross-node pod pairs measured.
    idle_p50_us : dict
        ``{("same" | "cross", payload_bytes): p50}`` of the idle probe, us, for
        payloads 64 and 1400 B.
    saturation_pps : float
        Delivered rate of one same-node 64 B flow at saturation, packets/s.
    cpus : int
        The host's cores.
    """
    rtt_s = idle_p50_us[("same", SMALL)]
    element = fit_element_us(cl, same, cross, (rtt_s, idle_p50_us[("cross", SMALL)]))
    n_same = elements_one_way(cl, *same)
    growth = [idle_p50_us[(p, LARGE)] - idle_p50_us[(p, SMALL)] for p in ("same", "cross")]
    per_byte_ns = max(0.0, sum(growth) / len(growth) / 2 / (LARGE - SMALL) / 2 * 1e3)
    small_ip = SMALL + IP_UDP_HEADER_BYTES
    sender_us = 1e6 / saturation_pps
    send = max(0.0, sender_us - n_same * element - per_byte_ns * 1e-3 * small_ip)
    recv = max(0.0, rtt_s / 2 - sender_us - per_byte_ns * 1e-3 * small_ip)
    return LoadedFit(element, send, recv, per_byte_ns, cpus)


def predict_saturation(
    scenario: str | Path,
    overrides: dict,
    src: str,
    dst: str,
    payload_bytes: int,
    cpus: tuple[int, int] = (0, 1),
    realtime: bool = True,
    duration_s: float = 0.05,
) -> dict:
    """Delivered rate (packets/s) and drops of one flooding UDP flow in the model.

    The flow offers 1 Mpacket/s (more than any path of the replica carries); its
    sender's thread sends as fast as its core allows (:class:`sim.engine.cpu.Thread`).
    It runs ``duration_s`` (s) of simulated time and counts after the first 10 ms;
    a flood into a reader on the sender's own core cycles every ~20 ms (the
    reader's wake-up preemption, then a slice waited out), so it needs longer.
    With ``realtime`` both ends run at real-time priority, as
    :func:`sim.testbed.load.saturation` runs the sender by default (its
    receiver, alone on its core, busy-polls at normal priority: alone, a
    reader's priority changes nothing in the model, which charges the sender
    no wake-up for it).
    Returns ``delivered_pps``, ``drops`` (``{reason: count}``) and
    ``drop_fraction`` (of the packets delivered or lost after the warm-up).
    """
    ip = payload_bytes + IP_UDP_HEADER_BYTES
    flood = flow("flood", "constant", src, dst, rate_pps=1e6, size_bytes=ip)
    ov = {**overrides, "datapath.pin": {src: cpus[0], dst: cpus[1]}}
    ov["datapath.realtime"] = {src: realtime, dst: realtime}
    res = run_flows(scenario, ov, [flood], duration_s, 0.01)
    # Counted by when packets were delivered or lost: a flood offered far beyond its
    # sender's rate leaves what it generates after the warm-up in the sender's queue.
    p = res.packets
    win = (p["done_s"] > 0.01) & (p["done_s"] <= duration_s)
    lost = win & (p["reason"] > 0)
    ids, counts = np.unique(p["reason"][lost], return_counts=True)
    return {
        "delivered_pps": float((win & (p["reason"] == 0)).sum() / (duration_s - 0.01)),
        "drops": {res.reasons[int(i)]: int(c) for i, c in zip(ids, counts, strict=True)},
        "drop_fraction": float(lost.sum() / max(int(win.sum()), 1)),
    }


def drop_location(socket_drops: int, backlog_drops: int) -> str:
    """Name where most packets were dropped: ``socket buffer``, ``backlog`` or ``none``.

    Parameters
    ----------
    socket_drops : int
        Drops at the receiving socket's buffer (kernel ``UdpRcvbufErrors``;
        model reason ``socket receive buffer full``).
    backlog_drops : int
        Drops at the per-CPU backlog (``/proc/net/softnet_stat`` column 2; model
        reason ``backlog full``).
    """
    if socket_drops == backlog_drops == 0:
        return "none"
    return "socket buffer" if socket_drops >= backlog_drops else "backlog"


def compare_overload(scenario: str | Path, overrides: dict, pair: tuple, overload: dict) -> dict:
    """Where the shared-core overload drops, in the kernel and in the calibrated model.

    Parameters
    ----------
    scenario : str or Path
        The measured scenario file.
    overrides : dict
        Its overrides with the fit's (:meth:`LoadedFit.overrides`).
    pair : (str, str)
        The flooding sender and its receiver (the same-node pair), both on CPU 0.
    overload : dict
        The kernel's result (:func:`sim.testbed.load.saturation` with ``cpus=(0, 0)``).

    Returns
    -------
    dict
        ``kernel`` and ``model`` locations (:func:`drop_location`), the
        fractions of packets dropped (``kernel_drop_fraction``,
        ``model_drop_fraction``) and the delivered rates, packets/s.
    """
    model = predict_saturation(
        scenario, overrides, *pair, SMALL, cpus=(0, 0), realtime=False, duration_s=OVERLOAD_S
    )
    sock = sum(n for why, n in model["drops"].items() if why.startswith("socket receive"))
    back = sum(n for why, n in model["drops"].items() if why.startswith("backlog full"))
    k_sock, k_back = overload["rcvbuf_drops"], overload["backlog_drops"]
    k_gone = overload["delivered"] + k_sock + k_back
    return {
        "kernel": drop_location(k_sock, k_back),
        "model": drop_location(sock, back),
        "kernel_drop_fraction": (k_sock + k_back) / k_gone if k_gone else 0.0,
        "model_drop_fraction": model["drop_fraction"],
        "kernel_delivered_pps": overload["delivered_pps"],
        "model_delivered_pps": model["delivered_pps"],
    }


def predict_loaded_p50(
    scenario: str | Path,
    overrides: dict,
    probe: tuple[str, str],
    background: tuple[str, str],
    bg_pps: float,
    probe_cpu: int,
    bg_cpu: int,
    payload_bytes: int = SMALL,
    realtime: bool = True,
) -> float:
    """Predict the probe's p50 round trip (us) with a constant-rate background flow.

    The probe is one request in flight (``request-response``, no think time: the
    fitted syscall costs hold the tool's work), its two ends on ``probe_cpu``
    (at real-time priority if ``realtime``, as :func:`sim.testbed.load.loaded_rtt`
    runs them by default); the background's two ends on ``bg_cpu`` at normal
    priority (``sockperf --mps`` paces at even intervals: a ``constant`` flow).
    """
    ip = payload_bytes + IP_UDP_HEADER_BYTES
    flows = [probe_flow(*probe, ip)]
    if bg_pps > 0:
        flows.append(flow("bg", "constant", *background, rate_pps=bg_pps, size_bytes=ip))
    pin = {probe[0]: probe_cpu, probe[1]: probe_cpu}
    pin.update({background[0]: bg_cpu, background[1]: bg_cpu})
    rt = {probe[0]: realtime, probe[1]: realtime}
    ov = {**overrides, "datapath.pin": pin, "datapath.realtime": rt}
    res = summarize(run_flows(scenario, ov, flows, 0.2, 0.2 / 5))
    return float(res["flows"]["probe"]["rtt_us"]["p50"])


def compare_loaded(
    scenario: str | Path,
    overrides: dict,
    pairs: dict[str, tuple[str, str]],
    measured: dict,
    cpus: int,
) -> tuple[LoadedFit, list[dict]]:
    """Fit on the idle probes and the same-node 64 B saturation; predict the rest.

    Parameters
    ----------
    scenario : str or Path
        The measured scenario file.
    overrides : dict
        Its overrides as measured (e.g. the pods added).
    pairs : dict
        ``{"same": (src, dst), "cross": (src, dst), "background": (src, dst)}``.
    measured : dict
        From :func:`sim.testbed.load.measure_loaded`.
    cpus : int
        The host's cores.

    Returns
    -------
    (LoadedFit, list of dict)
        The fit and one row per figure: ``case``, ``measured``, ``predicted``
        (CPU model), ``stations`` (the station model with the same per-kind
        costs), ``ratio`` (predicted / measured), ``held_out``; saturation rows in
        packets/s, p50 rows in us. The station model has no cores: its loaded p50
        is the measured idle p50 plus what the background adds at its stations.
    """
    cl = build_cluster(load_scenario(scenario, overrides), str(scenario))
    idle = {(p, n): r["p50_us"] for p, by in measured["idle"].items() for n, r in by.items()}
    sat = measured["saturation"]
    fit = fit_loaded(
        cl, pairs["same"], pairs["cross"], idle, sat["same"][SMALL]["delivered_pps"], cpus
    )
    ov = {**overrides, **fit.overrides(cl)}
    st = {**ov, "datapath.model": "stations"}
    rows = []
    for p, by in sat.items():
        for n, r in by.items():
            pred = predict_saturation(scenario, ov, *pairs[p], n)["delivered_pps"]
            stations = predict_saturation(scenario, st, *pairs[p], n)["delivered_pps"]
            held_out = (p, n) != ("same", SMALL)
            case = f"saturation {p} {n} B"
            rows.append(row(case, r["delivered_pps"], pred, held_out, stations=stations))
    bg, base = pairs["background"], idle[("same", SMALL)]
    st_idle = predict_loaded_p50(scenario, st, pairs["same"], bg, 0, 0, 0)
    for place, r in measured["loaded"].items():
        cpu = 0 if place == "shared" else 1
        bg_pps = r["bg_delivered_pps"]  # what the background achieved, not what it asked
        rt = r["runs"][0].get("realtime", True)  # the probe's priority as measured
        pred = predict_loaded_p50(scenario, ov, pairs["same"], bg, bg_pps, 0, cpu, realtime=rt)
        st_p = base + predict_loaded_p50(scenario, st, pairs["same"], bg, bg_pps, 0, cpu) - st_idle
        case = f"probe p50, background {place} core"
        rows.append(row(case, r["p50_us"], pred, True, stations=st_p))
    return fit, rows
