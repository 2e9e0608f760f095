"""SIGKILL, SIGTERM and SIGINT at random moments of ``run --jobs 2`` (issue 9).

Each trial starts a batch in its own session, sends one signal a seeded random delay
after the batch begins (its first progress line), and checks that

* SIGTERM (what ``timeout`` and CI send, to the batch process) and SIGINT (what a
  terminal's Ctrl-C sends, to the whole process group) stop the batch with exit
  status 143 / 130 and one line saying how many finished runs were kept (and that
  many are on disk), with no traceback from the batch or its workers;
* SIGKILL of the batch process leaves no worker behind;
* no process of the batch outlives it by more than 5 s;
* ``--resume`` then gives runs.csv and summary.csv byte-identical to an uninterrupted
  batch.

CI runs 2 trials per signal; ``PODNETSIM_SIGNAL_TRIALS=10`` runs the full 10 each.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from sim.batch import run_experiment

SLOW12 = Path(__file__).resolve().parent / "data" / "batch" / "slow12.toml"
_SCRIPT = Path(sys.executable).with_name("podnetsim")
PODNETSIM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sim.cli.main"]
TRIALS = int(os.environ.get("PODNETSIM_SIGNAL_TRIALS", "2"))
#: Latest moment of a signal after the batch begins, seconds (12 runs, then tables).
LATEST_S = 12.0
#: How long a process of the batch may outlive it (the issue's bound), seconds.
OUTLIVE_S = 5.0
EXIT = {signal.SIGTERM: 143, signal.SIGINT: 130, signal.SIGKILL: -signal.SIGKILL}
PROGRESS = re.compile(
    r"podnetsim run .*: \d+ runs, \d+ already done|\[\d+/\d+\] c\d+-r\d+ .* done \(\d+\.\d s\)"
)
INTERRUPTED = re.compile(
    r"interrupted by (SIGTERM|SIGINT): (\d+) finished runs kept in .*; run again with --resume .*"
)


def session_processes(sid: int) -> list[int]:
    """Live (non-zombie) processes of session ``sid``."""
    found = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            found.append(int(d.name))
    return found


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "res"
    rep = run_experiment(SLOW12, out, jobs=1, plots=False)
    assert rep.ran == 12 and not rep.failures
    return out


def _trial(tmp: Path, sig: signal.Signals, delay_s: float) -> dict:
    """One interrupted batch; returns what happened (checks the invariants)."""
    out = tmp / "res"
    cmd = [*PODNETSIM, "run", str(SLOW12), "--jobs", "2", "--out", str(out), "--no-plots"]
    with open(tmp / "err.log", "w") as err, open(tmp / "out.log", "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=err, start_new_session=True)
        try:
            started = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < started:
                if "runs, " in (tmp / "err.log").read_text():  # the batch has begun
                    break
                time.sleep(0.01)
            deadline = time.monotonic() + delay_s
            while time.monotonic() < deadline and proc.poll() is None:
                time.sleep(0.01)
            sent = proc.poll() is None
            if sent and sig == signal.SIGINT:
                os.killpg(proc.pid, sig)  # Ctrl-C: the whole foreground group
            elif sent:
                os.kill(proc.pid, sig)  # timeout(1), the OOM killer: the batch process
            t_sent = time.monotonic()
            rc = proc.wait(timeout=120)
            stop_s = time.monotonic() - t_sent
            left_deadline = time.monotonic() + OUTLIVE_S
            while session_processes(proc.pid) and time.monotonic() < left_deadline:
                time.sleep(0.05)
            left = session_processes(proc.pid)
        finally:
            if proc.poll() is None:
                proc.kill()
            with_leftovers = session_processes(proc.pid)
            if with_leftovers:
                os.killpg(proc.pid, signal.SIGKILL)
    assert not left, f"processes {left} outlived the batch by {OUTLIVE_S} s"
    stderr = (tmp / "err.log").read_text()
    stdout = (tmp / "out.log").read_text()
    assert "Traceback" not in stderr + stdout, stderr
    finished_first = rc == 0 and "12 runs done" in stdout
    if not finished_first:
        assert rc == EXIT[sig], (sig, rc, stderr)
    on_disk = len(list((out / "runs").glob("*.json"))) if (out / "runs").is_dir() else 0
    if sig != signal.SIGKILL and not finished_first:
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        other = [ln for ln in lines if not PROGRESS.fullmatch(ln)]
        assert len(other) == 1, stderr  # one line, nothing from the workers
        m = INTERRUPTED.fullmatch(other[0])
        assert m and m[1] == sig.name, other[0]
        assert int(m[2]) == on_disk, (other[0], on_disk)
    return {"sent": sent and not finished_first, "rc": rc, "stop_s": stop_s, "kept": on_disk}


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=str)
def test_signal_then_resume_matches_uninterrupted(tmp_path, reference, sig) -> None:
    rng = np.random.default_rng([2026, int(sig)])
    outcomes = []
    for i in range(TRIALS):
        delay_s = float(rng.uniform(0.0, LATEST_S))
        tmp = tmp_path / f"trial{i}"
        tmp.mkdir()
        outcome = _trial(tmp, sig, delay_s)
        res = subprocess.run(
            [*PODNETSIM, "run", str(SLOW12), "--jobs", "2", "--out", str(tmp / "res")]
            + ["--no-plots", "--resume"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert res.returncode == 0, res.stderr
        assert "Traceback" not in res.stderr
        m = re.search(r"(\d+) runs done, (\d+) reused, 0 failed", res.stdout)
        assert m and int(m[2]) == outcome["kept"], (res.stdout, outcome)  # none lost
        for name in ("runs.csv", "summary.csv"):
            assert (tmp / "res" / name).read_bytes() == (reference / name).read_bytes(), name
        outcomes.append({"delay_s": round(delay_s, 2), **outcome})
    sys.stderr.write(f"\n{sig.name} trials: {outcomes}\n")
