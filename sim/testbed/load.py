"""Loaded measurements on a running replica: saturation, a probe under load, drops.

* :func:`saturation`: one ``sockperf throughput`` sender (``sockperf tp``, no rate
  limit: as fast as its ``sendto`` returns) and one ``sockperf server``, each
  pinned to its own CPU with ``taskset``, for ``duration_s``. The sent rate is the
  client's; the delivered rate is the receiving namespace's ``UdpInDatagrams``.
* :func:`loaded_rtt`: a ``sockperf ping-pong`` probe (blocking sockets, both ends
  on ``probe_cpu``) while a background ``sockperf tp --mps`` flow offers a fixed
  rate, its two ends on ``bg_cpu``: the same core as the probe, or another.
* Drops, located by kernel counters (deltas over the run): column 2 of
  ``/proc/net/softnet_stat`` (per-CPU backlog full, ``netdev_max_backlog``,
  kernel ``Documentation/admin-guide/sysctl/net.rst``), column 3 (``time_squeeze``)
  and the receiving namespace's ``UdpRcvbufErrors`` (socket receive buffer full,
  ``nstat(8)``; UDP MIB counters are per network namespace).

Scheduling: the pods' threads run at real-time priority (``chrt --fifo``), so the
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
import subprocess
import time
from functools import partial

from sim.testbed.errors import ProbeError, one_line
from sim.testbed.render import Replica
from sim.testbed.timing import RT_PRIORITY, parse_sockperf

__all__ = ["counters", "loaded_rtt", "measure_loaded", "saturation", "softnet"]

PROBE_PORT = 11111
"""UDP port of the probe's sockperf server."""

LOAD_PORT = 11112
"""UDP port of the background (or saturating) flow's sockperf server."""

_RATE = "Message Rate is"


def softnet() -> list[tuple[int, int, int]]:
    """Per CPU: (processed, dropped [backlog full], time_squeeze), ``/proc/net/softnet_stat``."""
    with open("/proc/net/softnet_stat", encoding="ascii") as fh:
        rows = [line.split() for line in fh if line.strip()]
    return [(int(r[0], 16), int(r[1], 16), int(r[2], 16)) for r in rows]


def counters(ns: str) -> dict[str, int]:
    """Absolute SNMP counters of namespace ``ns`` (``nstat -asz``: no history file)."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "nstat", "-asz", "--json"],
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    ).stdout
    data = json.loads(out or "{}")
    return {k: int(v) for k, v in data.get("kernel", data).items()}


def _argv(ns: str, cpu: int, args: list[str], realtime: bool) -> list[str]:
    rt = ["chrt", "--fifo", str(RT_PRIORITY)] if realtime else []
    return ["ip", "netns", "exec", ns, *rt, "taskset", "-c", str(cpu), "sockperf", *args]


def _server(ns: str, cpu: int, addr: str, port: int, realtime: bool) -> subprocess.Popen:
    """Start a sockperf server on ``addr:port`` in ``ns``; return once its socket is bound."""
    srv = subprocess.Popen(
        _argv(ns, cpu, ["server", "-i", addr, "-p", str(port)], realtime),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline and srv.poll() is None:
        probe = ["ip", "netns", "exec", ns, "ss", "-Huln", f"sport = :{port}"]
        if subprocess.run(probe, capture_output=True, text=True, check=False).stdout.strip():
            return srv
        time.sleep(0.02)
    srv.kill()
    out = srv.communicate(timeout=10)[0]
    raise ProbeError(f"sockperf server in {ns} did not start: {one_line(out)[-300:] or 'timeout'}")


def _stop(proc: subprocess.Popen) -> str:
    if proc.poll() is None:
        proc.kill()
    return proc.communicate(timeout=10)[0] or ""


def _sent_pps(text: str) -> float:
    for line in text.splitlines():
        if _RATE in line:
            return float(line.split(_RATE, 1)[1].split("[", 1)[0])
    raise ProbeError(f"sockperf throughput reported no rate: {one_line(text)[-300:]}")


def _drops(ns: str, before: tuple, after_ns: dict, after_sn: list) -> dict:
    """Counter deltas: delivered datagrams, socket-buffer and backlog drops, squeezes."""
    ns0, sn0 = before
    return {
        "delivered": after_ns.get("UdpInDatagrams", 0) - ns0.get("UdpInDatagrams", 0),
        "rcvbuf_drops": after_ns.get("UdpRcvbufErrors", 0) - ns0.get("UdpRcvbufErrors", 0),
        "backlog_drops": sum(a[1] - b[1] for a, b in zip(after_sn, sn0, strict=True)),
        "time_squeeze": sum(a[2] - b[2] for a, b in zip(after_sn, sn0, strict=True)),
    }


def saturation(
    replica: Replica,
    src: str,
    dst: str,
    size_bytes: int,
    *,
    cpus: tuple[int, int] = (0, 1),
    duration_s: float = 2.0,
    realtime: bool = True,
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

    Returns
    -------
    dict
        ``sent_pps``, ``delivered_pps`` (packets/s), ``delivered``,
        ``rcvbuf_drops``, ``backlog_drops``, ``time_squeeze`` (counts over the run)
        and ``loadavg_1min``.
    """
    addr, dns = str(replica.address(dst)), replica.namespace(dst)
    srv = _server(dns, cpus[1], addr, LOAD_PORT, realtime)
    try:
        before = (counters(dns), softnet())
        args = ["tp", "-i", addr, "-p", str(LOAD_PORT), "-t", f"{duration_s:g}"]
        args += ["-m", str(size_bytes)]
        client = subprocess.run(
            _argv(replica.namespace(src), cpus[0], args, realtime),
            capture_output=True,
            text=True,
            timeout=duration_s + 30,
            check=False,
        )
        time.sleep(0.2)  # let the receiver drain its socket
        out = _drops(dns, before, counters(dns), softnet())
    finally:
        _stop(srv)
    out["sent_pps"] = _sent_pps(client.stdout + client.stderr)
    out["delivered_pps"] = out["delivered"] / duration_s
    out["loadavg_1min"] = round(os.getloadavg()[0], 2)
    return out


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
    procs: list[subprocess.Popen] = []
    out: dict = {}
    loaded = background is not None and bg_pps > 0
    try:
        procs.append(_server(dns, probe_cpu, addr, PROBE_PORT, realtime))
        if loaded:
            bg, bg_ns, before = _start_background(
                replica, background, bg_pps, bg_cpu, size_bytes, duration_s, procs
            )
        args = ["ping-pong", "-i", addr, "-p", str(PROBE_PORT), "-t", f"{duration_s:g}"]
        args += ["--full-rtt", "-m", str(size_bytes)]
        client = subprocess.run(
            _argv(replica.namespace(probe[0]), probe_cpu, args, realtime),
            capture_output=True,
            text=True,
            timeout=duration_s + 30,
            check=False,
        )
        if loaded:
            bg.wait(timeout=duration_s + 30)
            time.sleep(0.2)
            out = _drops(bg_ns, before, counters(bg_ns), softnet())
            out["bg_sent_pps"] = _sent_pps(_stop(bg))
            out["bg_delivered_pps"] = out["delivered"] / (duration_s + 1)
    finally:
        for p in procs:
            _stop(p)
    res = parse_sockperf(client.stdout + client.stderr)
    if client.returncode != 0 or res["p50_us"] is None:
        tail = one_line(client.stderr or client.stdout)[-300:]
        raise ProbeError(f"sockperf {probe[0]} -> {probe[1]} failed: {tail}")
    return {**res, **out, "realtime": realtime, "loadavg_1min": round(os.getloadavg()[0], 2)}


def _start_background(
    replica: Replica,
    background: tuple[str, str],
    bg_pps: float,
    bg_cpu: int,
    size_bytes: int,
    duration_s: float,
    procs: list[subprocess.Popen],
) -> tuple[subprocess.Popen, str, tuple]:
    """Start the background flow of :func:`loaded_rtt` (its processes join ``procs``).

    Returns
    -------
    tuple
        The sender's process, the receiver's namespace, and the counters before.
    """
    bg_addr, bg_ns = str(replica.address(background[1])), replica.namespace(background[1])
    procs.append(_server(bg_ns, bg_cpu, bg_addr, LOAD_PORT, False))
    before = (counters(bg_ns), softnet())
    args = ["tp", "-i", bg_addr, "-p", str(LOAD_PORT), "-t", f"{duration_s + 1:g}"]
    args += ["-m", str(size_bytes), f"--mps={round(bg_pps)}"]
    bg = subprocess.Popen(
        _argv(replica.namespace(background[0]), bg_cpu, args, False),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    procs.append(bg)
    time.sleep(0.3)  # the background is running before the probe starts
    return bg, bg_ns, before


_MEDIAN = ("p50_us", "p99_us", "sent_pps", "delivered_pps", "bg_delivered_pps")
_SUM = ("delivered", "rcvbuf_drops", "backlog_drops", "time_squeeze", "samples")


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
    bg_pps = load * saturation(replica, *background, 64, duration_s=duration_s)["delivered_pps"]
    jobs = {
        ("overload",): partial(
            saturation, replica, *same, 64, cpus=(0, 0), duration_s=duration_s, realtime=False
        )
    }
    for name, pair in (("same", same), ("cross", cross)):
        for n in (64, 1400):
            jobs[("idle", name, n)] = partial(
                loaded_rtt, replica, pair, None, 0, size_bytes=n, duration_s=duration_s
            )
            jobs[("saturation", name, n)] = partial(
                saturation, replica, *pair, n, duration_s=duration_s
            )
    for place, cpu in (("shared", 0), ("separate", 1)):
        jobs[("loaded", place)] = partial(
            loaded_rtt, replica, same, background, bg_pps, bg_cpu=cpu, duration_s=duration_s
        )
    runs: dict[tuple, list[dict]] = {key: [] for key in jobs}
    for _ in range(repeats):
        for key, job in jobs.items():
            runs[key].append(job())
    out: dict = {"bg_pps": bg_pps, "idle": {}, "saturation": {}, "loaded": {}}
    for key, got in runs.items():
        *where, last = key
        target = out
        for part in where:
            target = target.setdefault(part, {})
        target[last] = _combine(got)
    return out
