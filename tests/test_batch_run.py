"""`podnetsim run` of the headline experiment (--quick) end to end, and `podnetsim plot`.

One real batch (experiments/same-vs-cross-latency.toml --quick --jobs 2, about 10 s)
is shared by the tests of this module: its files, manifest, plots and the headline
result (cross-node latency above same-node at every load, with non-overlapping 95%
intervals at the highest load below saturation).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

import sim
from sim.cli.main import cli

ROOT = Path(__file__).resolve().parents[1]
HEADLINE = ROOT / "experiments" / "same-vs-cross-latency.toml"
_SCRIPT = Path(sys.executable).with_name("podnetsim")
PODNETSIM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sim.cli.main"]

#: Cross-node path capacity of the article cluster for 1500 B packets, Gbit/s
#: (node eth0 at 10 Gbit/s plus 0.2 us per packet; see the experiment file).
CROSS_NODE_CAPACITY_GBPS = 8.4

X = "flows.probe.rate_gbps"


def podnetsim(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PODNETSIM, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def headline(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("headline") / "results"
    proc = podnetsim("run", str(HEADLINE), "--quick", "--jobs", "2", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return out, proc


def test_writes_every_results_file(headline) -> None:
    out, proc = headline
    for name in ("runs.parquet", "runs.csv", "summary.csv", "manifest.json"):
        assert (out / name).is_file(), name
        assert (out / name).stat().st_size > 0, name
    # quick: 2 placements x 4 loads x 3 replications
    assert len(list((out / "runs").glob("*.json"))) == 24
    assert "24 runs done, 0 reused, 0 failed" in proc.stdout


def test_manifest(headline) -> None:
    import json

    import simpy

    out, _ = headline
    m = json.loads((out / "manifest.json").read_text())
    assert isinstance(m["schema_version"], int)
    assert m["podnetsim_version"] == sim.__version__
    assert "git_commit" in m
    assert m["git_commit"] is None or isinstance(m["git_commit"], str)
    assert m["python"] == platform.python_version()
    assert m["simpy"] == simpy.__version__
    assert m["numpy"] == np.__version__
    assert m["experiment_sha256"] == hashlib.sha256(HEADLINE.read_bytes()).hexdigest()
    assert m["run_count"] == 24
    assert m["quick"] is True
    started = dt.datetime.fromisoformat(m["started_utc"])
    finished = dt.datetime.fromisoformat(m["finished_utc"])
    assert started.tzinfo is not None
    assert started <= finished
    assert m["failures"] == []


def test_parquet_and_csv_hold_the_same_runs(headline) -> None:
    out, _ = headline
    pq = pd.read_parquet(out / "runs.parquet")
    csv = pd.read_csv(out / "runs.csv")
    assert list(pq.columns) == list(csv.columns)
    assert len(pq) == len(csv) == 24
    assert list(pq["run_id"]) == list(csv["run_id"]) == sorted(csv["run_id"])
    num = [c for c in pq.columns if pd.api.types.is_numeric_dtype(pq[c])]
    assert "latency_mean_us" in num and "seed" in num
    np.testing.assert_allclose(
        pq[num].to_numpy(dtype=float), csv[num].to_numpy(dtype=float), rtol=1e-8, equal_nan=True
    )


#: The headline's default figures: x = the swept rate (name and unit in the file name).
PLOT_STEMS = (
    "latency-mean-us-vs-flows-probe-rate-gbps",
    "latency-p99-us-vs-flows-probe-rate-gbps",
    "throughput-gbps-vs-flows-probe-rate-gbps",
    "drop-rate-vs-flows-probe-rate-gbps",
    "latency-cdf",
    "station-breakdown",
)


@pytest.mark.parametrize("stem", PLOT_STEMS)
def test_every_plot_as_png_and_svg(headline, stem: str) -> None:
    out, _ = headline
    png, svg = out / "plots" / f"{stem}.png", out / "plots" / f"{stem}.svg"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "<svg" in svg.read_text(encoding="utf-8")[:2000]


def test_cdf_lines_are_the_quantiles_averaged_over_replications(headline) -> None:
    from sim.plots.cdf import curves
    from sim.plots.results import read_results

    out, _ = headline
    cs = curves(read_results(out))
    assert len(cs) == 4  # 2 placements x cdf_at [1.0, 7.5]
    q = pd.read_parquet(out / "latency_quantiles.parquet")
    cols = sorted((c for c in q.columns if c.startswith("cdf.q")), key=lambda c: float(c[5:]))
    for c in cs:
        placement, flow = c.group
        rows = q[(q["placement"] == placement) & (q[X] == c.at) & (q["flow"] == flow)]
        assert len(rows) == 3  # quick: 3 replications
        np.testing.assert_allclose(c.latency_us, rows[cols].mean(axis=0), rtol=1e-12)
        assert c.fraction[0] == 0.0 and c.fraction[-1] == 1.0


def test_cross_node_latency_above_same_node(headline) -> None:
    out, _ = headline
    s = pd.read_csv(out / "summary.csv")
    same = s[s["placement"] == "same-node"].set_index(X)
    cross = s[s["placement"] == "cross-node"].set_index(X)
    loads = sorted(same.index)
    assert loads == sorted(cross.index) == [1.0, 4.0, 7.5, 9.0]
    col = "latency_mean_us"
    for load in loads:
        assert cross.loc[load, f"{col}.mean"] > same.loc[load, f"{col}.mean"], load
    top = max(x for x in loads if x < CROSS_NODE_CAPACITY_GBPS)
    assert top == 7.5
    c_lo = cross.loc[top, f"{col}.mean"] - cross.loc[top, f"{col}.ci95"]
    s_hi = same.loc[top, f"{col}.mean"] + same.loc[top, f"{col}.ci95"]
    assert math.isfinite(c_lo) and math.isfinite(s_hi)
    assert c_lo > s_hi, (c_lo, s_hi)


def test_summary_ci_is_t_interval_of_runs(headline) -> None:
    out, _ = headline
    runs = pd.read_csv(out / "runs.csv")
    s = pd.read_csv(out / "summary.csv").set_index("config")
    ci = 6  # cross-node at 7.5 Gbit/s
    assert s.loc[ci, "placement"] == "cross-node" and s.loc[ci, X] == 7.5
    v = runs.loc[runs["config"] == ci, "latency_mean_us"].to_numpy(dtype=float)
    n = v.size
    assert n == 3 == s.loc[ci, "n"]
    want = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / math.sqrt(n)
    assert s.loc[ci, "latency_mean_us.ci95"] == pytest.approx(want, rel=1e-6)
    assert s.loc[ci, "latency_mean_us.mean"] == pytest.approx(v.mean(), rel=1e-8)


def test_plot_redraws_from_stored_results(headline, tmp_path) -> None:
    src, _ = headline
    out = tmp_path / "copy"
    shutil.copytree(src, out)
    shutil.rmtree(out / "plots")
    res = CliRunner().invoke(cli, ["plot", str(out)])
    assert res.exit_code == 0, res.output
    for stem in PLOT_STEMS:
        for ext in ("png", "svg"):
            p = out / "plots" / f"{stem}.{ext}"
            assert p.is_file() and p.stat().st_size > 0, p
            assert str(p) in res.stdout
    # nothing but the plots was touched
    for name in ("runs.parquet", "runs.csv", "summary.csv", "manifest.json"):
        assert (out / name).read_bytes() == (src / name).read_bytes()


def test_plot_on_empty_dir_exits_2(tmp_path) -> None:
    d = tmp_path / "empty"
    d.mkdir()
    proc = podnetsim("plot", str(d), timeout=120)
    assert proc.returncode == 2
    line = one_error_line(proc.stderr)
    assert str(d) in line and "no results" in line
    assert proc.stdout == ""
    assert list(d.iterdir()) == []


@pytest.mark.parametrize("which", ["missing", "partial"])
def test_plot_without_results_exits_2(tmp_path, which: str) -> None:
    d = tmp_path / "d"
    if which == "partial":
        d.mkdir()
        (d / "runs.csv").write_text("run_id\n")
    res = CliRunner().invoke(cli, ["plot", str(d)])
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert str(d) in line and "no results" in line
    assert not (d / "plots").exists()
