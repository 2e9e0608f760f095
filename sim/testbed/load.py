"""Loaded measurements on a running replica: saturation, a probe under load, drops.

* :func:`saturation`: one ``sockperf throughput`` sender (``sockperf tp``, no rate
  limit: as fast as its ``sendto`` returns) and one ``sockperf server``, each
  pinned to its own CPU with ``taskset``, for ``duration_s``. The sent rate is the
  client's; the delivered rate is the receiving namespace's ``UdpInDatagrams``.
  A receiver with a CPU of its own busy-polls (``--nonblocked``, normal
  priority): a receiver that sleeps on an empty socket must be woken for each
  datagram that finds it asleep, and the waker is the sender's softirq, which
  pays for ``try_to_wake_up`` and the inter-processor interrupt (the ``CAL``
  row of ``/proc/interrupts`` on the receiver's CPU). That cost is not in the
  model (:mod:`sim.engine.cpu` charges a wake-up to no core); it is also
  unstable, since how often the receiver sleeps depends on how far it is ahead
  of the sender. Measured here (2 s floods): a blocking receiver took 24-30 k
  such interrupts same-node and 37-50 k cross-node, and the cross-node rate
  varied 57-79 k/s; a spinning one took 8-13 either way, and cross-node
  72-88 k/s.
* :func:`loaded_rtt`: a ``sockperf ping-pong`` probe (blocking sockets, both ends
  on ``probe_cpu``) while a background ``sockperf tp --mps`` flow offers a fixed
  rate, its two ends on ``bg_cpu``: the same core as the probe, or another.
* Drops, located by kernel counters (deltas over the run): column 2 of
  ``/proc/net/softnet_stat`` (per-CPU backlog full, ``netdev_max_backlog``,
  kernel ``Documentation/admin-guide/sysctl/net.rst``), column 3 (``time_squeeze``)
  and the receiving namespace's ``UdpRcvbufErrors`` (socket receive buffer full,
  ``nstat(8)``; UDP MIB counters are per network namespace).

Scheduling: the pods' threads (but a spinning receiver, which would starve its
CPU's kernel threads) run at real-time priority (``chrt --fifo``), so the
shared machine's other (normal-priority) work does not interleave with them and
what is measured is the kernel's data path; the background flow's ends run at
normal priority, so a probe on its core waits only for the kernel work in
progress (as in the model, where segments are not preempted). Every loop is
bounded: runs last ``duration_s`` and each command has a time bound.
"""

from __future__ import annotations

import json
import os
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial

from sim.testbed.errors import ProbeError, one_line
from sim.testbed.render import Replica
from sim.testbed.timing import (
    SLACK_S,
    SOCKPERF_PORT,
    in_rounds,
    ping_pong,
    run_bounded,
    sockperf,
    sockperf_server,
    spawn,
    stop,
    wait_bounded,
)

__all__ = ["call_ipis", "counters", "loaded_rtt", "measure_loaded", "saturation", "softnet"]

PROBE_PORT = SOCKPERF_PORT
"""UDP port of the probe's sockperf server."""

LOAD_PORT = 11112
"""UDP port of the background (or saturating) flow's sockperf server."""

_RATE = "Message Rate is"

SPIN = ("--nonblocked",)
"""sockperf server options of a busy-polling receiver (non-blocking socket, never sleeps)."""

_MIB = {"delivered": "UdpInDatagrams", "rcvbuf_drops": "UdpRcvbufErrors"}
"""Counts read as deltas of the receiving namespace's UDP MIB."""


def softnet() -> list[tuple[int, int, int]]:
    """Per CPU: (processed, dropped [backlog full], time_squeeze), ``/proc/net/softnet_stat``."""
    with open("/proc/net/softnet_stat", encoding="ascii") as fh:
        rows = [line.split() for line in fh if line.strip()]
    return [(int(r[0], 16), int(r[1], 16), int(r[2], 16)) for r in rows]


def counters(ns: str) -> dict[str, int]:
    """Absolute SNMP counters of namespace ``ns`` (``nstat -asz``: no history file)."""
    data = json.loads(run_bounded(ns, ["nstat", "-asz", "--json"], 10).stdout or "{}")
    return {k: int(v) for k, v in data.get("kernel", data).items()}


def call_ipis() -> list[int]:
    """Per CPU: function-call interrupts received, the ``CAL`` row of ``/proc/interrupts``.

    Waking a task that sleeps on another CPU queues the wake-up to that CPU with
    one of them (``ttwu_queue_wakelist``, kernel ``kernel/sched/core.c``). Zeros
    where the row is absent (it is x86's name).
    """
    with open("/proc/interrupts", encoding="ascii") as fh:
        ncpu = len(fh.readline().split())
        for line in fh:
            parts = line.split()
            if parts and parts[0] == "CAL:":
                return [int(v) for v in parts[1 : 1 + ncpu]]
    return [0] * ncpu


def _snapshot(ns: str) -> tuple:
    """Read the counters that :func:`_drops` takes its deltas of."""
    return counters(ns), softnet(), call_ipis()


def _drops(ns: str, cpu: int, before: tuple) -> dict:
    """Deltas since ``before``: datagrams delivered and dropped, squeezes, wake-ups.

    The wake-ups are the function-call interrupts of the receiver's ``cpu``.
    Read 0.2 s after the flow's end, so the receiver has drained its socket.
    """
    time.sleep(0.2)
    (ns0, sn0, ipi0), (ns1, sn1, ipi1) = before, _snapshot(ns)
    out = {key: ns1.get(mib, 0) - ns0.get(mib, 0) for key, mib in _MIB.items()}
    for key, col in (("backlog_drops", 1), ("time_squeeze", 2)):
        out[key] = sum(a[col] - b[col] for a, b in zip(sn1, sn0, strict=True))
    out["wakeup_ipis"] = ipi1[cpu] - ipi0[cpu]
    return out


def _sent_pps(text: str) -> float:
    """Read the sender's rate, packets/s, from ``sockperf tp``'s report."""
    for line in text.splitlines():
        if _RATE in line:
            return float(line.split(_RATE, 1)[1].split("[", 1)[0])
    raise ProbeError(f"sockperf throughput reported no rate: {one_line(text)[-300:]}")


def _loadavg() -> float:
    """Return the machine's 1-minute load average, as reported with each result."""
    return round(os.getloadavg()[0], 2)


@contextmanager
def _flow(
    replica: Replica,
    pods: tuple[str, str],
    size_bytes: int,
    cpus: tuple[int, int],
    duration_s: float,
    realtime: bool,
    *extra: str,
    spin: bool = False,
) -> Iterator[Callable[[], dict]]:
    """Run a ``sockperf tp`` flow between ``pods`` (sender, receiver) for a ``with`` block.

    The sender on ``cpus[0]``, the server on ``cpus[1]``, both at real-time
    priority if ``realtime``; a server that spins busy-polls at normal
    priority (:data:`SPIN`). Yields the function that waits for the sender's
    end and returns ``sent_pps``, ``delivered_pps`` (over ``duration_s``) and
    the receiver's counter deltas (:func:`_drops`).
    """
    addr, ns = str(replica.address(pods[1])), replica.namespace(pods[1])
    args = ["tp", "-i", addr, "-p", str(LOAD_PORT), "-t", f"{duration_s:g}", "-m", str(size_bytes)]
    server = (False, SPIN) if spin else (realtime, ())
    with sockperf_server(ns, cpus[1], addr, LOAD_PORT, *server):
        before = _snapshot(ns)
        sender = spawn(replica.namespace(pods[0]), sockperf(cpus[0], [*args, *extra], realtime))

        def finish() -> dict:
            sent = _sent_pps(wait_bounded(sender, duration_s + SLACK_S)[0])
            out = _drops(ns, cpus[1], before)
            return {"sent_pps": sent, "delivered_pps": out["delivered"] / duration_s, **out}

        try:
            yield finish
        finally:
            stop(sender)


def saturation(
    replica: Replica,
    src: str,
    dst: str,
    size_bytes: int,
    *,
    cpus: tuple[int, int] = (0, 1),
    duration_s: float = 2.0,
    realtime: bool = True,
    spin: bool | None = None,
) -> dict:
    """Measure the saturation rate of one UDP flow ``src -> dst`` with ``size_bytes`` payloads.

    Parameters
    ----------
    replica : Replica
        A running replica.
    src, dst : str
        Sending and receiving pods.
    size_bytes : int
        UDP payload, bytes.
    cpus : (int, int), default (0, 1)
        CPUs of the sender and of the receiver.
    duration_s : float, default 2.0
        Length of the run, seconds.
    realtime : bool, default True
        Both ends at real-time priority; False: normal priority, so two ends on
        one CPU share it by the scheduler's time slices.
    spin : bool or None, default None
        The receiver busy-polls at normal priority instead of sleeping on its
        socket (see the module's notes); None: where it has a CPU of its own
        (``cpus[0] != cpus[1]``).

    Returns
    -------
    dict
        ``sent_pps``, ``delivered_pps`` (packets/s), ``delivered``,
        ``rcvbuf_drops``, ``backlog_drops``, ``time_squeeze``, ``wakeup_ipis``
        (function-call interrupts of the receiver's CPU: :func:`call_ipis`)
        (counts over the run), ``receiver_spins`` and ``loadavg_1min``.
    """
    spin = cpus[0] != cpus[1] if spin is None else spin
    flow = _flow(replica, (src, dst), size_bytes, cpus, duration_s, realtime, spin=spin)
    with flow as finish:
        return {**finish(), "receiver_spins": spin, "loadavg_1min": _loadavg()}


def loaded_rtt(
    replica: Replica,
    probe: tuple[str, str],
    background: tuple[str, str] | None,
    bg_pps: float,
    *,
    probe_cpu: int = 0,
    bg_cpu: int = 0,
    size_bytes: int = 64,
    duration_s: float = 2.0,
    realtime: bool = True,
) -> dict:
    """Time the probe's round trips while a background flow offers ``bg_pps`` packets/s.

    Parameters
    ----------
    replica : Replica
        A running replica.
    probe : (str, str)
        Probe client and server pods (ping-pong, blocking, real-time, on ``probe_cpu``).
    background : (str, str) or None
        Background sender and receiver pods (normal priority, on ``bg_cpu``);
        None or ``bg_pps`` = 0: an idle probe.
    bg_pps : float
        Background rate offered, packets/s (``sockperf --mps``).
    probe_cpu, bg_cpu : int, default 0
        CPUs of the probe's two ends and of the background's two ends.
    size_bytes : int, default 64
        Payload of both flows, bytes.
    duration_s : float, default 2.0
        Length of the probe's run, seconds (the background runs 1 s longer).
    realtime : bool, default True
        The probe's ends at real-time priority (False: normal, like the background).

    Returns
    -------
    dict
        ``p50_us``, ``p99_us``, ``samples`` of the probe; the background's
        ``bg_sent_pps``, ``bg_delivered_pps`` and counter deltas (as
        :func:`saturation`); ``realtime`` (the probe's priority); ``loadavg_1min``.
    """
    addr, dns = str(replica.address(probe[1])), replica.namespace(probe[1])
    with sockperf_server(dns, probe_cpu, addr, PROBE_PORT, realtime), ExitStack() as running:
        finish = dict  # an idle probe: no background figures
        if background is not None and bg_pps > 0:
            mps = f"--mps={round(bg_pps)}"
            bg = _flow(
                replica, background, size_bytes, (bg_cpu, bg_cpu), duration_s + 1, False, mps
            )
            finish = running.enter_context(bg)
            time.sleep(0.3)  # the background is running before the probe starts
        args = (replica.namespace(probe[0]), probe_cpu, addr, PROBE_PORT, duration_s, size_bytes)
        res = ping_pong(*args, realtime=realtime)
        bg_out = {f"bg_{k}" if k.endswith("_pps") else k: v for k, v in finish().items()}
    return {**res, **bg_out, "realtime": realtime, "loadavg_1min": _loadavg()}


_MEDIAN = ("p50_us", "p99_us", "sent_pps", "delivered_pps", "bg_delivered_pps")
_SUM = ("delivered", "rcvbuf_drops", "backlog_drops", "time_squeeze", "wakeup_ipis", "samples")


def _combine(runs: list[dict]) -> dict:
    """Median of each rate and percentile over the rounds, sum of each count; ``runs`` kept."""
    out: dict = {"runs": runs}
    for key in _MEDIAN:
        if key in runs[0]:
            out[key] = statistics.median(r[key] for r in runs)
    for key in _SUM:
        if key in runs[0]:
            out[key] = sum(r[key] for r in runs)
    return out


def measure_loaded(
    replica: Replica,
    same: tuple[str, str],
    cross: tuple[str, str],
    background: tuple[str, str],
    *,
    load: float = 0.5,
    repeats: int = 3,
    duration_s: float = 2.0,
) -> dict:
    """Take the loaded set: idle probes, saturations, the probe under load, an overload.

    Every measurement is taken once per round, ``repeats`` rounds, so a slow
    drift of the shared machine hits them alike; each figure is the median of
    its rounds (counts are summed).

    Parameters
    ----------
    replica : Replica
        A running replica (two CPUs or more).
    same, cross : (str, str)
        Same-node and cross-node pod pairs (probe and flooded flows).
    background : (str, str)
        The background flow's pods (namespaces apart from ``same``'s).
    load : float, default 0.5
        Background rate as a fraction of the background path's saturation rate
        (measured in the first round).
    repeats : int, default 3
        Rounds.
    duration_s : float, default 2.0
        Length of each run, seconds.

    Returns
    -------
    dict
        ``idle`` ``{"same"|"cross": {payload: result}}``, ``saturation`` (same
        shape, sender and receiver on CPUs 0 and 1), ``overload`` (same-node 64 B
        flood, both ends on CPU 0 at normal priority), ``loaded``
        ``{"shared"|"separate": result}`` (probe on CPU 0, background on CPU 0
        or 1) and ``bg_pps`` offered; each result as :func:`_combine`.
    """
    sat = partial(saturation, replica, duration_s=duration_s)
    rtt = partial(loaded_rtt, replica, duration_s=duration_s)
    bg_pps = load * sat(*background, 64)["delivered_pps"]
    jobs = {("overload",): partial(sat, *same, 64, cpus=(0, 0), realtime=False)}
    for name, pair in (("same", same), ("cross", cross)):
        for n in (64, 1400):
            jobs["idle", name, n] = partial(rtt, pair, None, 0, size_bytes=n)
            jobs["saturation", name, n] = partial(sat, *pair, n)
    for place, cpu in (("shared", 0), ("separate", 1)):
        jobs["loaded", place] = partial(rtt, same, background, bg_pps, bg_cpu=cpu)
    out: dict = {"bg_pps": bg_pps, "idle": {}, "saturation": {}, "loaded": {}}
    for key, got in in_rounds(jobs, repeats).items():
        *where, last = key
        target = out
        for part in where:
            target = target.setdefault(part, {})
        target[last] = _combine(got)
    return out
