"""Result tables: independent of the worker count, summary CIs are t intervals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from sim.batch import load_experiment
from sim.cli.main import cli

DATA = Path(__file__).resolve().parent / "data" / "batch"
SMALL = DATA / "small.toml"


@pytest.fixture(scope="module")
def by_jobs(tmp_path_factory) -> dict[int, Path]:
    outs = {}
    for jobs in (1, 2):
        out = tmp_path_factory.mktemp(f"jobs{jobs}") / "res"
        res = CliRunner().invoke(
            cli, ["run", str(SMALL), "--jobs", str(jobs), "--out", str(out), "--no-plots"]
        )
        assert res.exit_code == 0, res.output
        assert "12 runs done, 0 reused, 0 failed" in res.stdout
        outs[jobs] = out
    return outs


@pytest.mark.parametrize("name", ["runs.csv", "summary.csv"])
def test_jobs_1_and_2_byte_identical(by_jobs, name: str) -> None:
    assert (by_jobs[1] / name).read_bytes() == (by_jobs[2] / name).read_bytes()


def test_jobs_1_and_2_same_parquet_and_run_files(by_jobs) -> None:
    pd.testing.assert_frame_equal(
        pd.read_parquet(by_jobs[1] / "runs.parquet"), pd.read_parquet(by_jobs[2] / "runs.parquet")
    )
    for p in sorted((by_jobs[1] / "runs").glob("*.json")):
        assert p.read_bytes() == (by_jobs[2] / "runs" / p.name).read_bytes(), p.name


def test_runs_table_layout(by_jobs) -> None:
    runs = pd.read_csv(by_jobs[1] / "runs.csv")
    batch = load_experiment(SMALL)
    assert list(runs["run_id"]) == [r.run_id for r in batch.runs]
    assert list(runs.columns[:6]) == [
        "run_id",
        "config",
        "replication",
        "seed",
        "placement",
        "flows.probe.rate_gbps",
    ]
    for r, (_, row) in zip(batch.runs, runs.iterrows(), strict=True):
        assert row["seed"] == r.seed
        assert row["placement"] == r.params["placement"]
        assert row["flows.probe.rate_gbps"] == r.params["flows.probe.rate_gbps"]


@pytest.mark.parametrize("config", [0, 3])
@pytest.mark.parametrize("metric", ["latency_mean_us", "latency_p99_us", "throughput_gbps"])
def test_summary_ci95_is_t_interval(by_jobs, config: int, metric: str) -> None:
    runs = pd.read_csv(by_jobs[1] / "runs.csv")
    summary = pd.read_csv(by_jobs[1] / "summary.csv").set_index("config")
    v = runs.loc[runs["config"] == config, metric].to_numpy(dtype=float)
    n = v.size
    assert n == 3 == summary.loc[config, "n"] == summary.loc[config, f"{metric}.n"]
    want = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n)
    assert want > 0
    assert summary.loc[config, f"{metric}.ci95"] == pytest.approx(want, rel=1e-6)
    assert summary.loc[config, f"{metric}.mean"] == pytest.approx(v.mean(), rel=1e-8)
    # the t quantile, not the normal one (1.96) and not the sample sd alone
    z = 1.959963984540054 * v.std(ddof=1) / math.sqrt(n)
    assert summary.loc[config, f"{metric}.ci95"] > 2 * z


def test_summary_one_row_per_configuration(by_jobs) -> None:
    summary = pd.read_csv(by_jobs[1] / "summary.csv")
    batch = load_experiment(SMALL)
    assert list(summary["config"]) == list(range(len(batch.configs)))
    for (_, row), params in zip(summary.iterrows(), batch.configs, strict=True):
        for k, v in params.items():
            assert row[k] == v
    assert not any(c.startswith("cdf.") for c in summary.columns)
    assert np.isfinite(summary["latency_mean_us.ci95"]).all()
