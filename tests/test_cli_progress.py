"""Progress and verbosity (issue 10): a bar on a terminal, a line per run otherwise,
``-q``/``-v`` on every verb, ``--version``, ``-j`` for ``--jobs``."""

from __future__ import annotations

import io
import re
from pathlib import Path
from types import SimpleNamespace

import click
from click.testing import CliRunner
from rich.console import Console

import sim
from sim.cli.main import cli
from sim.cli.progress import BatchProgress, describe, set_verbosity

SMALL = Path(__file__).resolve().parent / "data" / "batch" / "small.toml"


def _verbs(group: click.Group, prefix=()):
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            yield from _verbs(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


def test_every_verb_takes_quiet_and_verbose() -> None:
    verbs = dict(_verbs(cli))
    assert {("run",), ("plot",), ("report",), ("bench",), ("testbed", "measure")} <= set(verbs)
    for path, cmd in verbs.items():
        opts = {o for p in cmd.params for o in getattr(p, "opts", ())}
        assert {"-q", "--quiet", "-v", "--verbose"} <= opts, path


def test_version_and_jobs_alias() -> None:
    res = CliRunner().invoke(cli, ["--version"])
    assert res.exit_code == 0 and res.stdout.strip() == f"podnetsim, version {sim.__version__}"
    res = CliRunner().invoke(cli, ["run", str(SMALL), "-j", "0"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "run: --jobs: 0 is not in the range" in res.stderr


def test_off_a_terminal_one_line_per_run_with_parameters(tmp_path) -> None:
    out = tmp_path / "res"
    args = ["run", str(SMALL), "--quick", "--out", str(out), "--no-plots"]
    res = CliRunner().invoke(cli, [*args, "-j", "1"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("[")]
    assert len(lines) == 8  # 2 placements x 2 loads x 2 quick replications
    pattern = re.compile(
        r"\[(\d+)/8\] c00[0-3]-r0[01] placement=(same|cross)-node rate_gbps=(1|4)\.0 rep=[01] "
        r"done \(\d+\.\d s\)"
    )
    assert [int(pattern.fullmatch(ln).group(1)) for ln in lines] == list(range(1, 9))
    quiet = CliRunner().invoke(cli, [*args, "--resume", "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == ""
    assert "0 runs done, 8 reused" in quiet.stdout


def test_on_a_terminal_a_bar_names_the_parameters() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=200, color_system=None)
    set_verbosity(1)
    bar = BatchProgress("podnetsim run exp.toml", console=console)
    assert bar.tty
    bar.start(4, 1)
    spec = SimpleNamespace(
        run_id="c013-r06", replication=6,
        params={"placement": "cross-node", "flows.probe.rate_gbps": 7.5},
    )  # fmt: skip
    bar.step(spec, None)
    bar.stop()
    text = buf.getvalue()
    assert "placement=cross-node rate_gbps=7.5 rep=6" in text
    assert "2/4" in text and "ETA" in text and "c013-r06" not in text


def test_describe_uses_short_names() -> None:
    assert describe({"placement": "same-node", "flows.n.window_packets": 8}) == (
        "placement=same-node window_packets=8"
    )
