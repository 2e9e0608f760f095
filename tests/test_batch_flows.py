"""Issue 10: an experiment's flows add to the scenario's; replacing them is explicit;
the measured flows are explicit; every flow gets its own rows."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from sim.batch import load_experiment, run_experiment
from sim.cli.main import cli
from sim.errors import ExperimentError

ARTICLE = (
    Path(__file__).resolve().parents[1] / "experiments" / "scenarios" / "article.toml"
).as_posix()

HEAD = f"""name = "flows"
scenario = "{ARTICLE}"
replications = 2
duration_s = 0.003
warmup_s = 0.001
"""
PROBE = """
[[flows]]
name = "probe"
kind = "request-response"
src = "client"
dst = "web"
"""


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text)
    return p


def flows_of(batch) -> list[str]:
    return [f["name"] for f in batch.runs[0].scenario_raw["flows"]]


def test_flows_add_to_the_scenarios_with_a_warning(tmp_path) -> None:
    batch = load_experiment(write(tmp_path, HEAD + PROBE))
    assert flows_of(batch) == ["same-node", "cross-node", "probe"]
    assert batch.runs[0].measured_flows == ("probe",)
    (w,) = batch.warnings
    assert "'same-node', 'cross-node'" in w and "replace_flows = true" in w
    assert w.startswith(f"{tmp_path / 'exp.toml'}: replace_flows: ")


def test_replace_flows_false_adds_silently_true_replaces(tmp_path) -> None:
    batch = load_experiment(write(tmp_path, HEAD + "replace_flows = false\n" + PROBE))
    assert flows_of(batch) == ["same-node", "cross-node", "probe"] and not batch.warnings
    batch = load_experiment(write(tmp_path, HEAD + "replace_flows = true\n" + PROBE))
    assert flows_of(batch) == ["probe"] and not batch.warnings


def test_name_collision_is_one_error(tmp_path) -> None:
    text = HEAD + PROBE.replace('name = "probe"', 'name = "cross-node"')
    with pytest.raises(ExperimentError) as err:
        load_experiment(write(tmp_path, text))
    assert err.value.field == "flows.0.name"
    assert "also a flow of the base scenario" in str(err.value)
    assert "replace_flows = true" in str(err.value)


def test_replace_without_flows_is_an_error(tmp_path) -> None:
    with pytest.raises(ExperimentError) as err:
        load_experiment(write(tmp_path, HEAD + "replace_flows = true\n"))
    assert err.value.field == "replace_flows"


def test_no_experiment_flows_measures_every_scenario_flow(tmp_path) -> None:
    batch = load_experiment(write(tmp_path, HEAD))
    assert batch.runs[0].measured_flows == ("same-node", "cross-node")
    assert not batch.warnings


@pytest.mark.parametrize("fld", ["measure", "placement_flows"])
def test_unknown_measured_or_placed_flow(tmp_path, fld: str) -> None:
    with pytest.raises(ExperimentError) as err:
        load_experiment(write(tmp_path, HEAD + f'{fld} = ["nope"]\n' + PROBE))
    assert err.value.field == fld and "'nope'" in str(err.value)


def test_roles_and_rows_of_every_flow(tmp_path) -> None:
    """Two background flows and a measured request/response probe: a row each, with
    RTTs only for the probe and the background flows' offered rate their own."""
    text = HEAD + 'measure = ["probe"]\n' + PROBE
    out = tmp_path / "out"
    rep = run_experiment(write(tmp_path, text), out, plots=False, on_warning=lambda m: None)
    assert not rep.failures
    runs = pd.read_parquet(out / "runs.parquet")
    assert list(runs["flow"]) == ["same-node", "cross-node", "probe"] * 2
    role = dict(zip(runs["flow"], runs["role"], strict=False))
    assert role == {"same-node": "background", "cross-node": "background", "probe": "measured"}
    probe = runs[runs["flow"] == "probe"]
    bg = runs[runs["flow"] != "probe"]
    assert probe["kind"].eq("request-response").all()
    assert (probe["rtt_mean_us"] > probe["latency_mean_us"]).all()
    assert probe["offered_gbps"].isna().all() and (probe["transactions_per_s"] > 0).all()
    assert bg["rtt_mean_us"].isna().all() and (bg["offered_gbps"] > 0).all()
    assert (probe["retransmissions"] == 0).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["flow"]) == ["same-node", "cross-node", "probe"]
    assert list(summary["role"]) == ["background", "background", "measured"]


def test_run_prints_the_flows_warning(tmp_path) -> None:
    path = write(tmp_path, HEAD + PROBE)
    res = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "warning: " in res.stderr and "replace_flows" in res.stderr
    res = CliRunner().invoke(cli, ["check", str(path)])
    assert "warning: " in res.stdout and "replace_flows" in res.stdout


def test_retransmissions_count_every_resend(article_path) -> None:
    """Two requests at once into a one-packet veth buffer: losses, each resent rto_us
    after its send unless that falls past the end of the run."""
    import numpy as np

    from sim.engine import simulate
    from sim.spec.load import load_scenario

    rto_s, end_s = 500e-6, 0.003
    flow = {"name": "rr", "kind": "request-response", "src": "client", "dst": "api"}
    over = {
        "flows": [{**flow, "outstanding": 2, "rto_us": rto_s * 1e6}],
        "costs.veth.buffer_packets": 1,
        "simulation.warmup_s": 0.0,
        "simulation.duration_s": end_s,
    }
    res = simulate(load_scenario(article_path, over))
    p = res.packets
    lost = (p["reason"] > 0) & (p["done_s"] <= end_s)
    # a lost request resends rto after its send; a lost reply, rto after its request's
    # send: count the losses whose resend falls inside the run
    req_send = p["send_s"][lost]
    assert lost.sum() >= 1
    resent = int(np.sum(req_send + rto_s < end_s))
    assert res.flows[0].retransmissions == resent > 0


def test_resume_of_runs_from_before_the_tidy_tables_is_one_error(tmp_path) -> None:
    """A run file of the old flat format is not damaged: it is refused whole, once."""
    import json

    small = Path(__file__).resolve().parent / "data" / "batch" / "small.toml"
    out = tmp_path / "out"
    run_experiment(small, out, plots=False)
    victim = out / "runs" / "c000-r00.json"
    rec = json.loads(victim.read_text())
    victim.write_text(
        json.dumps({**{k: rec[k] for k in ("run_id", "fingerprint")}, "row": rec["flows"][0]})
    )
    res = CliRunner().invoke(cli, ["run", str(small), "--out", str(out), "--resume", "--no-plots"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "older podnetsim" in lines[0] and "--force" in lines[0]
    assert not (out / "runs" / "damaged").exists()


def test_check_strict_fails_on_the_flows_warning(tmp_path) -> None:
    path = write(tmp_path, HEAD + PROBE)
    assert CliRunner().invoke(cli, ["check", str(path), "--strict"]).exit_code == 1
    path = write(tmp_path, HEAD + "replace_flows = false\n" + PROBE)
    assert CliRunner().invoke(cli, ["check", str(path), "--strict"]).exit_code == 0
