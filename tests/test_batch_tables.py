"""Result tables: independent of the worker count, summary CIs are t intervals."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy import stats

from sim.analysis.rows import FLOW_METRICS
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


@pytest.mark.parametrize(
    "name", ["runs.csv", "summary.csv", "flow_stations.csv", "flow_stations_summary.csv"]
)
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


# -- the tidy tables (issue 10's results contract) ---------------------------------------

#: the flow metric columns, in order (rtt_*, timeouts, srtt: NaN where they do not apply)
CONTRACT_METRICS = list(FLOW_METRICS)
PARAMS = ["placement", "flows.probe.rate_gbps"]
X = "flows.probe.rate_gbps"


def test_runs_columns_follow_the_contract(by_jobs) -> None:
    runs = pd.read_parquet(by_jobs[1] / "runs.parquet")
    ids = ["run_id", "config", "replication", "seed", *PARAMS, "flow", "role", "kind"]
    cols = list(runs.columns)
    assert cols[: len(ids)] == ids
    assert cols[len(ids) : len(ids) + len(CONTRACT_METRICS)] == CONTRACT_METRICS
    drops = cols[len(ids) + len(CONTRACT_METRICS) : -2]
    assert drops == sorted(drops) and all(c.startswith("drops.") for c in drops)
    assert cols[-2:] == ["path", "warnings"]
    assert set(runs["role"]) == {"measured"} and set(runs["kind"]) == {"poisson"}
    # one-way Poisson flows: no round trips, offered rate = the swept rate
    assert runs["rtt_mean_us"].isna().all() and runs["transactions_per_s"].isna().all()
    np.testing.assert_allclose(runs["offered_gbps"], runs["flows.probe.rate_gbps"], rtol=1e-12)


def test_drop_columns_add_up_to_drops(by_jobs) -> None:
    runs = pd.read_parquet(by_jobs[1] / "runs.parquet")
    drops = [c for c in runs.columns if c.startswith("drops.")]
    assert (runs[drops].sum(axis=1) == runs["dropped"]).all()


def test_stations_table_kinds_come_from_the_engine(by_jobs) -> None:
    st = pd.read_parquet(by_jobs[1] / "stations.parquet")
    assert list(st.columns) == [
        "run_id",
        "config",
        "replication",
        "seed",
        *PARAMS,
        "station",
        "station_kind",
        "node",
        "utilization",
        "wait_mean_us",
        "sojourn_mean_us",
        "queue_mean_pkts",
        "queue_max_pkts",
        "drops",
    ]
    kinds = dict(zip(st["station"], st["station_kind"], strict=False))
    assert kinds["node1/cbr0"] == "bridge"
    assert kinds["node2/eth0:tx"] == "eth0_tx" and kinds["gateway/forward"] == "gateway"
    assert st.loc[st["station"] == "node2/eth0:tx", "node"].eq("node2").all()
    # cross-node at 4 Gbit/s: eth0:tx serializes 1538 B at 10 Gbit/s + 0.2 us (README),
    # so its utilization is the offered packet rate x service time
    row = st[(st["station"] == "node2/eth0:tx") & (st["flows.probe.rate_gbps"] == 4.0)]
    row = row[row["placement"] == "cross-node"]
    per_pkt_s = 0.2e-6 + 1538 * 8 / 10e9
    want = 4e9 / (1500 * 8) * per_pkt_s
    assert row["utilization"].mean() == pytest.approx(want, rel=0.1)


def test_stations_summary_is_per_configuration_and_station(by_jobs) -> None:
    st = pd.read_csv(by_jobs[1] / "stations.csv")
    sm = pd.read_csv(by_jobs[1] / "stations_summary.csv")
    assert list(sm.columns[:7]) == ["config", *PARAMS, "station", "station_kind", "node", "n"]
    pairs = st[["config", "station"]].drop_duplicates()
    assert len(sm) == len(pairs)
    one = sm[(sm["config"] == 3) & (sm["station"] == "node2/eth0:tx")].iloc[0]
    v = st[(st["config"] == 3) & (st["station"] == "node2/eth0:tx")]["utilization"].to_numpy()
    assert one["utilization.mean"] == pytest.approx(v.mean(), rel=1e-8)
    want = stats.t.ppf(0.975, v.size - 1) * v.std(ddof=1) / math.sqrt(v.size)
    assert one["utilization.ci95"] == pytest.approx(want, rel=1e-6)


def test_flow_stations_are_each_flows_own_time_per_hop(by_jobs) -> None:
    """One row per (run, flow, hop of its path); with one flow, its own mean at a
    station is the station's mean; the summary is per (configuration, flow, hop)."""
    fs = pd.read_parquet(by_jobs[1] / "flow_stations.parquet")
    assert list(fs.columns) == [
        "run_id", "config", "replication", "seed", *PARAMS,
        "flow", "direction", "hop", "station", "station_kind", "packets", "sojourn_mean_us",
    ]  # fmt: skip
    assert set(fs["direction"]) == {"forward"}  # a poisson flow: no replies
    runs = pd.read_parquet(by_jobs[1] / "runs.parquet")
    for _, run in runs.iterrows():
        mine = fs[(fs["run_id"] == run["run_id"]) & (fs["flow"] == run["flow"])]
        assert list(mine["hop"]) == list(range(len(mine)))
        assert " > ".join(mine["station"]) == run["path"]
    st = pd.read_parquet(by_jobs[1] / "stations.parquet")
    both = fs.merge(st, on=["run_id", "station"], suffixes=("", "_station"))
    assert len(both) == len(fs) and (both["packets"] > 0).all()
    np.testing.assert_allclose(both["sojourn_mean_us"], both["sojourn_mean_us_station"], rtol=1e-12)
    assert (both["station_kind"] == both["station_kind_station"]).all()
    sm = pd.read_csv(by_jobs[1] / "flow_stations_summary.csv")
    keys = ["config", *PARAMS, "flow", "direction", "hop", "station", "station_kind", "n"]
    assert list(sm.columns[:9]) == keys
    assert len(sm) == len(fs[["config", "flow", "hop"]].drop_duplicates())
    one = sm[(sm["config"] == 3) & (sm["hop"] == 0)].iloc[0]
    v = fs[(fs["config"] == 3) & (fs["hop"] == 0)]["sojourn_mean_us"].to_numpy()
    assert one["sojourn_mean_us.mean"] == pytest.approx(v.mean(), rel=1e-8)


def test_breakdown_draws_each_flows_own_means(by_jobs) -> None:
    """The breakdown's segments are ``flow_stations_summary.csv``'s means, in hop order."""
    from sim.plots.breakdown import bars, per_flow
    from sim.plots.results import read_results

    res = read_results(by_jobs[1])
    assert per_flow(res)
    at, drawn = bars(res)
    sm = pd.read_csv(by_jobs[1] / "flow_stations_summary.csv")
    assert drawn
    for bar, config in zip(drawn, sm[sm[X] == at]["config"].unique(), strict=True):
        rows = sm[(sm["config"] == config) & (sm["flow"] == "probe")].sort_values("hop")
        assert [s[0] for s in bar.segments] == list(rows["station"])
        assert [s[2] for s in bar.segments] == list(rows["sojourn_mean_us.mean"])


def test_report_shows_each_flows_own_time_per_hop(by_jobs) -> None:
    """The report's per-flow table is ``flow_stations_summary.csv`` at the breakdown's x."""
    from test_report_html import _Page

    from sim.report.build import render_report
    from sim.report.tables import interval

    page = _Page()
    page.feed(render_report(by_jobs[1]))
    rows = page.tables["flow_stations"]
    header = [t for _, t in rows[0]]
    assert header == ["config", *PARAMS, "flow", "direction", "hop", "station", "station_kind",
                      "sojourn_mean_us", "packets"]  # fmt: skip
    sm = pd.read_csv(by_jobs[1] / "flow_stations_summary.csv")
    want = sm[sm[X] == 4.0]  # the breakdown's x: the highest load without drops
    assert len(rows) - 1 == len(want)
    for cells, (_, w) in zip(rows[1:], want.iterrows(), strict=True):
        got = dict(zip(header, (t for _, t in cells), strict=True))
        assert (int(got["config"]), got["station"]) == (w["config"], w["station"])
        m = "sojourn_mean_us"
        assert got[m] == interval(w[f"{m}.mean"], w[f"{m}.ci95"])


def test_manifest_records_sweep_units_and_question(by_jobs) -> None:
    import json

    m = json.loads((by_jobs[1] / "manifest.json").read_text())
    assert m["swept"] == {"placement": ["same-node", "cross-node"], PARAMS[1]: [1.0, 4.0]}
    assert m["units"] == {"placement": None, PARAMS[1]: "Gbit/s"}
    assert m["params"] is None and m["engine"]
    assert m["description"] and "question" in m and "plots" in m
    assert m["schema_version"] == 2


@pytest.mark.parametrize(
    "param, unit",
    [
        ("flows.probe.rate_gbps", "Gbit/s"),
        ("flows.probe.size_bytes", "B"),
        ("flows.probe.think_us", "us"),
        ("simulation.duration_s", "s"),
        ("flows.probe.rate_pps", "packets/s"),
        ("costs.veth.buffer_packets", "packets"),
        ("flows.probe.window_packets", "packets"),
        ("placement", None),
        ("pod_pairs", None),
        ("flows.probe.load", None),
    ],
)
def test_unit_of_parameter_names(param: str, unit) -> None:
    from sim.analysis.results import unit_of

    assert unit_of(param) == unit


def test_figures_never_import_the_batch_package() -> None:
    """sim/plots reads results through sim/analysis (no sim/plots <-> sim/batch cycle)."""
    import subprocess
    import sys

    code = (
        "import sys, sim.plots.figures; print(any(m.startswith('sim.batch') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_breakdown_of_a_round_trip_flow_crosses_both_paths(tmp_path) -> None:
    """A request/response flow's bar is its requests' path, then its replies': the
    stations its round trip crosses, each with the flow's own mean there."""
    from sim.plots.breakdown import bars
    from sim.plots.results import read_results

    exp = Path(__file__).resolve().parents[1] / "experiments" / "cpu-noisy-neighbour.toml"
    out = tmp_path / "res"
    res = CliRunner().invoke(cli, ["run", str(exp), "--quick", "--out", str(out), "--no-plots"])
    assert res.exit_code == 0, res.output
    results = read_results(out)
    at, drawn = bars(results)
    sm = pd.read_csv(out / "flow_stations_summary.csv")
    probe = [b for b in drawn if b.label.startswith("probe")]
    assert probe and all(math.isnan(b.latency_us) for b in probe)  # round trips
    for bar, config in zip(probe, sm[sm["flows.neighbour.rate_pps"] == at]["config"].unique(),
                           strict=True):  # fmt: skip
        rows = sm[(sm["config"] == config) & (sm["flow"] == "probe")]
        fwd = rows[rows["direction"] == "forward"].sort_values("hop")
        back = rows[rows["direction"] == "reply"].sort_values("hop")
        assert len(fwd) and len(back)
        want = [*fwd["sojourn_mean_us.mean"], *back["sojourn_mean_us.mean"]]
        assert [s[2] for s in bar.segments] == want
