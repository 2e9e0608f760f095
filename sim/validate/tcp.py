"""Calibrate TCP throughput on the replica against ``iperf3`` and predict the rest.

What the kernel does (measured on the replica, ``docs/testbed.md``, "TCP"): every
veth of the replica has TSO, GSO and GRO on (``ethtool -k``), and the per-device
counters during ``iperf3`` show super-segments of about 50-58 KB on EVERY device
of both paths, same-node and cross-node (pod veths, node bridges, node
``eth0``, the LAN bridge, the gateway): the replica never segments, because
nothing in it is a real NIC. Each element of kernel work is therefore paid once
per super-segment, and it touches no payload (checksums stay
``CHECKSUM_PARTIAL`` across veths): per-element costs are per packet only. The
payload is touched by the two copies, ``copy_from_user`` in the sender's
``sendmsg`` and ``copy_to_user`` in the receiver's ``recvmsg``. ACKs (66 B on the
wire) cross the reverse path, one per one or two super-segments.

The fit (:func:`fit_tcp`):

* ``element_us`` (each element, per packet or super-segment) from the idle
  round trips, cross-node minus same-node (:func:`sim.validate.loaded.fit_element_us`);
* ``send_us`` = ``recv_us``: what the idle same-node round trip leaves of its
  half after the elements, split evenly between the two syscalls;
* ``per_byte_ns``, the copy cost per byte on each syscall (the same on both),
  from ONE ``iperf3`` point (same-node, one stream): the simulated goodput is
  ``S / (A + B * per_byte)`` for a CPU-bound path, so two simulations give ``A``
  and ``B`` and the measured goodput gives ``per_byte_ns``.

The other placements and stream counts are predicted (:func:`compare_tcp`), and
:func:`misses` names the held-out ones outside the issue's targets.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from sim.analysis.summary import summarize
from sim.control.cluster import Cluster, build_cluster
from sim.errors import UserError
from sim.spec.load import load_scenario
from sim.validate.compare import flow, row, run_flows
from sim.validate.loaded import LoadedFit, elements_one_way, fit_element_us

__all__ = ["RCV_BUF_BYTES", "compare_tcp", "fit_tcp", "misses", "predict_tcp_gbps"]

RCV_BUF_BYTES = 6291456
"""Receive buffer of the simulated connections: Linux's autotuning limit
(``net.ipv4.tcp_rmem`` max, 6 MB, kernel ``Documentation/networking/ip-sysctl.rst``),
which the kernel's connections on the replica grow to."""

DURATION_S = 0.03
"""Simulated length of one prediction, seconds (a fifth of it warm-up)."""

ABS_TOLERANCE = 0.25
"""Accepted relative error of a held-out goodput (the issue's target) ..."""
RATIO_TOLERANCE = 0.15
"""... and of a predicted cross-node / same-node ratio."""


def predict_tcp_gbps(
    scenario: str | Path, overrides: dict, src: str, dst: str, streams: int, pin: dict
) -> float:
    """Simulate the goodput (Gbit/s) of ``streams`` TCP connections ``src -> dst``.

    Parameters
    ----------
    scenario : str or Path
        The measured scenario file.
    overrides : dict
        Its overrides with the fitted costs (:meth:`LoadedFit.overrides`).
    src, dst : str
        Sending and receiving pods.
    streams : int
        Parallel connections (``iperf3 -P``).
    pin : dict of str to int
        Pod -> core (``iperf3`` is not pinned; the sender and receiver usually
        run on different cores of the two).
    """
    tcp = flow("tcp", "tcp", src, dst, streams=streams, tso=True, rcv_buf_bytes=RCV_BUF_BYTES)
    ov = {**overrides, "datapath.pin": pin}
    res = summarize(run_flows(scenario, ov, [tcp], DURATION_S, DURATION_S / 5))
    return float(res["flows"]["tcp"]["throughput_gbps"])


def _base_fit(cl: Cluster, same: tuple, cross: tuple, idle_p50_us: dict, cpus: int) -> LoadedFit:
    """Fit the elements and syscalls (us) to the idle round trips; no per-byte cost yet."""
    rtt_s = idle_p50_us["same"]
    element = fit_element_us(cl, same, cross, (rtt_s, idle_p50_us["cross"]))
    syscall = max(0.0, (rtt_s / 2 - elements_one_way(cl, *same) * element) / 2)
    return LoadedFit(element, syscall, syscall, 0.0, cpus)


def fit_tcp(
    scenario: str | Path,
    overrides: dict,
    same: tuple[str, str],
    cross: tuple[str, str],
    idle_p50_us: dict[str, float],
    same_gbps: float,
    cpus: int,
    pin: dict,
) -> LoadedFit:
    """Fit the TCP costs to the idle round trips and one same-node ``iperf3`` goodput.

    Parameters
    ----------
    scenario : str or Path
        The measured scenario file.
    overrides : dict
        Its overrides as measured (the pods added).
    same, cross : (str, str)
        The same-node and cross-node pod pairs.
    idle_p50_us : dict
        ``{"same": p50, "cross": p50}`` of the idle 64 B probe, us.
    same_gbps : float
        Measured goodput of one same-node stream, Gbit/s.
    cpus : int
        The host's cores.
    pin : dict of str to int
        Pod -> core in the simulation.

    Returns
    -------
    LoadedFit
        Per-element and per-syscall costs (us) and the per-byte copy cost (ns/B).
    """
    cl = build_cluster(load_scenario(scenario, overrides), str(scenario))
    base = _base_fit(cl, same, cross, idle_p50_us, cpus)

    def inverse(per_byte_ns: float) -> float:
        fit = replace(base, per_byte_ns=per_byte_ns)
        ov = {**overrides, **fit.overrides(cl)}
        gbps = predict_tcp_gbps(scenario, ov, *same, 1, pin)
        if not gbps > 0:
            raise UserError(
                f"the CPU model delivers no TCP goodput with the costs fitted to the idle "
                f"round trips ({fit}): its connection stalls",
                field="idle",
                fix="measure again on a quiet machine; if it persists, report the measurements",
            )
        return 1.0 / gbps

    per_byte = _solve(inverse, 1.0 / same_gbps)
    return replace(base, per_byte_ns=per_byte)


def _solve(inverse, target: float, rtol: float = 1e-3, steps: int = 6) -> float:
    """Return the per-byte cost (ns, >= 0) at which ``inverse`` meets ``target``.

    1/goodput is nearly linear in the per-byte cost while one core is the
    bottleneck (exactly, without scheduler slices); secant steps from the linear
    estimate absorb the rest. At most ``steps`` more simulations.
    """
    xs, ys = [0.0, 1.0], [inverse(0.0), inverse(1.0)]
    for _ in range(steps):
        slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
        if not slope > 0:
            break
        x = max(0.0, xs[-1] + (target - ys[-1]) / slope)
        if x == xs[-1]:
            break
        xs.append(x)
        ys.append(inverse(x))
        if abs(ys[-1] - target) <= rtol * target:
            break
    return xs[-1] if len(xs) > 2 else max(0.0, xs[0] + (target - ys[0]) / (ys[1] - ys[0]))


def compare_tcp(
    scenario: str | Path,
    overrides: dict,
    pairs: dict[str, tuple[str, str]],
    idle_p50_us: dict[str, float],
    measured_gbps: dict[tuple[str, int], float],
    cpus: int = 2,
) -> tuple[LoadedFit, list[dict]]:
    """Fit on same-node one stream; predict every measured (placement, streams).

    Parameters
    ----------
    scenario, overrides
        The measured scenario and its overrides.
    pairs : dict
        ``{"same": (src, dst), "cross": (src, dst)}``.
    idle_p50_us : dict
        ``{"same": p50, "cross": p50}``, idle 64 B probe, us.
    measured_gbps : dict
        ``{(placement, streams): goodput}`` from ``iperf3``, Gbit/s.
    cpus : int
        The host's cores.

    Returns
    -------
    (LoadedFit, list of dict)
        The fit and one row per measured figure: ``case``, ``measured``,
        ``predicted`` (Gbit/s), ``ratio`` (predicted / measured), ``held_out``;
        then, per stream count, the cross/same ratio rows (``case`` ``"ratio N
        streams"``).
    """
    same, cross = pairs["same"], pairs["cross"]
    pin = {same[0]: 0, cross[0]: 0, same[1]: 1}
    fit = fit_tcp(
        scenario, overrides, same, cross, idle_p50_us, measured_gbps[("same", 1)], cpus, pin
    )
    cl = build_cluster(load_scenario(scenario, overrides), str(scenario))
    ov = {**overrides, **fit.overrides(cl)}
    pred = {
        key: predict_tcp_gbps(scenario, ov, *pairs[key[0]], key[1], pin) for key in measured_gbps
    }
    rows = [
        row(f"{p} {n} stream(s)", m, pred[(p, n)], (p, n) != ("same", 1))
        for (p, n), m in measured_gbps.items()
    ]
    for n in sorted({n for _, n in measured_gbps}):
        if ("same", n) in measured_gbps and ("cross", n) in measured_gbps:
            m = measured_gbps[("cross", n)] / measured_gbps[("same", n)]
            p = pred[("cross", n)] / pred[("same", n)]
            rows.append(row(f"ratio {n} stream(s)", m, p, True))
    return fit, rows


def misses(rows: list[dict]) -> list[str]:
    """Cases whose held-out prediction misses its tolerance (the issue's 25 % / 15 %)."""
    out = []
    for r in rows:
        tol = RATIO_TOLERANCE if r["case"].startswith("ratio") else ABS_TOLERANCE
        if r["held_out"] and abs(r["ratio"] - 1.0) > tol:
            out.append(r["case"])
    return out
