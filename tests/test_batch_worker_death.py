"""A local worker process killed mid-batch: its runs are retried, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = ROOT / "tests" / "data" / "batch" / "slow12.toml"
PODNETSIM = [sys.executable, "-m", "sim.cli.main"]


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return [int(x) for x in out.stdout.split()]


@pytest.mark.skipif(not Path("/usr/bin/pgrep").exists(), reason="needs pgrep (procps)")
def test_killed_worker_is_retried_and_batch_equals_serial(tmp_path: Path):
    out = tmp_path / "jobs2"
    proc = subprocess.Popen(
        [*PODNETSIM, "run", str(EXPERIMENT), "--jobs", "2", "--out", str(out), "--no-plots"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while len(list((out / "runs").glob("*.json"))) < 2:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "batch did not start"
        time.sleep(0.05)
    # the pool's workers are the forkserver's children; one may be ending (a new one
    # being forked) between pgrep and the kill: look again
    killed = False
    while not killed:
        assert time.monotonic() < deadline, "no worker process found"
        workers = [g for c in _children(proc.pid) for g in _children(c)]
        try:
            os.kill(workers[0], signal.SIGKILL)
            killed = True
        except (IndexError, ProcessLookupError):
            time.sleep(0.01)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "12 runs done" in stdout
    assert "Traceback" not in stderr
    assert len(list((out / "runs").glob("*.json"))) == 12
    serial = tmp_path / "jobs1"
    subprocess.run(
        [*PODNETSIM, "run", str(EXPERIMENT), "--jobs", "1", "--out", str(serial), "--no-plots"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    assert (out / "runs.csv").read_bytes() == (serial / "runs.csv").read_bytes()
