"""Results directories are safe (issue 9): --force only removes what podnetsim wrote
in a directory it created, a live batch locks its directory, every file is written
atomically (a read-only or full disk is one line, never a partial file), and a resume
sets damaged run files aside and runs them again."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sim.batch import run_experiment
from sim.batch.files import LOCK, MARKER
from sim.cli.main import cli

DATA = Path(__file__).resolve().parent / "data" / "batch"
SMALL = DATA / "small.toml"
SLOW12 = DATA / "slow12.toml"
_SCRIPT = Path(sys.executable).with_name("podnetsim")
PODNETSIM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sim.cli.main"]
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def error_line(stderr: str) -> str:
    """The one error line (progress lines may precede it); no traceback."""
    assert "Traceback" not in stderr, stderr
    errors = [ln for ln in stderr.splitlines() if ln.startswith("error: ")]
    assert len(errors) == 1, stderr
    return errors[0]


def no_temporaries(root: Path) -> None:
    left = [p for p in root.rglob("*") if p.name.endswith(".tmp")]
    assert not left, left


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted batch of SMALL."""
    out = tmp_path_factory.mktemp("ref") / "res"
    rep = run_experiment(SMALL, out, plots=False)
    assert rep.ran == 12 and not rep.failures
    return out


@pytest.fixture
def finished(tmp_path, reference) -> Path:
    out = tmp_path / "res"
    shutil.copytree(reference, out)
    return out


# -- --force only removes what podnetsim wrote, in a directory podnetsim created --------


@pytest.mark.parametrize("flag", ["--force", "--resume"])
def test_unrelated_directory_with_runs_is_never_touched(tmp_path, flag: str) -> None:
    d = tmp_path / "mine"
    (d / "runs").mkdir(parents=True)
    (d / "runs" / "c000-r00.json").write_text("my own file")
    (d / "manifest.json").write_text("{}")
    (d / "thesis.tex").write_text("years of work")
    before = snapshot(d)
    res = invoke("run", str(SMALL), "--out", str(d), flag, "--no-plots")
    assert res.exit_code == 2, res.output
    line = error_line(res.stderr)
    assert str(d) in line and "not created by podnetsim" in line
    assert snapshot(d) == before
    assert sorted(p.name for p in d.iterdir()) == ["manifest.json", "runs", "thesis.tex"]


def test_results_written_before_the_marker_are_still_ours(finished) -> None:
    """A podnetsim manifest.json (results from before the marker) is enough."""
    (finished / MARKER).unlink()
    (finished / "notes.txt").write_text("mine")
    res = invoke("run", str(SMALL), "--out", str(finished), "--force", "--no-plots")
    assert res.exit_code == 0, res.output
    assert (finished / MARKER).is_file()
    assert (finished / "notes.txt").read_text() == "mine"


def test_default_out_is_results_slash_name(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = invoke("run", str(SMALL), "--no-plots", "--quick")
    assert res.exit_code == 0, res.output
    assert (tmp_path / "results" / "small" / MARKER).is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


# -- lock --------------------------------------------------------------------------------


def test_second_writer_and_force_during_a_live_run_exit_2_naming_the_holder(tmp_path) -> None:
    out = tmp_path / "live"
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(
            [*PODNETSIM, "run", str(SLOW12), "--out", str(out), "--no-plots"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while not (out / "runs").is_dir() or not list((out / "runs").glob("*.json")):
                assert proc.poll() is None, (tmp_path / "first.log").read_text()
                assert time.monotonic() < deadline
                time.sleep(0.02)
            for extra in ([], ["--force"], ["--resume"]):
                res = invoke("run", str(SLOW12), "--out", str(out), "--no-plots", *extra)
                assert res.exit_code == 2, (extra, res.output)
                line = error_line(res.stderr)
                assert f"pid {proc.pid} on host {socket.gethostname()}" in line, line
                assert "being written by another podnetsim batch" in line
            assert proc.poll() is None  # still running: nothing was taken from it
        finally:
            rc = proc.wait(timeout=300)
    assert rc == 0, (tmp_path / "first.log").read_text()
    assert len(pd.read_csv(out / "runs.csv")) == 12
    assert not (out / LOCK).exists()


def test_stale_lock_of_a_dead_batch_is_taken_over_with_a_warning(finished) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    holder = {"pid": dead.pid, "host": socket.gethostname()}
    (finished / LOCK).write_text(json.dumps(holder))
    res = invoke("run", str(SMALL), "--out", str(finished), "--resume", "--no-plots")
    assert res.exit_code == 0, res.output
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1, res.stderr
    assert "taking over the lock" in warnings[0] and f"pid {dead.pid}" in warnings[0]
    assert not (finished / LOCK).exists()


# -- atomic writes: read-only and full disks ---------------------------------------------


@pytest.fixture
def mount_point(tmp_path):
    """``mount(size)``: a fresh tmpfs of that size (root only), unmounted afterwards."""
    mounted: list[Path] = []

    def mount(size: str, options: str = "") -> Path:
        d = tmp_path / f"mnt{len(mounted)}"
        d.mkdir()
        opts = f"size={size}" + (f",{options}" if options else "")
        subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(d)], check=True)
        mounted.append(d)
        return d

    yield mount
    for d in mounted:
        subprocess.run(["umount", str(d)], check=False)


needs_root = pytest.mark.skipif(not IS_ROOT, reason="mounting a tmpfs needs root")


@needs_root
@pytest.mark.parametrize("size", ["64k", "160k"])  # full during the runs / at the tables
def test_full_disk_is_one_line_and_no_partial_file(mount_point, size: str) -> None:
    out = mount_point(size) / "res"
    proc = subprocess.run(
        [*PODNETSIM, "run", str(SMALL), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2, proc.stderr
    line = error_line(proc.stderr)
    assert "No space left on device" in line and f"cannot write '{out}" in line
    no_temporaries(out)
    for p in (out / "runs").glob("*.json"):  # every stored run is whole
        assert json.loads(p.read_text())["flows"][0]["run_id"] == p.stem
    if (out / "runs.parquet").exists():
        assert len(pd.read_parquet(out / "runs.parquet")) == 12
    assert not (out / LOCK).exists()


@needs_root
def test_full_disk_then_resume_elsewhere_matches(mount_point, reference) -> None:
    """The runs kept on a full disk are sound: copied out, a resume finishes the batch."""
    out = mount_point("64k") / "res"
    proc = subprocess.run(
        [*PODNETSIM, "run", str(SMALL), "--out", str(out), "--no-plots"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 2
    kept = list((out / "runs").glob("*.json"))
    assert 0 < len(kept) < 12
    moved = out.parent.parent / "moved"
    shutil.copytree(out, moved)
    res = invoke("run", str(SMALL), "--out", str(moved), "--resume", "--no-plots")
    assert res.exit_code == 0, res.output
    assert (moved / "runs.csv").read_bytes() == (reference / "runs.csv").read_bytes()


@needs_root
@pytest.mark.parametrize("extra", [["--resume"], ["--force"], []])
def test_read_only_out_is_one_line(mount_point, reference, extra: list[str]) -> None:
    mnt = mount_point("1m")
    shutil.copytree(reference, mnt / "res")
    subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
    before = snapshot(mnt)
    for out in (mnt / "res", mnt / "new"):
        res = invoke("run", str(SMALL), "--out", str(out), "--no-plots", *extra)
        assert res.exit_code == 2, res.output
        line = error_line(res.stderr)
        assert "Read-only file system" in line and str(out) in line, line
    assert snapshot(mnt) == before


def test_read_only_plots_dir_is_one_line(finished) -> None:
    """``plot`` into a directory it cannot write: one line (a file where plots/ goes)."""
    (finished / "plots").write_text("not a directory")
    res = invoke("plot", str(finished))
    assert res.exit_code == 2, res.output
    line = error_line(res.stderr)
    assert "cannot write" in line and "plots" in line


# -- resume on damaged run files ----------------------------------------------------------

VICTIM = "c001-r01.json"


def _good(p: Path) -> dict:
    return json.loads(p.read_text())


def _row_edit(table: str = "flows", **changes):
    def damage(p: Path) -> None:
        rec = _good(p)
        rec[table][0].update(changes)
        p.write_text(json.dumps(rec))

    return damage


def _without(key: str):
    def damage(p: Path) -> None:
        rec = _good(p)
        rec.pop(key)
        p.write_text(json.dumps(rec))

    return damage


def _as_directory(p: Path) -> None:
    p.unlink()
    p.mkdir()
    (p / "inside.txt").write_text("x")


DAMAGES = {
    "a-list": lambda p: p.write_text("[1, 2]"),
    "null": lambda p: p.write_text("null"),
    "invalid-utf8": lambda p: p.write_bytes(b'{"run_id": "\xff\xfe"}'),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[:100]),
    "empty": lambda p: p.write_bytes(b""),
    "no-flows": _without("flows"),
    "no-stations": _without("stations"),
    "flows-empty": lambda p: p.write_text(json.dumps({**_good(p), "flows": []})),
    "flow-row-empty": lambda p: p.write_text(json.dumps({**_good(p), "flows": [{}]})),
    "string-metric": _row_edit(latency_mean_us="fast"),
    "boolean-count": _row_edit(sent=True),
    "string-quantile": _row_edit(**{"cdf.q050.0": "x"}),
    "string-station": _row_edit("stations", utilization="x"),
    "station-kind-missing": lambda p: _without_in("stations", "station_kind")(p),
    "older-without-flow-stations": _without("flow_stations"),
    "string-flow-station": _row_edit("flow_stations", sojourn_mean_us="slow"),
    "flow-station-hop-missing": lambda p: _without_in("flow_stations", "hop")(p),
    "wrong-flow-station-seed": lambda p: _row_edit(
        "flow_stations", seed=_good(p)["flows"][0]["seed"] + 1
    )(p),
    "wrong-seed": lambda p: _row_edit(seed=_good(p)["flows"][0]["seed"] + 1)(p),
    "wrong-station-seed": lambda p: _row_edit("stations", seed=_good(p)["flows"][0]["seed"] + 1)(
        p
    ),
    "wrong-parameter": _row_edit(placement="moon"),
    "other-run-inside": lambda p: p.write_text(
        (p.parent / "c000-r00.json").read_text(encoding="utf-8")
    ),
    "a-directory": _as_directory,
}


def _without_in(table: str, key: str):
    def damage(p: Path) -> None:
        rec = _good(p)
        rec[table][0].pop(key)
        p.write_text(json.dumps(rec))

    return damage


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_damaged_run_is_moved_aside_and_recomputed(finished, reference, case: str) -> None:
    victim = finished / "runs" / VICTIM
    DAMAGES[case](victim)
    damaged_bytes = snapshot(victim) if victim.is_dir() else victim.read_bytes()
    others = {p.name: p.read_bytes() for p in (finished / "runs").glob("c*.json") if p != victim}
    res = invoke("run", str(SMALL), "--out", str(finished), "--resume", "--no-plots")
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    assert "1 runs done, 11 reused, 0 failed" in res.stdout
    warnings = [ln for ln in res.stderr.splitlines() if ln.startswith("warning: ")]
    assert len(warnings) == 1, res.stderr
    assert str(victim) in warnings[0] and "damaged" in warnings[0]
    kept = finished / "runs" / "damaged" / VICTIM  # kept for inspection, never deleted
    assert (snapshot(kept) if kept.is_dir() else kept.read_bytes()) == damaged_bytes
    assert victim.read_bytes() == (reference / "runs" / VICTIM).read_bytes()
    for name, data in others.items():
        assert (finished / "runs" / name).read_bytes() == data
    assert (finished / "runs.csv").read_bytes() == (reference / "runs.csv").read_bytes()
    assert (finished / "summary.csv").read_bytes() == (reference / "summary.csv").read_bytes()
    for name in ("flow_stations.csv", "flow_stations_summary.csv"):
        assert (finished / name).read_bytes() == (reference / name).read_bytes()
    if case == "older-without-flow-stations":
        assert "older podnetsim (no flow_stations" in warnings[0]


def test_damaged_twice_keeps_both_copies(finished) -> None:
    victim = finished / "runs" / VICTIM
    for text in ("null", "[]"):
        victim.write_text(text)
        res = invoke("run", str(SMALL), "--out", str(finished), "--resume", "--no-plots")
        assert res.exit_code == 0, res.output
    damaged = finished / "runs" / "damaged"
    assert sorted(p.read_text() for p in damaged.iterdir()) == ["[]", "null"]


def test_runs_being_a_file_is_one_line(finished) -> None:
    shutil.rmtree(finished / "runs")
    (finished / "runs").write_text("oops")
    before = snapshot(finished)
    res = invoke("run", str(SMALL), "--out", str(finished), "--resume", "--no-plots")
    assert res.exit_code == 2, res.output
    line = error_line(res.stderr)
    assert str(finished / "runs") in line and "is a file" in line
    assert snapshot(finished) == before


def test_schema_names_every_column_of_a_real_row(reference) -> None:
    """The stored-run schema and the rows runs produce describe the same columns."""
    from sim.batch.schema import (
        COUNT_COLUMNS,
        ID_COLUMNS,
        METRIC_COLUMNS,
        NUMERIC_PREFIXES,
        STATION_FLOATS,
        STATION_INTS,
        STATION_TEXT,
        TEXT_COLUMNS,
        quantile_columns,
        read_stored_run,
    )

    rec, why = read_stored_run(reference / "runs" / VICTIM)
    assert why is None
    params = {"placement", "flows.probe.rate_gbps"}
    named = {*ID_COLUMNS, *COUNT_COLUMNS, *METRIC_COLUMNS, *TEXT_COLUMNS, *params}
    for row in rec["flows"]:
        rest = set(row) - named
        assert set(row) >= named
        assert rest and all(k.startswith(NUMERIC_PREFIXES) for k in rest), sorted(rest)
        assert set(quantile_columns()) <= rest
    station_named = {*ID_COLUMNS, *params, *STATION_TEXT, *STATION_INTS, *STATION_FLOATS}
    assert rec["stations"] and all(set(r) == station_named for r in rec["stations"])
