"""``podnetsim check`` of experiment files, ``run --dry-run`` and the run ceiling (issue 9)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from test_batch_errors import CASES, GOOD, check_message, one_error_line, write

from sim.batch import load_experiment
from sim.batch.expand import MAX_RUNS
from sim.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted((ROOT / "experiments").glob("*.toml"))


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_check_accepts_every_shipped_experiment(path: Path) -> None:
    res = invoke("check", str(path))
    assert res.exit_code == 0, res.output
    full, quick = load_experiment(path), load_experiment(path, quick=True)
    assert res.stdout.splitlines()[0].endswith(": valid")
    assert f"= {len(full.runs)} runs" in res.stdout
    assert f"--quick: {len(quick.configs)} configurations" in res.stdout


@pytest.mark.parametrize(
    "case",
    ["unknown-flow-field", "pod-pairs-too-many", "sweep-mixed-types", "plots-x-typo"]
    + ["name-parent-dir", "placement-unknown-endpoint", "replications-1e9"],
)
def test_check_reports_what_run_would(tmp_path, case: str) -> None:
    text, extra, field, words = CASES[case]
    path = write(tmp_path, text)
    res = invoke("check", str(path))
    assert res.exit_code == 2, res.output
    check_message(one_error_line(res.stderr), path, field, words)


def test_check_validates_the_quick_settings_too(tmp_path) -> None:
    text, _, field, words = CASES["empty-quick-sweep-list"]
    path = write(tmp_path, text)
    assert load_experiment(path)  # fine without --quick
    res = invoke("check", str(path))
    assert res.exit_code == 2
    check_message(one_error_line(res.stderr), path, field, words)


def test_check_blames_a_bad_set_on_experiments(tmp_path) -> None:
    """``--set`` applies to every run of an experiment (as ``run --set``); a bad one is
    one line naming --set."""
    res = invoke("check", str(write(tmp_path, GOOD)), "--set", "seed=1")
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert "--set" in line and "seed" in line
    res = invoke("check", str(write(tmp_path, GOOD)), "--set", "costs.veth.per_packet_us=-1")
    assert res.exit_code == 2
    assert "--set: costs.veth.per_packet_us = -1" in one_error_line(res.stderr)


def test_run_set_is_swept_is_refused(tmp_path) -> None:
    res = invoke("run", str(write(tmp_path, GOOD)), "--dry-run", "--set", "flows.probe.rate_gbps=3")
    assert res.exit_code == 2
    assert "is swept" in one_error_line(res.stderr)


def test_dry_run_lists_every_run_and_writes_nothing(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, GOOD)
    res = invoke("run", str(path), "--dry-run")
    assert res.exit_code == 0, res.output
    batch = load_experiment(path)
    lines = res.stdout.splitlines()
    assert len(lines) == len(batch.runs) + 1 == 9
    for line, spec in zip(lines, batch.runs, strict=False):
        assert line.startswith(spec.run_id + "  ")
        assert f"placement={spec.params['placement']}" in line
        assert f"flows.probe.rate_gbps={spec.params['flows.probe.rate_gbps']}" in line
        assert line.endswith(f"seed={spec.seed}")
    assert "8 runs: 4 configurations x 2 replications" in lines[-1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exp.toml"]  # no results/


def test_run_ceiling_and_the_flag_that_raises_it(tmp_path) -> None:
    path = write(tmp_path, GOOD)  # 4 configurations x 2 replications
    res = invoke("run", str(path), "--dry-run", "--max-runs", "7")
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert "= 8 runs, above the ceiling of 7" in line and "--max-runs 8" in line
    assert invoke("run", str(path), "--dry-run", "--max-runs", "8").exit_code == 0
    assert MAX_RUNS == 10_000  # documented in the README and `run --help`
    assert "10,000" in invoke("run", "--help").stdout
