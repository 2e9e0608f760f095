"""``podnetsim plot`` on a damaged results directory: one line naming the file, exit 2,
no traceback, no plot written (issue 9)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sim.batch import run_experiment
from sim.cli.main import cli

SMALL = Path(__file__).resolve().parent / "data" / "batch" / "small.toml"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "res"
    run_experiment(SMALL, out, plots=False)
    return out


def _manifest(edit):
    def damage(root: Path) -> None:
        m = json.loads((root / "manifest.json").read_text())
        edit(m)
        (root / "manifest.json").write_text(json.dumps(m))

    return damage


def _frame(edit):
    def damage(root: Path) -> None:
        df = pd.read_parquet(root / "runs.parquet")
        edit(df).to_parquet(root / "runs.parquet")

    return damage


def _csv(name: str, edit):
    def damage(root: Path) -> None:
        edit(pd.read_csv(root / name)).to_csv(root / name, index=False)

    return damage


#: case -> (damage, file named in the message, words)
CASES = {
    # found by tests/fuzz/test_fuzz_results.py (each was a traceback, exit 1)
    "manifest-cdf-at-strings": (
        _manifest(lambda m: m["plots"].update(cdf_at=["x"])),
        "manifest.json",
        ["plots.cdf_at", "not a list of numbers"],
    ),
    "manifest-kinds-a-number": (
        _manifest(lambda m: m["plots"].update(kinds=5)),
        "manifest.json",
        ["plots.kinds"],
    ),
    "manifest-breakdown-at-a-list": (
        _manifest(lambda m: m["plots"].update(breakdown_at=[1])),
        "manifest.json",
        ["plots.breakdown_at"],
    ),
    "summary-mean-not-a-number": (
        _csv("summary.csv", lambda df: df.assign(**{"latency_mean_us.mean": "abc"})),
        "summary.csv",
        ["latency_mean_us.mean", "'abc', not a number"],
    ),
    "summary-ci-missing": (
        _csv("summary.csv", lambda df: df.drop(columns=["latency_mean_us.ci95"])),
        "summary.csv",
        ["has no column 'latency_mean_us.ci95'"],
    ),
    "summary-x-empty": (
        _csv("summary.csv", lambda df: df.assign(**{"flows.probe.rate_gbps": None})),
        "summary.csv",
        ["flows.probe.rate_gbps", "an empty cell"],
    ),
    "stations-sojourn-not-a-number": (
        _csv("stations_summary.csv", lambda df: df.assign(**{"sojourn_mean_us.mean": "x"})),
        "stations_summary.csv",
        ["sojourn_mean_us.mean", "'x', not a number"],
    ),
    "manifest-not-json": (
        lambda r: (r / "manifest.json").write_text("{oops"),
        "manifest.json",
        ["not readable JSON"],
    ),
    "manifest-not-utf8": (
        lambda r: (r / "manifest.json").write_bytes(b"\xff\xfe{}"),
        "manifest.json",
        ["not readable JSON"],
    ),
    "manifest-a-list": (
        lambda r: (r / "manifest.json").write_text("[]"),
        "manifest.json",
        ["not a JSON object"],
    ),
    "manifest-swept-a-string": (
        _manifest(lambda m: m.update(swept="placement")),
        "manifest.json",
        ["swept"],
    ),
    "manifest-swept-empty": (
        _manifest(lambda m: m.update(swept={})),
        "manifest.json",
        ["swept"],
    ),
    "manifest-plots-x-unknown": (
        _manifest(lambda m: m["plots"].update(x="flows.probe.rate_gbp")),
        "manifest.json",
        ["plots.x", "'flows.probe.rate_gbp'", "flows.probe.rate_gbps"],
    ),
    "manifest-units-not-object": (
        _manifest(lambda m: m.update(units=["Gbit/s"])),
        "manifest.json",
        ["units"],
    ),
    "manifest-plots-not-object": (
        _manifest(lambda m: m.update(plots=[1])),
        "manifest.json",
        ["plots"],
    ),
    "parquet-garbage": (
        lambda r: (r / "runs.parquet").write_bytes(b"PAR1 this is not parquet"),
        "runs.parquet",
        ["cannot be read"],
    ),
    "parquet-zero-bytes": (
        lambda r: (r / "runs.parquet").write_bytes(b""),
        "runs.parquet",
        ["cannot be read"],
    ),
    "parquet-no-rows": (
        _frame(lambda df: df.iloc[0:0]),
        "runs.parquet",
        ["holds no runs"],
    ),
    "parquet-missing-parameter": (
        _frame(lambda df: df.drop(columns=["placement"])),
        "runs.parquet",
        ["'placement'"],
    ),
    "parquet-is-directory": (
        lambda r: ((r / "runs.parquet").unlink(), (r / "runs.parquet").mkdir()),
        "",
        ["no results"],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_plot_on_damaged_results_is_one_line(tmp_path, reference, case: str) -> None:
    root = tmp_path / "res"
    shutil.copytree(reference, root)
    damage, name, words = CASES[case]
    damage(root)
    res = CliRunner().invoke(cli, ["plot", str(root)])
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    assert str(root / name) in lines[0], lines[0]
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert not (root / "plots").exists()
    assert res.stdout == ""


@pytest.mark.parametrize("value", [float("inf"), -5.0, 0.0])
def test_no_positive_delay_is_drawn_on_a_linear_axis(tmp_path, reference, value) -> None:
    """A log axis needs a positive value: without one (all inf, negative or 0) the figure
    is drawn on a linear axis, without a warning (was a ValueError traceback for inf)."""
    root = tmp_path / "res"
    shutil.copytree(reference, root)
    _csv("summary.csv", lambda df: df.assign(**{"latency_mean_us.mean": value}))(root)
    res = CliRunner().invoke(cli, ["plot", str(root), "--y", "latency_mean_us"])
    assert res.exit_code == 0, (res.output, res.exception)
    assert res.stderr == ""
    assert sorted(p.suffix for p in (root / "plots").iterdir()) == [".png", ".svg"]


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda q: q.assign(**{"cdf.q035.0": "x"}), ["cdf.q035.0", "'x', not a number"]),
        (lambda q: q.drop(columns=["flow"]), ["has no column 'flow'"]),
    ],
    ids=["quantile-not-a-number", "no-flow-column"],
)
def test_damaged_quantiles_are_one_line(tmp_path, reference, edit, words) -> None:
    """Found by the results fuzz: a string quantile was a TypeError traceback."""
    root = tmp_path / "res"
    shutil.copytree(reference, root)
    _manifest(lambda m: m["plots"].update(cdf_at=[1.0]))(root)
    q = root / "latency_quantiles.parquet"
    edit(pd.read_parquet(q)).to_parquet(q)
    res = CliRunner().invoke(cli, ["report", str(root)])
    assert res.exit_code == 2, (res.output, res.exception)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {q}: "), res.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert not (root / "report.html").exists()
