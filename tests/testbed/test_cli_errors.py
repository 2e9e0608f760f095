"""Clear one-line errors from the testbed verbs (no root needed)."""

import os

import pytest
from click.testing import CliRunner

from sim.cli import testbed_cmds
from sim.testbed import netns

PREFIX = f"pne-{os.getpid()}-"


def _one_line_error(res) -> str:
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [line for line in res.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, res.output
    return lines[0]


@pytest.fixture
def not_root(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)


@pytest.mark.parametrize(
    "args",
    [
        ["up", "ARTICLE"],
        ["down"],
        ["status"],
        ["measure", "ARTICLE"],
        ["tcp", "ARTICLE", "--same", "client", "web", "--cross", "api", "web"],
    ],
)
def test_missing_privilege_is_one_clear_line(not_root, article_path, args):
    args = [str(article_path) if a == "ARTICLE" else a for a in args] + ["--prefix", PREFIX]
    line = _one_line_error(CliRunner().invoke(testbed_cmds.testbed, args))
    assert "not running as root" in line and "Fix: run as root" in line


def test_missing_tool_is_one_clear_line(not_root, monkeypatch, article_path):
    real_which = netns.shutil.which
    monkeypatch.setattr(netns.shutil, "which", lambda t: None if t == "nft" else real_which(t))
    line = _one_line_error(CliRunner().invoke(testbed_cmds.testbed, ["up", str(article_path)]))
    assert "`nft` not found" in line and "apt-get" in line


def test_unmappable_scenario_is_one_clear_line(article_path):
    res = CliRunner().invoke(
        testbed_cmds.testbed,
        [
            "up",
            str(article_path),
            "--set",
            "masquerade.non_masquerade_cidrs=['10.0.0.0/25']",
        ],
    )
    assert "straddles" in _one_line_error(res)


def test_bad_scenario_and_prefix_are_clear(tmp_path):
    line = _one_line_error(
        CliRunner().invoke(testbed_cmds.testbed, ["up", str(tmp_path / "nope.toml")])
    )
    assert "file not found" in line
    res = CliRunner().invoke(testbed_cmds.testbed, ["down", "--prefix", "Bad Prefix"])
    assert res.exit_code == 2 and "prefix" in res.output and "Traceback" not in res.output
