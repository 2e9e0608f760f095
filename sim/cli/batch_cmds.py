"""``podnetsim run`` (local processes or Dask); ``plot`` is in :mod:`sim.cli.report_cmds`."""

from __future__ import annotations

import contextlib
import os
import signal
import sys

import click

from sim.cli.common import EXIT_FAILED, OWNS_PROCESS, SET_OPTION, parse_sets
from sim.cli.progress import BatchProgress as _Progress
from sim.cli.progress import echo_stderr
from sim.errors import UserError

PARAMS_OPTION = click.option(
    "--params",
    type=click.Path(dir_okay=False),
    metavar="PARAMS.toml",
    help="Per-hop costs fitted by `podnetsim calibrate`, applied to every run "
    "(before --set, which wins).",
)


def blame_params(err: UserError, params: str | None, overrides: dict) -> UserError:
    """Name the ``--params`` file in a scenario error caused by one of its costs."""
    if params and err.field in overrides:
        return UserError(err.problem, file=params, field=err.field, fix=err.fix)
    return err


@click.command()
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Results directory (default results/<experiment name>).",
)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Local worker processes.",
)
@click.option("--resume", is_flag=True, help="Finish a stored batch: run only missing runs.")
@click.option("--force", is_flag=True, help="Replace an existing results directory.")
@click.option("--quick", is_flag=True, help="Short runs, few replications (smoke test).")
@click.option("--no-plots", is_flag=True, help="Skip drawing plots.")
@click.option(
    "--independent-streams",
    is_flag=True,
    help="Give every configuration its own random streams (no common random numbers), "
    "e.g. to measure how much CRN narrows confidence intervals.",
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="Run on a Dask scheduler, e.g. tcp://host:8786 (needs podnetsim[dask]).",
)
@click.option(
    "--dask-local",
    type=click.IntRange(min=1),
    metavar="N",
    help="Run on a local Dask cluster of N workers (its dashboard address is printed).",
)
@click.option(
    "--max-runs",
    type=click.IntRange(min=1),
    metavar="N",
    help="Allow up to N runs (configurations x replications; default 10,000).",
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "simpy", "compiled"]),
    help="Engine of the runs (default: the file's `engine`, else auto: the compiled "
    "engine where every flow is open loop). Identical results.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Validate the experiment and list the runs it would do; run nothing.",
)
@PARAMS_OPTION
@SET_OPTION
def run(
    experiment: str,
    out: str | None,
    jobs: int,
    resume: bool,
    force: bool,
    quick: bool,
    no_plots: bool,
    independent_streams: bool,
    scheduler: str | None,
    dask_local: int | None,
    max_runs: int | None,
    engine: str | None,
    dry_run: bool,
    params: str | None,
    sets: tuple[str, ...],
) -> None:
    """Run the batch of EXPERIMENT and write tables, summary, manifest and plots.

    --params and --set apply to every run, after the experiment's [set] (the
    command line wins); the manifest records the params file's sha256.
    """
    from sim.batch.signals import stop_on_signals

    _check_flags(resume, force, scheduler, dask_local, jobs)
    crn = False if independent_streams else None
    progress = _Progress(f"podnetsim run {experiment}")
    with stop_on_signals(), _interrupts(progress):  # from the start: no traceback, ever
        from sim.batch import load_experiment, run_experiment

        cli_sets = {"params": params, "sets": parse_sets(sets)}
        if dry_run:
            batch = load_experiment(
                experiment, quick=quick, crn=crn, max_runs=max_runs, engine=engine, **cli_sets
            )
            for message in batch.warnings:
                _warn(message)
            _list_runs(batch)
            return
        opts = {
            **cli_sets,
            "resume": resume,
            "force": force,
            "quick": quick,
            "plots": not no_plots,
            "crn": crn,
            "max_runs": max_runs,
            "engine": engine,
            "on_warning": _warn,
        }
        if scheduler or dask_local:
            _run_on_dask(experiment, out, opts, scheduler, dask_local)
            return
        rep = run_experiment(
            experiment, out, jobs=jobs, on_start=progress.start, on_done=progress.step, **opts
        )
        progress.stop()
    _late_signals_exit(rep)
    _exit_now(_finish(rep))


def _check_flags(resume, force, scheduler, dask_local, jobs) -> None:
    if resume and force:
        raise UserError(
            "--resume and --force contradict each other", field="--resume", fix="pass one of them"
        )
    if scheduler and dask_local:
        raise UserError(
            "--scheduler and --dask-local contradict each other",
            field="--scheduler",
            fix="pass one of them",
        )
    if (scheduler or dask_local) and jobs != 1:
        raise UserError(
            "--jobs does not apply to Dask runs (the cluster's workers do the work)",
            field="--jobs",
            fix="drop --jobs, or size the cluster: --dask-local N or more `dask worker`s",
        )


def _warn(message: str) -> None:
    click.echo(f"warning: {message}", err=True)


@contextlib.contextmanager
def _interrupts(progress: _Progress):
    """Stop the progress bar; an interrupted batch prints one line and exits 130/143."""
    from sim.batch.signals import BatchInterrupted

    try:
        yield
    except BatchInterrupted as exc:
        progress.stop()
        where = f" in {exc.out}/runs" if exc.out is not None else ""
        click.echo(
            f"interrupted by {exc}: {exc.kept} finished runs kept{where}; "
            "run again with --resume to finish the batch",
            err=True,
        )
        sys.exit(exc.exit_code)
    finally:
        progress.stop()


def _list_runs(batch) -> None:
    """``--dry-run``: the runs of the batch, one line each, with parameter values and seed."""
    for r in batch.runs:
        values = "".join(f"  {k}={v}" for k, v in r.params.items())
        click.echo(f"{r.run_id}{values}  seed={r.seed}")
    click.echo(
        f"{len(batch.runs)} runs: {len(batch.configs)} configurations x "
        f"{len(batch.runs) // len(batch.configs)} replications, "
        f"{batch.runs[0].duration_s} s simulated each (dry run: nothing was run)"
    )


def _late_signals_exit(rep) -> None:
    """After every run is stored, a SIGINT/SIGTERM still ends the process in one line.

    The batch's own handlers are gone once its block ends; without this, a signal
    in the last milliseconds (printing, interpreter shutdown) would kill the
    process silently with the signal's default action. Nothing is left to keep
    or clean up, so the handler reports the kept runs and exits at once.
    """

    def handler(signum: int, frame) -> None:
        kept = rep.ran + rep.reused
        sys.stderr.write(
            f"interrupted by {signal.Signals(signum).name}: {kept} finished runs kept in "
            f"{rep.out}/runs; run again with --resume to finish the batch\n"
        )
        sys.stderr.flush()
        os._exit(128 + signum)

    for s in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(s) is not signal.SIG_IGN:
            signal.signal(s, handler)


def _exit_now(code: int) -> None:
    """End the process with ``code`` once every result is written and flushed.

    At interpreter shutdown Python puts SIGINT and SIGTERM back to their default
    action and then waits on the process pool's helpers (tenths of a second here):
    a Ctrl-C in that window killed the process with no message and no exit code
    of ours. Nothing is left to do, so the process ends here; the pool's
    forkserver sees its pipe close and exits (checked by tests/test_batch_signals.py).
    Inside another program (``OWNS_PROCESS`` false) it only exits with ``code``.
    """
    if not OWNS_PROCESS["value"]:
        if code:
            sys.exit(code)
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _finish(rep) -> int:
    """Print the outcome of a batch; its exit code (1 if any run failed)."""
    from sim.engine.compiled.select import describe

    echo_stderr(describe(rep.engine))
    click.echo(
        f"{rep.ran} runs done, {rep.reused} reused, {len(rep.failures)} failed; "
        f"results in {rep.out}"
    )
    for run_id, params, err in rep.failures:
        click.echo(f"FAILED {run_id} {params}: {err}", err=True)
    return EXIT_FAILED if rep.failures else 0


def _run_on_dask(experiment, out, opts: dict, scheduler, dask_local) -> None:
    from sim.batch import run_experiment
    from sim.batch.dask_executor import dask_client, run_dask

    with dask_client(scheduler, dask_local) as client:
        where = scheduler or f"LocalCluster of {dask_local} workers"
        click.echo(f"Dask: {where}, dashboard {client.dashboard_link}", err=True)
        n_workers = len(client.scheduler_info().get("workers", {}))
        if n_workers == 0:
            click.echo(
                "Dask: the scheduler has no workers yet; runs start when one connects "
                "(`dask worker ADDRESS` on a machine with podnetsim[dask] installed)",
                err=True,
            )
        progress = _Progress(f"podnetsim run {experiment} (dask)")
        info = {"kind": "dask", "scheduler": scheduler, "local_workers": dask_local}
        with _interrupts(progress):
            rep = run_experiment(
                experiment,
                out,
                executor=lambda specs: run_dask(specs, client),
                executor_info=info,
                on_start=progress.start,
                on_done=progress.step,
                **opts,
            )
    code = _finish(rep)
    if code:
        sys.exit(code)
