"""Results directories: a killed batch resumes without redoing or losing finished runs,
and nothing in DIR is overwritten without --resume or --force."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.batch import run_experiment
from sim.cli.main import cli

DATA = Path(__file__).resolve().parent / "data" / "batch"
SMALL = DATA / "small.toml"
OTHER = DATA / "other.toml"
SLOW12 = DATA / "slow12.toml"
_SCRIPT = Path(sys.executable).with_name("podnetsim")
PODNETSIM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sim.cli.main"]


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under ``root``: relative path -> (bytes, mtime_ns)."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def run_files(out: Path) -> dict[str, tuple[bytes, int]]:
    return {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in (out / "runs").glob("*.json")}


def counts(stdout: str) -> tuple[int, int, int]:
    m = re.search(r"(\d+) runs done, (\d+) reused, (\d+) failed", stdout)
    assert m, stdout
    return int(m[1]), int(m[2]), int(m[3])


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("error: ")
    return lines[0]


# -- kill and resume ------------------------------------------------------------------


def test_sigkill_then_resume_recomputes_nothing_and_matches_uninterrupted(tmp_path) -> None:
    out = tmp_path / "killed"
    runs = out / "runs"
    total = 12
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(
            [*PODNETSIM, "run", str(SLOW12), "--jobs", "1", "--out", str(out), "--no-plots"],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: kill it and any children
        )
        try:
            deadline = time.monotonic() + 120
            while True:
                n = len(list(runs.glob("*.json"))) if runs.is_dir() else 0
                if n >= 2:
                    break
                assert proc.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline, "no run finished within 120 s"
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    done = run_files(out)
    assert 2 <= len(done) < total, sorted(done)
    assert not (out / "runs.csv").exists()

    res = subprocess.run(
        [*PODNETSIM, "run", str(SLOW12), "--jobs", "1", "--out", str(out), "--no-plots"]
        + ["--resume"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    assert counts(res.stdout) == (total - len(done), len(done), 0)
    after = run_files(out)
    assert len(after) == total
    for name, (data, mtime) in done.items():  # none lost, none recomputed
        assert after[name][0] == data, name
        assert after[name][1] == mtime, name

    ref = tmp_path / "reference"
    rep = run_experiment(SLOW12, ref, jobs=1, plots=False)
    assert rep.ran == total and not rep.failures
    assert (out / "runs.csv").read_bytes() == (ref / "runs.csv").read_bytes()
    assert (out / "summary.csv").read_bytes() == (ref / "summary.csv").read_bytes()


def test_resume_runs_only_missing_runs(tmp_path) -> None:
    """Delete some finished runs: --resume redoes exactly those, touching no others."""
    out = tmp_path / "out"
    run_experiment(SMALL, out, jobs=1, plots=False)
    full = (out / "runs.csv").read_bytes()
    before = run_files(out)
    gone = ["c000-r01.json", "c003-r02.json"]
    for name in gone:
        (out / "runs" / name).unlink()
    res = invoke("run", str(SMALL), "--out", str(out), "--resume", "--no-plots")
    assert res.exit_code == 0, res.output
    assert counts(res.stdout) == (2, len(before) - 2, 0)
    after = run_files(out)
    assert set(after) == set(before)
    for name in before:
        if name not in gone:
            assert after[name] == before[name], name
    assert (out / "runs.csv").read_bytes() == full


# -- nothing overwritten without --resume/--force ---------------------------------------


@pytest.fixture
def finished(tmp_path) -> Path:
    out = tmp_path / "res"
    rep = run_experiment(SMALL, out, jobs=1, plots=False)
    assert rep.ran == 12 and not rep.failures
    return out


def test_second_run_into_same_dir_is_refused(finished) -> None:
    before = snapshot(finished)
    proc = subprocess.run(
        [*PODNETSIM, "run", str(SMALL), "--out", str(finished), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert "--resume" in line and "--force" in line
    assert str(finished) in line
    assert snapshot(finished) == before


@pytest.mark.parametrize("extra", [[], ["--quick"], ["--jobs", "2"]])
def test_any_non_empty_dir_is_refused(tmp_path, extra: list[str]) -> None:
    d = tmp_path / "d"
    d.mkdir()
    (d / "notes.txt").write_text("keep me")
    res = invoke("run", str(SMALL), "--out", str(d), "--no-plots", *extra)
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert "--resume" in line and "--force" in line
    assert [p.name for p in d.iterdir()] == ["notes.txt"]
    assert (d / "notes.txt").read_text() == "keep me"


def test_force_replaces(finished) -> None:
    """--force rewrites podnetsim's files and leaves every other file alone."""
    before = run_files(finished)
    (finished / "stale.txt").write_text("old")
    (finished / "runs" / "notes.txt").write_text("mine")
    res = invoke("run", str(SMALL), "--out", str(finished), "--force", "--no-plots")
    assert res.exit_code == 0, res.output
    assert counts(res.stdout) == (12, 0, 0)
    assert (finished / "stale.txt").read_text() == "old"
    assert (finished / "runs" / "notes.txt").read_text() == "mine"
    after = run_files(finished)
    assert set(after) == set(before)
    for name in before:
        assert after[name][0] == before[name][0]  # same spec, same result
        assert after[name][1] != before[name][1]  # but written again


def test_resume_of_finished_batch_reuses_everything(finished) -> None:
    before = run_files(finished)
    res = invoke("run", str(SMALL), "--out", str(finished), "--resume", "--no-plots")
    assert res.exit_code == 0, res.output
    assert counts(res.stdout) == (0, 12, 0)
    assert run_files(finished) == before


def test_resume_with_other_experiment_is_refused(finished) -> None:
    before = snapshot(finished)
    res = invoke("run", str(OTHER), "--out", str(finished), "--resume", "--no-plots")
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert "different experiment" in line and "--force" in line
    assert snapshot(finished) == before


def test_resume_with_quick_mismatch_is_refused(tmp_path, finished) -> None:
    before = snapshot(finished)
    res = invoke("run", str(SMALL), "--out", str(finished), "--resume", "--quick", "--no-plots")
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert "--quick" in line
    assert snapshot(finished) == before
    # and the other way round: a --quick batch resumed without --quick
    quick = tmp_path / "quick"
    run_experiment(SMALL, quick, quick=True, plots=False)
    before = snapshot(quick)
    res = invoke("run", str(SMALL), "--out", str(quick), "--resume", "--no-plots")
    assert res.exit_code == 2
    assert "--quick" in one_error_line(res.stderr)
    assert snapshot(quick) == before


def test_resume_and_force_together_are_refused(finished) -> None:
    before = snapshot(finished)
    res = invoke("run", str(SMALL), "--out", str(finished), "--resume", "--force")
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert "--resume" in line and "--force" in line
    assert snapshot(finished) == before
