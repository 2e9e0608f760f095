"""``podnetsim testbed load``: bounded options, and one short run on the kernel."""

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.cli import testbed_cmds
from sim.testbed import netns

from .kernel import PID, requires_kernel, root_state

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "experiments" / "scenarios" / "noisy-neighbour.toml"
PREFIX = f"pnc-{PID}-"
PAIRS = ["--same", "client", "web", "--cross", "api", "web", "--background", "noisy", "sink"]


@pytest.mark.parametrize(
    ("option", "value"), [("--load", "2"), ("--duration", "0.5"), ("--repeats", "100")]
)
def test_options_are_bounded_before_anything_starts(option, value):
    args = ["load", str(SCENARIO), *PAIRS, option, value, "--prefix", PREFIX]
    res = CliRunner().invoke(testbed_cmds.testbed, args)
    assert res.exit_code == 2 and "Traceback" not in res.output
    lines = [ln for ln in res.output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and option in lines[0] and "Fix:" in lines[0], res.output


def test_output_folder_is_checked_before_measuring(tmp_path):
    args = ["load", str(SCENARIO), *PAIRS, "-o", str(tmp_path / "no" / "x.json")]
    res = CliRunner().invoke(testbed_cmds.testbed, [*args, "--prefix", PREFIX])
    assert res.exit_code == 2 and "--output" in res.output and "Traceback" not in res.output


@requires_kernel
@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs")
def test_one_short_round_prints_every_case_and_writes_json(tmp_path):
    """One round of 1 s runs: every case printed and stored, the replica removed."""
    before = root_state()
    out = tmp_path / "loaded.json"
    args = ["load", str(SCENARIO), *PAIRS, "--repeats", "1", "--duration", "1"]
    args += ["--prefix", PREFIX, "-o", str(out)]
    try:
        res = CliRunner().invoke(testbed_cmds.testbed, args)
    finally:
        netns.down(PREFIX)
    assert res.exit_code == 0, res.output
    doc = json.loads(out.read_text(encoding="utf-8"))
    cases = [r["case"] for r in doc["rows"]]
    assert len(cases) == 6 and all(c in res.output for c in cases)
    assert all(r["measured"] > 0 and r["predicted"] > 0 for r in doc["rows"])
    assert doc["overload"]["kernel"] in ("socket buffer", "backlog", "none")
    assert "overload (same-node 64 B flood" in res.output
    assert netns.list_namespaces(PREFIX) == []
    assert root_state() == before, "the root namespace changed"
