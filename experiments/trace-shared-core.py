"""Trace what the scheduler does when a flooding sender and its receiver share a core.

Root only (it builds the article's replica under the prefix ``pnt-`` and records
the kernel's ``sched:sched_switch`` events on CPU 0 through tracefs). For each
payload it runs the shared-core overload of ``podnetsim testbed load`` (a
same-node UDP flood ``client -> web``, both ends on CPU 0 at normal priority,
:func:`sim.testbed.load.saturation` with ``cpus=(0, 0)``), then prints how long
the sender and the receiver ran each time they got the core, and the share of
the sender's time spent in runs of a millisecond or more (while its receiver
waits and the socket buffer fills). Everything it creates is removed afterwards:
the replica, the trace buffer's contents and the events it enabled (tracefs is
unmounted again if it mounted it). Used for ``docs/testbed.md`` ("Round 4").

Usage: ``sudo .venv/bin/python experiments/trace-shared-core.py [--seconds 2]``
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
from collections import defaultdict
from pathlib import Path

import click
import numpy as np

from sim.testbed import netns
from sim.testbed.load import saturation
from sim.testbed.replica import build, load_replica

ROOT = Path(__file__).resolve().parent
ARTICLE = ROOT / "scenarios" / "article.toml"
PODS = [
    {"name": "web", "node": "node1"},
    {"name": "client", "node": "node1"},
    {"name": "api", "node": "node2"},
    {"name": "sink", "node": "node1"},
]
PREFIX = "pnt-"
TRACING = Path("/sys/kernel/tracing")
SWITCH = re.compile(
    r"\s(\d+\.\d+): sched_switch: prev_comm=(\S+) prev_pid=(\d+) .*?prev_state=(\S+) "
    r"==> next_comm=\S+ next_pid=(\d+)"
)
BINS_US = (0, 20, 100, 1000, 2000, 3000, 4000, 6000, 1e9)


def _write(name: str, value: str) -> None:
    (TRACING / name).write_text(value)


def runs_us(trace: str) -> dict[tuple[str, str], np.ndarray]:
    """Each task's run lengths on the traced CPU, us, by (command, state it left in)."""
    events = [m.groups() for m in map(SWITCH.search, trace.splitlines()) if m]
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for (t0, *_, nxt), (t1, comm, pid, state, _) in zip(events, events[1:], strict=False):
        if pid == nxt:
            out[(f"{comm}-{pid}", state)].append((float(t1) - float(t0)) * 1e6)
    return {k: np.array(v) for k, v in out.items()}


def report(payload: int, flood: dict, runs: dict) -> None:
    """Print the flood's figures and the two sockperf tasks' run lengths."""
    lost = flood["rcvbuf_drops"] / max(flood["delivered"] + flood["rcvbuf_drops"], 1)
    click.echo(f"\n{payload} B: sent {flood['sent_pps']:.0f}/s, delivered "
          f"{flood['delivered_pps']:.0f}/s, lost at the socket buffer {lost:.1%}")  # fmt: skip
    mine = {k: v for k, v in runs.items() if k[0].startswith("sockperf") and v.size > 100}
    for (task, state), v in sorted(mine.items(), key=lambda kv: -kv[1].sum()):
        p50, p90 = np.percentile(v, [50, 90])
        long = v[v >= 1000].sum() / v.sum()
        click.echo(f"  {task} left in {state}: {v.size} runs, p50 {p50:.1f} us, p90 {p90:.1f} us, "
              f"{(v >= 1000).sum()} runs >= 1 ms holding {long:.1%} of its time")  # fmt: skip
        hist, _ = np.histogram(v, bins=BINS_US)
        by_length = dict(zip(BINS_US[:-1], hist.tolist(), strict=True))
        click.echo(f"    runs by length (us, from): {by_length}")


class _Parser(argparse.ArgumentParser):
    """Arguments whose errors are one line and exit 2."""

    def error(self, message: str) -> None:
        """Say what is wrong and how to call it, in one line; exit 2."""
        click.echo(f"trace-shared-core: {message}. Fix: [--seconds 1-10]", err=True)
        raise SystemExit(2)


def _terminated(signum: int, frame) -> None:
    """SIGTERM: leave through ``main``'s clean-up, exit 143."""
    raise SystemExit(143)


def main() -> int:
    """Trace the shared-core flood for 64 B and 1400 B payloads; 0 on success, 130 on Ctrl-C."""
    ap = _Parser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="length of each flood (1-10 s)")
    args = ap.parse_args()
    if os.geteuid() != 0 or not 1.0 <= args.seconds <= 10.0:
        click.echo("run as root, with --seconds from 1 to 10", err=True)
        return 2
    signal.signal(signal.SIGTERM, _terminated)  # clean up as on Ctrl-C, then exit 143
    mounted = not (TRACING / "trace").exists()
    if mounted:
        subprocess.run(["mount", "-t", "tracefs", "nodev", str(TRACING)], check=True)
    netns.down(PREFIX)
    replica = load_replica(ARTICLE, {"pods": PODS, "flows": []}, prefix=PREFIX)
    try:
        build(replica)
        for payload in (64, 1400):
            _write("tracing_on", "0")
            _write("trace", "")
            _write("buffer_size_kb", "65536")
            _write("tracing_cpumask", "1")
            _write("set_event", "sched:sched_switch")
            _write("tracing_on", "1")
            flood = saturation(replica, "client", "web", payload, cpus=(0, 0), realtime=False,
                               duration_s=args.seconds)  # fmt: skip
            _write("tracing_on", "0")
            report(payload, flood, runs_us((TRACING / "trace").read_text()))
    except KeyboardInterrupt:
        click.echo("trace-shared-core: interrupted; the replica and trace removed", err=True)
        return 130
    finally:
        _write("tracing_on", "0")
        _write("set_event", "")
        _write("trace", "")
        netns.down(PREFIX)
        if mounted:
            subprocess.run(["umount", str(TRACING)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
