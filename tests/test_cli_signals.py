"""SIGINT and SIGTERM on ``plot``, ``report``, ``testbed tcp`` and ``run --params``.

Every verb runs inside the top group's signal handling (``sim/cli/main.py``): a
Ctrl-C (SIGINT) or a ``timeout``/CI kill (SIGTERM) ends it with one line and
exit 128 + the signal (130, 143), as ``tests/test_batch_signals.py`` asserts for
``run``; clean-ups (``finally``) run, so no temporary file and no namespace is
left behind. In process, the signal is sent from inside the verb at a chosen
moment (deterministic); one subprocess trial per signal checks the console
script end to end.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from sim.batch import run_experiment
from sim.cli.main import cli

SMALL = Path(__file__).resolve().parent / "data" / "batch" / "small.toml"
ARTICLE = Path(__file__).resolve().parents[1] / "experiments" / "scenarios" / "article.toml"
EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}
SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=str)
_SCRIPT = Path(sys.executable).with_name("podnetsim")
PODNETSIM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sim.cli.main"]


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("res") / "small"
    run_experiment(SMALL, out, plots=False)
    return out


def _one_line(res, verb: str, sig: signal.Signals) -> str:
    assert res.exit_code == EXIT[sig], (res.exit_code, res.output, res.exception)
    assert "Traceback" not in res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0] == f"interrupted by {sig.name}: podnetsim {verb} stopped", lines[0]
    return lines[0]


def _kill_on_call(monkeypatch, module, name: str, sig: signal.Signals, nth: int = 1) -> list:
    """Replace ``module.name`` so that its ``nth`` call sends ``sig`` to this process."""
    calls: list = []
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(args)
        if len(calls) == nth:
            os.kill(os.getpid(), sig)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


@SIGNALS
def test_plot_interrupted_between_figures_leaves_no_partial_file(
    tmp_path, results, monkeypatch, sig
) -> None:
    import sim.plots.draw as draw

    root = tmp_path / "res"
    shutil.copytree(results, root)

    def write_then_signal(path, write):  # the signal lands between write and rename
        def write_it(tmp):
            write(tmp)
            if path.suffix == ".svg":
                os.kill(os.getpid(), sig)

        return real(path, write_it)

    real = draw.atomic_write
    monkeypatch.setattr(draw, "atomic_write", write_then_signal)
    res = CliRunner().invoke(cli, ["plot", str(root)])
    _one_line(res, "plot", sig)
    made = sorted(p.name for p in (root / "plots").iterdir())
    assert len(made) == 1 and made[0].endswith(".png"), made  # the first figure's PNG only
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers put back


@SIGNALS
def test_report_interrupted_while_drawing_writes_no_report(
    tmp_path, results, monkeypatch, sig
) -> None:
    import sim.report.build as build

    calls = _kill_on_call(monkeypatch, build, "_png_uri", sig, nth=2)
    out = tmp_path / "r.html"
    res = CliRunner().invoke(cli, ["report", str(results), "-o", str(out)])
    _one_line(res, "report", sig)
    assert len(calls) == 2  # stopped at once, not after every figure
    assert list(tmp_path.iterdir()) == []


@SIGNALS
def test_testbed_tcp_interrupted_while_building_removes_the_replica(monkeypatch, sig) -> None:
    """A Ctrl-C while the replica is built or settles still removes it (no kernel here:
    the build and the removal are stubs that record their calls)."""
    from sim.testbed import netns, replica

    downs: list = []
    monkeypatch.setattr(netns, "require", lambda tools: None)
    monkeypatch.setattr(netns, "down", lambda prefix, **kw: downs.append(prefix) or [])
    monkeypatch.setattr(replica, "build", lambda *a, **kw: os.kill(os.getpid(), sig))
    args = ["testbed", "tcp", str(ARTICLE), "--same", "client", "web"]
    res = CliRunner().invoke(cli, [*args, "--cross", "client", "api", "--prefix", "tsig-"])
    _one_line(res, "testbed", sig)
    assert downs == ["tsig-"]


@SIGNALS
def test_run_with_params_interrupted_while_reading_them(tmp_path, monkeypatch, sig) -> None:
    import sim.validate.params as params

    p = tmp_path / "params.toml"
    p.write_text("[costs.veth]\nper_packet_us = 5.0\n[calibration]\nendpoint_us = 3.0\n")
    _kill_on_call(monkeypatch, params, "read_params", sig)
    out = tmp_path / "out"
    res = CliRunner().invoke(cli, ["run", str(SMALL), "--params", str(p), "--out", str(out)])
    assert res.exit_code == EXIT[sig], (res.output, res.exception)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"interrupted by {sig.name}: 0 finished")
    assert not (out / "runs").exists() or not list((out / "runs").iterdir())


def _caught(pid: int, sig: signal.Signals) -> bool:
    """Whether process ``pid`` has a handler for ``sig`` (its ``SigCgt`` mask)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = int(re.search(r"^SigCgt:\s*([0-9a-f]+)", status, re.M)[1], 16)
    return bool(mask >> (sig - 1) & 1)


@SIGNALS
def test_plot_subprocess_exits_with_one_line(tmp_path, results, sig) -> None:
    """The console script: the signal arrives once the verb has begun (SIGTERM caught)."""
    root = shutil.copytree(results, tmp_path / "res")
    proc = subprocess.Popen(
        [*PODNETSIM, "plot", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _caught(proc.pid, signal.SIGTERM) and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(proc.pid, sig) if sig == signal.SIGINT else os.kill(proc.pid, sig)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == EXIT[sig], (proc.returncode, err)
    assert err.strip() == f"interrupted by {sig.name}: podnetsim plot stopped", err
    assert not list(root.glob("plots/.*.tmp"))  # no temporary file left
