"""Bad experiment files (one clear line, exit 2, no traceback) and runs that fail at
run time (reported with their parameters, exit 1, every other run stored)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import sim.batch.driver as driver
from sim.cli.main import cli

ARTICLE = (
    Path(__file__).resolve().parents[1] / "experiments" / "scenarios" / "article.toml"
).as_posix()
_SCRIPT = Path(sys.executable).with_name("podnetsim")
PODNETSIM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sim.cli.main"]

HEAD = f"""name = "bad"
scenario = "{ARTICLE}"
replications = 2
duration_s = 0.004
warmup_s = 0.001
replace_flows = true
"""

PROBE = """
[[flows]]
name = "probe"
kind = "poisson"
size_bytes = 1500
rate_gbps = 1.0
"""

SWEEP = """
[sweep]
placement = ["same-node", "cross-node"]
"flows.probe.rate_gbps" = [1.0, 2.0]
"""

GOOD = HEAD + PROBE + SWEEP

#: id -> (file text, CLI extras, field named in the message, other words it must hold)
CASES: dict[str, tuple[str, list[str], str | None, list[str]]] = {
    "unknown-flow-field": (
        HEAD + PROBE + SWEEP + '"flows.probe.rat_gbps" = [1.0]\n',
        [],
        "sweep.flows.probe.rat_gbps",
        ["rat_gbps", "unknown field", "rate_gbps"],
    ),
    "unknown-cost-table": (
        HEAD + PROBE + SWEEP + '"costs.nope.x" = [1.0]\n',
        [],
        "sweep.costs.nope.x",
        ["nope", "unknown field"],
    ),
    "unknown-flow-name": (
        HEAD + PROBE + SWEEP + '"flows.nope.rate_gbps" = [1.0]\n',
        [],
        "sweep.flows.nope.rate_gbps",
        ["'nope'"],
    ),
    "zipped-unknown-path": (
        HEAD + PROBE + '[zip]\nplacement = ["same-node"]\n"costs.veth.nope" = [1.0]\n',
        [],
        "zip.costs.veth.nope",
        ["unknown field"],
    ),
    "set-unknown-path": (
        HEAD + PROBE + SWEEP + '[set]\n"costs.nope.x" = 1.0\n',
        [],
        "set.costs.nope.x",
        ["unknown field"],
    ),
    "bad-value": (
        HEAD + PROBE + '[sweep]\nplacement = ["same-node"]\n"flows.probe.rate_gbps" = [1.0, "x"]\n',
        [],
        "sweep.flows.probe.rate_gbps",
        ["'x'"],
    ),
    "empty-sweep-list": (
        HEAD + PROBE + '[sweep]\nplacement = ["same-node"]\n"flows.probe.rate_gbps" = []\n',
        [],
        "sweep.flows.probe.rate_gbps",
        ["empty"],
    ),
    "empty-quick-sweep-list": (
        GOOD + '[quick]\nsweep = { "flows.probe.rate_gbps" = [] }\n',
        ["--quick"],
        "quick.sweep.flows.probe.rate_gbps",
        ["empty"],
    ),
    "quick-changes-unswept": (
        GOOD + '[quick]\nsweep = { "flows.probe.size_bytes" = [64] }\n',
        ["--quick"],
        "quick.sweep.flows.probe.size_bytes",
        [],
    ),
    "sweep-not-a-list": (
        HEAD + PROBE + '[sweep]\nplacement = "same-node"\n',
        [],
        "sweep.placement",
        ["list"],
    ),
    "replications-zero": (
        GOOD.replace("replications = 2", "replications = 0"),
        [],
        "replications",
        ["1"],
    ),
    "quick-replications-zero": (
        GOOD + "[quick]\nreplications = 0\n",
        ["--quick"],
        "quick.replications",
        [],
    ),
    "unknown-placement": (
        HEAD + PROBE + '[sweep]\nplacement = ["same-node", "moon"]\n',
        [],
        "sweep.placement",
        ["'moon'", "same-node", "cross-node"],
    ),
    "unknown-top-level-field": (
        HEAD + "replicatoins = 3\n" + PROBE + SWEEP,
        [],
        "replicatoins",
        ["unknown field", "replications"],
    ),
    "malformed-toml": (
        GOOD.replace("[sweep]", "[sweep"),
        [],
        None,
        ["malformed TOML", "line"],
    ),
    "zip-lengths-differ": (
        HEAD
        + PROBE
        + '[zip]\nplacement = ["same-node", "cross-node"]\n"flows.probe.rate_gbps" = [1.0]\n',
        [],
        "zip",
        ["differ in length", "placement: 2", "flows.probe.rate_gbps: 1"],
    ),
    "swept-and-zipped": (
        GOOD + '[zip]\n"flows.probe.rate_gbps" = [1.0]\n',
        [],
        "zip.flows.probe.rate_gbps",
        ["both"],
    ),
    "warmup-not-shorter": (
        GOOD.replace("warmup_s = 0.001", "warmup_s = 0.004"),
        [],
        "warmup_s",
        [],
    ),
    "missing-scenario": (
        GOOD.replace(ARTICLE, "no/such/scenario.toml"),
        [],
        "scenario",
        ["not found"],
    ),
    "no-flows": (
        HEAD + 'flows = []\n[sweep]\n"costs.veth.per_packet_us" = [0.1]\n',
        [],
        "flows",
        ["nothing to measure"],
    ),
    # -- the name becomes a directory: a plain, short name (issue 9) --
    "name-absolute-path": (
        GOOD.replace('name = "bad"', 'name = "/tmp/elsewhere"'),
        [],
        "name",
        ["not a plain name", "'/'"],
    ),
    "name-parent-dir": (
        GOOD.replace('name = "bad"', 'name = "../x"'),
        [],
        "name",
        ["not a plain name", "'..'"],
    ),
    "name-separator": (
        GOOD.replace('name = "bad"', 'name = "a/b"'),
        [],
        "name",
        ["not a plain name"],
    ),
    "name-300-characters": (
        GOOD.replace('name = "bad"', f'name = "{"n" * 300}"'),
        [],
        "name",
        ["300 characters", "at most 64"],
    ),
    # -- experiment mistakes found before the first run (issue 9) --
    "placement-not-strings": (
        HEAD + PROBE + "[sweep]\nplacement = [1, 2]\n",
        [],
        "sweep.placement",
        ["strings"],
    ),
    "placement-unknown-endpoint": (
        HEAD
        + PROBE
        + '[placements.mine]\nsrc = "client"\ndst = "nope"\n'
        + '[sweep]\nplacement = ["same-node", "mine"]\n',
        [],
        "placements.mine.dst",
        ["'nope'"],
    ),
    "flow-unknown-endpoint": (
        HEAD + PROBE.replace('name = "probe"', 'name = "probe"\nsrc = "client"\ndst = "nope"'),
        [],
        "flows.0.dst",
        ["'nope'"],
    ),
    "pod-pairs-too-many": (
        HEAD + PROBE + '[sweep]\nplacement = ["same-node"]\npod_pairs = [1, 1000]\n',
        [],
        "sweep.pod_pairs",
        ["1000"],
    ),
    "sweep-mixed-types": (
        HEAD
        + PROBE
        + '[sweep]\nplacement = ["same-node"]\n"flows.probe.size_bytes" = [64, "imix", 1500]\n',
        [],
        "sweep.flows.probe.size_bytes",
        ["mix types", "'imix'"],
    ),
    "sweep-list-values": (
        HEAD + PROBE + '[sweep]\n"pods.0.containers.0.ports" = [[80], [443]]\n',
        [],
        "sweep.pods.0.containers.0.ports",
        ["[80]", "list"],
    ),
    "sweep-infinite-value": (
        HEAD + PROBE + '[sweep]\n"flows.probe.rate_gbps" = [1.0, inf]\n',
        [],
        "sweep.flows.probe.rate_gbps",
        ["finite"],
    ),
    "plots-x-typo": (
        GOOD + '[plots]\nx = "flows.probe.rate_gbp"\n',
        [],
        "plots.x",
        ["'flows.probe.rate_gbp'", "flows.probe.rate_gbps"],
    ),
    "plots-x-not-numeric": (
        GOOD + '[plots]\nx = "placement"\n',
        [],
        "plots.x",
        ["non-numeric"],
    ),
    "plots-group-typo": (
        GOOD + '[plots]\ngroup = "placment"\n',
        [],
        "plots.group",
        ["'placment'"],
    ),
    "run-work-past-ceiling": (
        GOOD.replace('rate_gbps" = [1.0, 2.0]', 'rate_gbps" = [1.0, 1e6]'),
        [],
        "sweep.flows.probe.rate_gbps",
        ["packets", "past the ceiling of 10,000,000", "shorten simulation.duration_s"],
    ),
    "replications-1e9": (
        GOOD.replace("replications = 2", "replications = 1e9"),
        [],
        "replications",
        ["4,000,000,000 runs", "--max-runs 4000000000"],
    ),
    "sweep-grid-too-big": (
        HEAD
        + PROBE
        + "[sweep]\n"
        + "".join(f'"set{i}" = [{", ".join(str(v) for v in range(10))}]\n' for i in range(12)),
        [],
        "replications",
        ["1,000,000,000,000 configurations", "--max-runs"],
    ),
}


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "exp.toml"
    p.write_text(text, encoding="utf-8")
    return p


def one_error_line(stderr: str) -> str:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def check_message(line: str, path: Path, field: str | None, words: list[str]) -> None:
    assert f"error: {path}: " in line, line
    if field is not None:
        assert f": {field}: " in line, line
    for w in words:
        assert w in line, (w, line)


def test_good_base_is_valid(tmp_path) -> None:
    from sim.batch import load_experiment

    batch = load_experiment(write(tmp_path, GOOD))
    assert len(batch.runs) == 8


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_experiment_one_line_exit_2(tmp_path, case: str) -> None:
    text, extra, field, words = CASES[case]
    path = write(tmp_path, text)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--no-plots", *extra])
    assert res.exit_code == 2, res.output
    assert isinstance(res.exception, SystemExit)
    line = one_error_line(res.stderr)
    check_message(line, path, field, words)
    assert res.stdout == ""
    assert not out.exists()  # nothing written for a file that does not load


@pytest.mark.parametrize("case", ["unknown-cost-table", "malformed-toml", "zip-lengths-differ"])
def test_bad_experiment_subprocess(tmp_path, case: str) -> None:
    text, extra, field, words = CASES[case]
    path = write(tmp_path, text)
    out = tmp_path / "out"
    proc = subprocess.run(
        [*PODNETSIM, "run", str(path), "--out", str(out), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    check_message(one_error_line(proc.stderr), path, field, words)
    assert proc.stdout == ""
    assert not out.exists()


def test_missing_experiment_file(tmp_path) -> None:
    path = tmp_path / "nope.toml"
    res = CliRunner().invoke(cli, ["run", str(path), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    line = one_error_line(res.stderr)
    assert str(path) in line and "not found" in line


# -- a run that fails at run time -------------------------------------------------------

TRACE = "time_s,size_bytes,src,dst\n0.0012,1500,client,web\n0.0016,1500,api,web\n"


@pytest.mark.parametrize("jobs", [1, 2])
def test_failed_run_is_reported_and_the_others_stored(tmp_path, monkeypatch, jobs: int) -> None:
    """A trace file deleted after expansion makes two configurations fail at run time."""
    good, doomed = tmp_path / "good.csv", tmp_path / "doomed.csv"
    good.write_text(TRACE)
    doomed.write_text(TRACE)
    text = (
        HEAD
        + PROBE.replace('name = "probe"', 'name = "probe"\nsrc = "client"\ndst = "web"')
        + f'\n[[flows]]\nname = "tr"\nkind = "trace"\ntrace_file = "{good.as_posix()}"\n'
        + f'\n[sweep]\n"flows.tr.trace_file" = ["{good.as_posix()}", "{doomed.as_posix()}"]\n'
        + '"flows.probe.rate_gbps" = [1.0, 2.0]\n'
    )
    path = write(tmp_path, text)
    out = tmp_path / "out"
    real_load = driver.load_experiment

    def load_then_delete(*args, **kwargs):
        batch = real_load(*args, **kwargs)
        doomed.unlink()
        return batch

    with monkeypatch.context() as m:
        m.setattr(driver, "load_experiment", load_then_delete)
        res = CliRunner().invoke(
            cli, ["run", str(path), "--out", str(out), "--jobs", str(jobs), "--no-plots"]
        )
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output
    assert re.search(r"4 runs done, 0 reused, 4 failed", res.stdout), res.stdout
    failed = {}
    for line in res.stderr.splitlines():
        if line.startswith("FAILED "):
            run_id = line.split()[1]
            failed[run_id] = line
    # configurations 2 and 3 use the deleted file (trace file is the outer sweep axis)
    assert sorted(failed) == ["c002-r00", "c002-r01", "c003-r00", "c003-r01"]
    for run_id, line in failed.items():
        assert doomed.as_posix() in line  # its parameters ...
        rate = "1.0" if run_id.startswith("c002") else "2.0"
        assert f"'flows.probe.rate_gbps': {rate}" in line
        assert "cannot read trace file" in line  # ... and its error
    # every other run is stored, in the run files and the tables
    stored = sorted(p.stem for p in (out / "runs").glob("*.json"))
    assert stored == ["c000-r00", "c000-r01", "c001-r00", "c001-r01"]
    runs = pd.read_csv(out / "runs.csv")  # one row per run and flow (probe, tr)
    assert list(runs["run_id"]) == [r for r in stored for _ in ("probe", "tr")]
    assert list(runs["flow"]) == ["probe", "tr"] * len(stored)
    assert (runs["delivered"] > 0).all()
    summary = pd.read_csv(out / "summary.csv")
    assert list(summary["config"]) == [0, 0, 1, 1]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_count"] == 4 and manifest["runs_expected"] == 8
    assert sorted(f["run_id"] for f in manifest["failures"]) == sorted(failed)
    for f in manifest["failures"]:
        assert f["params"]["flows.tr.trace_file"] == doomed.as_posix()
        assert "cannot read trace file" in f["error"]

    # with the file back, --resume runs just the failed ones
    shutil.copy(good, doomed)
    res = CliRunner().invoke(cli, ["run", str(path), "--out", str(out), "--resume", "--no-plots"])
    assert res.exit_code == 0, res.output
    assert "4 runs done, 4 reused, 0 failed" in res.stdout
    assert len(pd.read_csv(out / "runs.csv")) == 8 * 2  # 8 runs x 2 flows
