"""Plots that follow the sweep (issue 10), on results in the contract's form.

The results directories are synthetic (tests/contract_results.py): the figures'
axes, files, lines and bands are checked against the tables they come from.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from contract_results import write_results

from sim.cli.main import cli
from sim.plots import draw
from sim.plots.axes import band, file_stem, is_geometric, param_label
from sim.plots.breakdown import bars
from sim.plots.figures import draw_all
from sim.plots.results import read_results
from sim.plots.views import default_views, lines, make_view

RATE = "flows.probe.rate_gbps"
WINDOW = "flows.neighbour.window_packets"
GEOMETRIC = {"placement": ["same-node", "cross-node"], WINDOW: [1, 2, 4, 8, 16, 32, 64]}


@pytest.fixture(scope="module")
def linear(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("lin") / "res")


@pytest.fixture(scope="module")
def geometric(tmp_path_factory) -> Path:
    return write_results(tmp_path_factory.mktemp("geo") / "res", swept=GEOMETRIC)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1, 2, 4, 8, 16, 32, 64], True),
        ([64, 128, 256, 512, 1024, 1500, 4000, 9000], True),  # packet-size.toml
        ([64, 1500, 9000], True),
        ([0.5, 1, 2, 3, 4, 5, 6, 7, 7.5, 8, 8.2, 9, 10], False),  # evenly spaced load
        ([1, 2, 4, 8, 12, 15, 16, 18], False),  # span 18 < 20
        ([1, 2, 4, 8], False),
        ([0, 1, 10, 100], False),  # zero cannot go on a log axis
        ([-4, -2, 1, 100], False),
        ([5], False),
    ],
)
def test_geometric_sweeps_are_recognised(values, expected) -> None:
    assert is_geometric(values) is expected


def test_band_on_log_axis_never_invents_a_lower_edge() -> None:
    mean = np.array([10.0, 2.0, 5.0, 7.0])
    ci = np.array([1.0, 3.0, math.nan, 7.0])
    lo, hi, dropped = band(mean, ci, log=False)
    np.testing.assert_allclose(lo, [9.0, -1.0, 5.0, 0.0])
    np.testing.assert_allclose(hi, [11.0, 5.0, 5.0, 14.0])
    assert dropped == 0
    lo, hi, dropped = band(mean, ci, log=True)
    # where mean - ci95 <= 0 the lower half is not drawn: the band starts at the mean
    np.testing.assert_allclose(lo, [9.0, 2.0, 5.0, 7.0])
    np.testing.assert_allclose(hi, [11.0, 5.0, 5.0, 14.0])
    assert dropped == 2


def test_axis_labels_name_the_parameter_even_with_the_experiment_label() -> None:
    assert param_label(RATE, "Gbit/s") == "flows.probe.rate_gbps (Gbit/s)"
    assert param_label("placement", None) == "placement"
    assert param_label(RATE, "Gbit/s", "offered load (Gbit/s of 1500 B)") == (
        "offered load (Gbit/s of 1500 B) [flows.probe.rate_gbps]"
    )


def test_file_names_carry_metric_parameter_and_unit() -> None:
    assert file_stem("latency_p99_us", RATE) == "latency-p99-us-vs-flows-probe-rate-gbps"
    assert file_stem("drop_rate", "placement") == "drop-rate-vs-placement"


def test_default_views_follow_the_sweep(linear, geometric) -> None:
    for root, x, logx in ((linear, RATE, False), (geometric, WINDOW, True)):
        res = read_results(root)
        views = default_views(res)
        assert {v.x for v in views} == {x}
        assert all(v.logx is logx for v in views)
        by_y = {v.y: v for v in views}
        # request/response plots RTT, the one-way flow latency; throughput for every flow
        assert by_y["rtt_mean_us"].flows == ("rpc",)
        assert by_y["latency_mean_us"].flows == ("probe",)
        assert set(by_y["throughput_gbps"].flows) == {"probe", "neighbour", "rpc"}
        assert by_y["drop_rate"].logy is False and by_y["latency_p99_us"].logy is True


def test_draw_all_writes_a_file_per_view_named_after_x(geometric, tmp_path) -> None:
    made = draw_all(geometric)
    names = {p.name for p in made}
    for metric in ("latency-mean-us", "rtt-p99-us", "throughput-gbps", "drop-rate"):
        for ext in ("png", "svg"):
            assert f"{metric}-vs-flows-neighbour-window-packets.{ext}" in names
    assert {"station-breakdown.png", "station-breakdown.svg"} <= names
    assert all(p.stat().st_size > 0 for p in made)


def _figure(res, view):
    return draw.line_figure(
        view, lines(res, view), res.manifest, list(res.manifest["swept"][view.x])
    )


@pytest.mark.parametrize("which", ["linear", "geometric"])
def test_axes_name_the_swept_parameter_and_scale(which, request) -> None:
    res = read_results(request.getfixturevalue(which))
    view = make_view(res, y="latency_mean_us")
    fig = _figure(res, view)
    ax = fig.axes[0]
    assert view.x in ax.get_xlabel()
    if view.x == RATE:
        assert "(Gbit/s)" in ax.get_xlabel() and ax.get_xscale() == "linear"
    else:
        assert ax.get_xscale() == "log"
    assert ax.get_ylabel() == "one-way latency, mean (µs)" and ax.get_yscale() == "log"
    # the legend is outside the axes: it covers no data
    fig.canvas.draw()
    legend = ax.get_legend().get_window_extent()
    assert legend.x0 >= ax.get_window_extent().x1
    draw.plt.close(fig)


def test_lines_are_the_summary_numbers(linear) -> None:
    res = read_results(linear)
    view = make_view(res, y="throughput_gbps", flow="neighbour")
    summary = pd.read_csv(linear / "summary.csv")
    got = lines(res, view)
    assert [ln.label for ln in got] == ["same-node", "cross-node"]
    for ln in got:
        rows = summary[(summary["flow"] == "neighbour") & (summary["placement"] == ln.label)]
        rows = rows.sort_values(RATE)
        np.testing.assert_array_equal(ln.x, rows[RATE].to_numpy())
        np.testing.assert_array_equal(ln.mean, rows["throughput_gbps.mean"].to_numpy())
        np.testing.assert_array_equal(ln.ci95, rows["throughput_gbps.ci95"].to_numpy())


def test_breakdown_groups_by_recorded_station_kind(linear, tmp_path) -> None:
    """Station names that say nothing of their kind still group by ``station_kind``."""
    root = tmp_path / "res"
    shutil.copytree(linear, root, ignore=shutil.ignore_patterns("plots"))
    rename = {}
    for table in ("stations_summary.csv", "runs.parquet"):
        p = root / table
        df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p)
        if "station" in df:
            rename = {n: f"s{i}" for i, n in enumerate(dict.fromkeys(df["station"]))}
            df["station"] = df["station"].map(rename)
        else:
            names = dict(rename)
            df["path"] = df["path"].map(lambda s, m=names: " > ".join(m[n] for n in s.split(" > ")))
        df.to_parquet(p, index=False) if p.suffix == ".parquet" else df.to_csv(p, index=False)
    res = read_results(root)
    at, bs = bars(res)
    assert at == 6.0  # the highest load at which no measured flow dropped
    cross = next(b for b in bs if b.label == "probe, cross-node")
    kinds = [k for _, k, _ in cross.segments]
    assert kinds == ["veth", "bridge", "forward", "nic_tx", "gateway", "nic_rx", "veth"]
    st = pd.read_csv(root / "stations_summary.csv")
    config = res.summary.query("flow == 'probe' and placement == 'cross-node'")
    config = int(config[config[RATE] == 6.0]["config"].iloc[0])
    want = st[st["config"] == config].set_index("station")["sojourn_mean_us.mean"]
    assert [v for _, _, v in cross.segments] == [want[s] for s, _, _ in cross.segments]


def _plot(*args: str):
    return CliRunner().invoke(cli, ["plot", *args])


def test_plot_redraws_one_view_by_name(linear) -> None:
    res = _plot(str(linear), "--x", "placement", "--y", "rtt_p99_us", "--logy")
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == [
        str(linear / "plots" / f"rtt-p99-us-vs-placement.{e}") for e in ("png", "svg")
    ]


@pytest.mark.parametrize(
    ("args", "option", "valid"),
    [
        (["--x", "rate"], "--x", "placement, flows.probe.rate_gbps"),
        (["--by", "flows.probe.rate"], "--by", "placement, flows.probe.rate_gbps"),
        (["--y", "latency_p99"], "--y", "latency_p99_us"),
        (["--flow", "prob"], "--flow", "probe, neighbour, rpc"),
    ],
)
def test_plot_bad_name_is_one_line_naming_the_valid_ones(linear, args, option, valid) -> None:
    res = _plot(str(linear), *args)
    assert res.exit_code == 2
    lines_ = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines_) == 1 and lines_[0].startswith(f"error: {option}: ")
    assert valid in lines_[0] and "Traceback" not in res.output


def _edit_manifest(root: Path, **changes) -> None:
    m = json.loads((root / "manifest.json").read_text())
    m.update(changes)
    (root / "manifest.json").write_text(json.dumps(m))


DAMAGE = {
    "manifest-not-json": (lambda r: (r / "manifest.json").write_text("{oops"), "manifest.json"),
    "no-swept": (lambda r: _edit_manifest(r, swept=None), "manifest.json"),
    "plots-x-unknown": (
        lambda r: _edit_manifest(r, plots={"x": "flows.probe.rate"}),
        "manifest.json",
    ),
    "summary-no-flow": (
        lambda r: pd.read_csv(r / "summary.csv").drop(columns="flow").to_csv(r / "summary.csv"),
        "summary.csv",
    ),
    "runs-garbage": (lambda r: (r / "runs.parquet").write_bytes(b"PAR1 nope"), "runs.parquet"),
    "stations-empty": (lambda r: (r / "stations_summary.csv").write_text(""), "stations_summary"),
    "flow-stations-empty": (
        lambda r: (r / "flow_stations_summary.csv").write_text(""),
        "flow_stations_summary",
    ),
    "flow-stations-no-hop": (
        lambda r: (r / "flow_stations_summary.csv").write_text("config,flow,station\n0,probe,x\n"),
        "flow_stations_summary",
    ),
}


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_tidy_results_are_one_line(linear, tmp_path, case) -> None:
    root = tmp_path / "res"
    shutil.copytree(linear, root, ignore=shutil.ignore_patterns("plots"))
    damage, name = DAMAGE[case]
    damage(root)
    res = CliRunner().invoke(cli, ["plot", str(root), "--y", "throughput_gbps"])
    assert res.exit_code == 2, res.output
    lines_ = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines_) == 1 and name in lines_[0] and "Fix:" in lines_[0], res.stderr
    assert not (root / "plots").exists()


@pytest.mark.parametrize(("lo", "hi"), [(6.5, 17.0), (3.7, 19.4), (120.0, 900.0), (1.0, 5000.0)])
def test_short_log_axis_still_labels_at_least_three_numbers(lo, hi) -> None:
    # nat-vs-no-nat --quick: a mean latency from 6.5 to 17 µs had only "10" on its axis
    fig, ax = draw.plt.subplots()
    ax.plot([1.0, 2.0], [lo, hi])
    ax.set_yscale("log")
    draw.plain_log(ax.yaxis)
    draw.label_enough(ax.yaxis, ax.get_ylim())
    fig.canvas.draw()
    y0, y1 = ax.get_ylim()
    shown = [
        t.get_text()
        for t in ax.get_yticklabels()
        if y0 <= t.get_position()[1] <= y1 and t.get_text()
    ]
    assert len(shown) >= 3, shown
    assert all(float(v) > 0 for v in shown)  # plain numbers, no 10^k notation
    draw.plt.close(fig)


def _with_quantiles(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """Synthetic results with cdf_at = [1, 4] and stored quantiles: q% -> (q + 1 + rep) us."""
    root = write_results(tmp_path / "res", plots={"cdf_at": [1.0, 4.0]})
    runs = pd.read_parquet(root / "runs.parquet")
    ids = ["run_id", "config", "replication", "seed", "placement", RATE, "flow", "role"]
    q = runs[ids].copy()
    cols = [f"cdf.q{p:05.1f}" for p in range(0, 101)] + ["cdf.q099.9"]
    vals = {c: float(c[len("cdf.q") :]) + 1.0 + q["replication"] for c in cols}
    q = pd.concat([q, pd.DataFrame(vals)], axis=1)
    q.to_parquet(root / "latency_quantiles.parquet", index=False)
    return root, q


def test_latency_cdf_at_cdf_at_averages_quantiles_over_replications(tmp_path) -> None:
    # cdf_at was documented (docs/experiments.md) but no figure drew it
    from sim.plots import cdf
    from sim.plots.figures import CDF_STEM, figures

    root, q = _with_quantiles(tmp_path)
    res = read_results(root)
    cs = cdf.curves(res)
    measured = q[q["role"] == "measured"]
    want = measured[measured[RATE].isin([1.0, 4.0])].groupby(["placement", RATE, "flow"]).ngroups
    assert len(cs) == want and {c.at for c in cs} == {1.0, 4.0}
    reps = q["replication"].nunique()
    for c in cs:
        assert np.all(np.diff(c.fraction) >= 0) and c.fraction[-1] == 1.0
        # mean over replications r = 0..R-1 of (q + 1 + r) is q + 1 + (R - 1) / 2
        np.testing.assert_allclose(c.latency_us, 100 * c.fraction + 1 + (reps - 1) / 2)
    made = {stem: fig for stem, _, fig in figures(res)}
    ax = made[CDF_STEM].axes[0]
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "one-way latency (µs)"
    assert len(ax.get_legend().get_texts()) == len(cs)
    for fig in made.values():
        draw.plt.close(fig)


def test_no_cdf_figure_without_cdf_at_or_stored_quantiles(linear) -> None:
    from sim.plots import cdf

    assert cdf.curves(read_results(linear)) == []


def test_pod_pairs_copies_plot_the_first_pair_not_one_line_per_copy(tmp_path) -> None:
    # pods-per-node --quick: 32 lines (probe-1 ... probe-16, two placements) per figure
    import dataclasses

    swept = {"placement": ["same-node", "cross-node"], "pod_pairs": [1, 8, 16]}
    res = read_results(write_results(tmp_path / "res", swept=swept))
    s = res.summary
    probe = s[s["flow"] == "probe"]
    copies = [probe[probe["pod_pairs"] >= k].assign(flow=f"probe-{k}") for k in range(1, 17)]
    res = dataclasses.replace(res, summary=pd.concat([s[s["flow"] != "probe"], *copies]))
    views = default_views(res)
    assert views and all("probe-2" not in v.flows for v in views)
    assert all("probe-1" in v.flows for v in views if not v.y.startswith("rtt"))
    tput = next(v for v in views if v.y == "throughput_gbps")
    assert set(tput.flows) == set(res.summary["flow"]) - {f"probe-{k}" for k in range(2, 17)}
    # the first pair's line is the summary's numbers at every pod_pairs value
    got = lines(res, next(v for v in views if v.y == "latency_mean_us"))
    assert len(got) == 2 and all(len(ln.x) == 3 for ln in got)


def test_tcp_throughput_axis_says_goodput(linear) -> None:
    # same-vs-cross-throughput: a tcp flow's throughput_gbps is its goodput
    import dataclasses

    res = read_results(linear)
    s = res.summary.copy()
    view = make_view(res, y="throughput_gbps", flow="neighbour")
    fig = _figure(res, view)
    assert fig.axes[0].get_ylabel() == "delivered throughput (Gbit/s)"
    draw.plt.close(fig)
    s.loc[s["flow"] == "neighbour", "kind"] = "tcp"
    res = dataclasses.replace(res, summary=s)
    fig = _figure(res, view)
    assert fig.axes[0].get_ylabel() == "TCP goodput (payload delivered in order) (Gbit/s)"
    draw.plt.close(fig)
    # a figure mixing tcp with other kinds keeps the general name
    both = make_view(res, y="throughput_gbps")
    fig = _figure(res, both)
    assert fig.axes[0].get_ylabel() == "delivered throughput (Gbit/s)"
    draw.plt.close(fig)


def test_coinciding_lines_stay_visible(linear) -> None:
    # cpu-saturation: cross-node with 1 and 2 cores gave equal numbers and one line hid the other
    res = read_results(linear)
    view = make_view(res, y="throughput_gbps", flow="neighbour")
    lns = lines(res, view)
    same = [dataclasses.replace(lns[0], label=f"copy {k}") for k in range(3)]
    fig = draw.line_figure(view, same, res.manifest, list(res.manifest["swept"][view.x]))
    drawn = fig.axes[0].get_lines()
    widths = [ln.get_linewidth() for ln in drawn]
    sizes = [ln.get_markersize() for ln in drawn]
    assert widths == sorted(widths, reverse=True) and len(set(widths)) == 3
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3
    assert min(widths) >= 1.5
    # a line on an earlier one is dashed (the earlier shows between the dashes) and says so
    assert drawn[0].get_linestyle() == "-"
    assert [ln.get_linestyle() for ln in drawn[1:]] == ["--", "--"]
    legend = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    assert legend == ["copy 0", "copy 1 (on copy 0)", "copy 2 (on copy 0)"]
    draw.plt.close(fig)
    apart = [same[0], dataclasses.replace(same[1], mean=same[1].mean * 1.01)]
    fig = draw.line_figure(view, apart, res.manifest, list(res.manifest["swept"][view.x]))
    assert [ln.get_linestyle() for ln in fig.axes[0].get_lines()] == ["-", "-"]
    draw.plt.close(fig)


def test_breakdown_says_station_means_are_over_every_flow(linear) -> None:
    """Results without per-flow means (no ``flow_stations_summary.csv``, as podnetsim
    wrote before it kept them): with several flows the figure says whose time it is."""
    from sim.plots.figures import SHARED_NOTE, figures

    res = read_results(linear)
    assert res.summary["flow"].nunique() > 1
    found = [(cap, fig) for stem, cap, fig in figures(res) if stem == "station-breakdown"]
    assert len(found) == 1
    caption, fig = found[0]
    assert caption.endswith(SHARED_NOTE)
    assert "every flow's packets" in fig.axes[0].get_xlabel()
    one = dataclasses.replace(res, summary=res.summary[res.summary["flow"] == "probe"])
    caption, fig = next((c, f) for s, c, f in figures(one) if s == "station-breakdown")
    assert SHARED_NOTE not in caption and "a packet" in fig.axes[0].get_xlabel()
