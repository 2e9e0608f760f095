"""`podnetsim run` on Dask: a LocalCluster, a real `dask scheduler` + `dask worker` pair.

Every Dask result is compared byte for byte with a ``--jobs 1`` run of the same
experiment (runs are pure functions of their spec). Also: a worker killed
mid-batch (Dask reschedules its runs, each run is stored once), ``--resume`` after
an interrupted Dask batch (finished runs are not recomputed), a failed run (its
parameters and error reported, the others stored), and the errors without Dask
or without a reachable scheduler (exit 2, one line, no traceback).

Scheduler and worker subprocesses run in their own sessions on 127.0.0.1 and are
always killed (whole process group) when a test ends.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("distributed")

from sim.batch import run_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ARTICLE = ROOT / "experiments" / "scenarios" / "article.toml"
BIN = Path(sys.executable).parent
_SCRIPT = BIN / "podnetsim"
PODNETSIM = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "sim.cli.main"]
_DASK = BIN / "dask"
DASK = [str(_DASK)] if _DASK.exists() else [sys.executable, "-m", "distributed.cli.dask_main"]

#: Bound of every wait in this module, seconds.
WAIT_S = 60


def _experiment(
    path: Path,
    name: str,
    *,
    replications: int,
    duration_s: float,
    rates: list[float],
) -> Path:
    path.write_text(
        f"""\
name = "{name}"
scenario = "{ARTICLE.as_posix()}"
replications = {replications}
duration_s = {duration_s}
warmup_s = {duration_s / 10}
seed = 17
engine = "simpy"
replace_flows = true

[[flows]]
name = "probe"
kind = "poisson"
size_bytes = 1500
rate_gbps = 1.0

[sweep]
placement = ["same-node", "cross-node"]
"flows.probe.rate_gbps" = {rates!r}
""",
        encoding="utf-8",
    )
    return path


def podnetsim(*args: str, timeout: float = WAIT_S * 2) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*PODNETSIM, *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _reference(tmp: Path, exp: Path) -> bytes:
    """runs.csv of a ``--jobs 1`` run of ``exp``."""
    out = tmp / "ref"
    rep = run_experiment(exp, out, jobs=1, plots=False)
    assert not rep.failures and rep.ran == rep.total
    return (out / "runs.csv").read_bytes()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, bytes]:
    """12 runs of a few ms each, and their ``--jobs 1`` runs.csv."""
    tmp = tmp_path_factory.mktemp("tiny")
    exp = _experiment(
        tmp / "tiny.toml", "dask-tiny", replications=3, duration_s=0.004, rates=[1.0, 4.0]
    )
    return exp, _reference(tmp, exp)


@pytest.fixture(scope="module")
def slow(tmp_path_factory) -> tuple[Path, bytes]:
    """12 runs of roughly 0.2-0.4 s each (long enough to act part-way), and the reference."""
    tmp = tmp_path_factory.mktemp("slow")
    exp = _experiment(
        tmp / "slow.toml", "dask-slow", replications=3, duration_s=0.1, rates=[2.0, 3.0]
    )
    return exp, _reference(tmp, exp)


def _assert_complete(out: Path, ref: bytes, total: int) -> None:
    """Every run present once (runs/ and runs.csv), and runs.csv == the --jobs 1 one."""
    files = sorted(p.stem for p in (out / "runs").glob("*.json"))
    assert len(files) == total
    df = pd.read_csv(out / "runs.csv")
    assert len(df) == total and df["run_id"].is_unique
    assert sorted(df["run_id"]) == files
    assert (out / "runs.csv").read_bytes() == ref


def _stored(out: Path) -> int:
    return len(_stored_ids(out))


def _stored_ids(out: Path) -> set[str]:
    runs = out / "runs"
    return {p.stem for p in runs.glob("*.json")} if runs.is_dir() else set()


def _wait_stored(out: Path, n: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while _stored(out) < n:
        assert proc.poll() is None, "the batch ended before the test could act"
        assert time.monotonic() < deadline, f"fewer than {n} runs stored after {WAIT_S} s"
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_group(p: subprocess.Popen) -> None:
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


class Cluster:
    """A `dask scheduler` and `dask worker` subprocesses on 127.0.0.1.

    Each runs in its own session, so killing its process group takes a worker's
    nanny and worker process together. :meth:`close` kills them all.
    """

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.address = ""
        self.workers: list[subprocess.Popen] = []
        self._procs: list[subprocess.Popen] = []

    def _start(self, name: str, args: list[str]) -> subprocess.Popen:
        with open(self.logs / f"{name}-{len(self._procs)}.log", "wb") as log:
            p = subprocess.Popen(
                [*DASK, *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self._procs.append(p)
        return p

    def start(self, n_workers: int) -> None:
        port = _free_port()
        opts = f"--host 127.0.0.1 --port {port} --dashboard-address 127.0.0.1:0"
        sched = self._start("scheduler", ["scheduler", *opts.split()])
        self.address = f"tcp://127.0.0.1:{port}"
        deadline = time.monotonic() + WAIT_S
        while True:
            assert sched.poll() is None, "dask scheduler exited"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "dask scheduler did not start"
                time.sleep(0.1)
        opts = "--nthreads 1 --nworkers 1 --host 127.0.0.1 --no-dashboard --death-timeout 30"
        for _ in range(n_workers):
            self.workers.append(self._start("worker", ["worker", self.address, *opts.split()]))
        from distributed import Client

        with Client(self.address, timeout="20s") as client:
            client.wait_for_workers(n_workers, timeout=WAIT_S)

    def close(self) -> None:
        for p in reversed(self._procs):
            _kill_group(p)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[Cluster]:
    """A real `dask scheduler` with two `dask worker` subprocesses (one per process)."""
    c = Cluster(tmp_path_factory.mktemp("dask-logs"))
    try:
        c.start(n_workers=2)
        yield c
    finally:
        c.close()


# -- results equal --jobs 1 -----------------------------------------------------------
def test_dask_local_equals_jobs_1_byte_for_byte(tiny, tmp_path):
    exp, ref = tiny
    out = tmp_path / "out"
    r = podnetsim("run", str(exp), "--out", str(out), "--dask-local", "2", "--no-plots")
    assert r.returncode == 0, r.stderr
    assert "LocalCluster of 2 workers" in r.stderr
    assert "[12/12]" in r.stderr  # progress, one line per run
    assert "12 runs done, 0 reused, 0 failed" in r.stdout
    _assert_complete(out, ref, 12)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"]["kind"] == "dask"
    assert manifest["executor"]["local_workers"] == 2


def test_scheduler_and_worker_subprocesses_equal_jobs_1(tiny, cluster, tmp_path):
    exp, ref = tiny
    out = tmp_path / "out"
    r = podnetsim("run", str(exp), "--out", str(out), "--scheduler", cluster.address, "--no-plots")
    assert r.returncode == 0, r.stderr
    assert f"Dask: {cluster.address}" in r.stderr
    _assert_complete(out, ref, 12)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["executor"] == {
        "kind": "dask",
        "scheduler": cluster.address,
        "local_workers": None,
    }
    assert manifest["failures"] == []


# -- a failed run ---------------------------------------------------------------------
def test_failed_run_is_reported_and_others_stored(cluster, tmp_path):
    """A trace file that exists for one configuration only: the other one fails on the
    workers, at run time (expansion does not read trace files)."""
    good = tmp_path / "good.csv"
    gone = tmp_path / "gone.csv"  # missing when the batch runs
    t, lines = 0.0, ["time_s,size_bytes,src,dst"]
    while t < 0.004:
        t += 2e-5
        lines.append(f"{t:.6f},1500,client,web")
    good.write_text("\n".join(lines) + "\n")
    exp = tmp_path / "trace.toml"
    exp.write_text(
        f"""\
name = "dask-trace"
scenario = "{ARTICLE.as_posix()}"
replications = 2
duration_s = 0.004
warmup_s = 0.001
seed = 3
replace_flows = true

[[flows]]
name = "replay"
kind = "trace"
trace_file = "{good.as_posix()}"

[sweep]
"flows.replay.trace_file" = ["{good.as_posix()}", "{gone.as_posix()}"]
""",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    r = podnetsim("run", str(exp), "--out", str(out), "--scheduler", cluster.address, "--no-plots")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert "2 runs done, 0 reused, 2 failed" in r.stdout
    params = {"flows.replay.trace_file": gone.as_posix()}
    for run_id in ("c001-r00", "c001-r01"):
        line = next(ln for ln in r.stderr.splitlines() if ln.startswith(f"FAILED {run_id}"))
        assert str(params) in line and "cannot read trace file" in line
    assert sorted(p.stem for p in (out / "runs").glob("*.json")) == ["c000-r00", "c000-r01"]
    assert list(pd.read_csv(out / "runs.csv")["run_id"]) == ["c000-r00", "c000-r01"]
    manifest = json.loads((out / "manifest.json").read_text())
    failures = sorted(manifest["failures"], key=lambda f: f["run_id"])
    assert [f["run_id"] for f in failures] == ["c001-r00", "c001-r01"]
    assert all(f["params"] == params and "cannot read trace file" in f["error"] for f in failures)

    # once the file is there, --resume runs just the failed runs
    shutil.copy(good, gone)
    rep = run_experiment(exp, out, resume=True, plots=False)
    assert (rep.reused, rep.ran, rep.failures) == (2, 2, [])


# -- resume ---------------------------------------------------------------------------
def test_resume_on_dask_after_interrupt(slow, cluster, tmp_path):
    """Ctrl-C a batch on the scheduler part-way; `--resume --dask-local 2` finishes it."""
    exp, ref = slow
    out = tmp_path / "out"
    args = ["run", str(exp), "--out", str(out), "--no-plots"]
    batch = subprocess.Popen(
        [*PODNETSIM, *args, "--scheduler", cluster.address],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Python honours Ctrl-C only if SIGINT is not ignored when it starts
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        _wait_stored(out, 3, batch)
        batch.send_signal(signal.SIGINT)
        _, stderr = batch.communicate(timeout=WAIT_S)
    finally:
        _kill_group(batch)
    assert batch.returncode == 130, stderr
    assert "interrupted" in stderr
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "runs").glob("*.json")}
    assert 3 <= len(kept) < 12
    time.sleep(0.05)  # a rewrite would show in st_mtime_ns

    r = podnetsim(*args, "--resume", "--dask-local", "2")
    assert r.returncode == 0, r.stderr
    assert f"{12 - len(kept)} runs done, {len(kept)} reused, 0 failed" in r.stdout
    assert f"12 runs, {len(kept)} already done" in r.stderr
    for name, mtime in kept.items():
        assert (out / "runs" / name).stat().st_mtime_ns == mtime, f"{name} was recomputed"
    _assert_complete(out, ref, 12)


# -- a worker dies --------------------------------------------------------------------
def test_killed_worker_runs_are_rescheduled(slow, cluster, tmp_path):
    """SIGKILL one of the two workers (nanny and worker) while it runs a run."""
    from distributed import Client

    def _computed(dask_scheduler, since: float) -> list[str]:
        # keys of podnetsim runs that reached memory on a worker after `since`
        # (nested: cloudpickle sends it by value, the scheduler cannot import tests)
        return [
            str(t[0])
            for t in dask_scheduler.transition_log
            if t[2] == "memory" and t[5] >= since and str(t[0]).startswith("podnetsim-")
        ]

    exp, ref = slow
    out = tmp_path / "out"
    args = ["run", str(exp), "--out", str(out), "--scheduler", cluster.address, "--no-plots"]
    with Client(cluster.address, timeout="20s") as client:
        client.wait_for_workers(2, timeout=WAIT_S)
        since = time.time()
        batch = subprocess.Popen(
            [*PODNETSIM, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            _wait_stored(out, 3, batch)
            deadline = time.monotonic() + WAIT_S
            victim = None
            while victim is None:
                assert time.monotonic() < deadline, "no worker is running a run"
                busy = [a for a, keys in client.processing().items() if keys]
                if busy:
                    pid = client.run(os.getpid, workers=busy[:1])[busy[0]]
                    victim = next(w for w in cluster.workers if w.pid == os.getpgid(pid))
                else:
                    time.sleep(0.02)
            stored_at_kill = _stored_ids(out)
            os.killpg(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            stdout, stderr = batch.communicate(timeout=WAIT_S * 2)
        finally:
            _kill_group(batch)
        computed = client.run_on_scheduler(_computed, since=since)
    assert len(stored_at_kill) < 12, "the batch finished before the worker was killed"
    assert batch.returncode == 0, stderr
    assert "12 runs done, 0 reused, 0 failed" in stdout
    reported = re.findall(r"^\[\d+/12\] (c\d+-r\d+) .* done \(\d+\.\d s\)$", stderr, flags=re.M)
    assert len(reported) == 12 and len(set(reported)) == 12  # each run once
    _assert_complete(out, ref, 12)
    # every run computed; the runs lost with the worker are redone (one that finished
    # there but was not yet fetched by the batch is lost too), and runs already stored
    # are not recomputed although their results were on the dead worker
    run_ids = [key.split("-", 1)[1].rsplit("-", 1)[0] for key in computed]
    assert len(set(run_ids)) == 12, sorted(computed)
    redone = {r for r in run_ids if run_ids.count(r) > 1}
    assert not redone & stored_at_kill, (sorted(redone), sorted(stored_at_kill))
    assert len(run_ids) - 12 <= 4, sorted(computed)  # only what the victim held unfetched


# -- errors ---------------------------------------------------------------------------
def _one_error_line(output: str) -> str:
    assert "Traceback" not in output, output
    lines = [ln for ln in output.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]


def test_without_dask_says_how_to_install(tiny, tmp_path):
    exp, _ = tiny
    hide = (
        "import sys; sys.modules['distributed'] = None; sys.modules['dask'] = None; "
        "from sim.cli.main import main; sys.argv = ['podnetsim'] + sys.argv[1:]; main()"
    )
    for flag in (["--dask-local", "2"], ["--scheduler", "tcp://127.0.0.1:8786"]):
        r = subprocess.run(
            [sys.executable, "-c", hide, "run", str(exp), "--out", str(tmp_path / "o"), *flag],
            capture_output=True,
            text=True,
            timeout=WAIT_S,
            check=False,
        )
        assert r.returncode == 2, r.stderr
        line = _one_error_line(r.stderr)
        assert "Dask distributed is not installed" in line
        assert "pip install 'podnetsim[dask]'" in line
    assert not (tmp_path / "o").exists()


def test_unreachable_scheduler_is_a_clear_error(tiny, tmp_path):
    from click.testing import CliRunner

    from sim.cli.main import cli

    exp, _ = tiny
    out = tmp_path / "out"
    closed = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    start = time.monotonic()
    r = podnetsim("run", str(exp), "--out", str(out), "--scheduler", closed, timeout=WAIT_S)
    assert time.monotonic() - start < WAIT_S  # the client's connect timeout is 15 s
    assert r.returncode == 2, r.stderr
    line = _one_error_line(r.stderr)
    assert f"--scheduler: cannot reach the Dask scheduler at {closed}" in line
    assert "dask scheduler" in line
    for bad in ("http://127.0.0.1:1", "no-port"):
        res = CliRunner().invoke(cli, ["run", str(exp), "--out", str(out), "--scheduler", bad])
        assert res.exit_code == 2, res.output
        assert "cannot reach the Dask scheduler" in _one_error_line(res.output)
    res = CliRunner().invoke(cli, ["run", str(exp), "--scheduler", closed, "--dask-local", "2"])
    assert res.exit_code == 2
    assert "--scheduler and --dask-local contradict each other" in res.output
    assert not out.exists()  # nothing written without a cluster
