"""``podnetsim`` command line: thin verbs that call library functions.

Exit status: 0 success, 1 a check/verdict the user asked to fail on, 2 bad input
(one line on stderr naming the file, the field and the fix; never a traceback).
"""

from __future__ import annotations

import json
import sys

import click

from sim import __version__
from sim.errors import UserError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def parse_sets(values: tuple[str, ...]) -> dict:
    """Parse ``--set key.path=VALUE`` options; VALUE is read as TOML (else a string)."""
    import tomllib

    out: dict = {}
    for item in values:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise UserError(
                f"--set {item!r} is not KEY=VALUE",
                field="--set",
                fix="write e.g. --set external_hosts.intranet.return_route_to_pods=false",
            )
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text
        out[key.strip()] = value
    return out


SET_OPTION = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a scenario field by dotted path (list items by index or name), "
    "e.g. external_hosts.intranet.return_route_to_pods=false.",
)


class _Group(click.Group):
    """Turns :class:`UserError` into one line on stderr and exit status 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="podnetsim")
def cli() -> None:
    """Packet performance simulator of Kubernetes pod networking."""


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Exit 1 if there are warnings.")
@SET_OPTION
def check(scenario: str, strict: bool, sets: tuple[str, ...]) -> None:
    """Validate SCENARIO and print its address plan, routes and NAT rules."""
    from sim.control import load_cluster

    cl = load_cluster(scenario, parse_sets(sets))
    for line in cl.describe():
        click.echo(line)
    if strict and cl.diagnostics:
        sys.exit(EXIT_FAILED)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.argument("src")
@click.argument("dst")
@click.option("--reply", is_flag=True, help="Trace the reply to the packet instead.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@SET_OPTION
def trace(
    scenario: str, src: str, dst: str, reply: bool, as_json: bool, sets: tuple[str, ...]
) -> None:
    """Print the path of a packet from SRC to DST, hop by hop.

    SRC and DST are pod, pod/container, node or external host names, or IP addresses.
    """
    from sim.control import load_cluster, resolve, resolve_reply
    from sim.control.resolve import endpoint
    from sim.errors import ResolveError

    cl = load_cluster(scenario, parse_sets(sets))
    ends = []
    for arg, text in (("SRC", src), ("DST", dst)):
        try:
            ends.append(endpoint(cl, text))
        except ResolveError as err:
            err.field = arg
            err.args = (str(err),)
            raise
    path = resolve(cl, *ends)
    if reply:
        path = resolve_reply(cl, path)
    if as_json:
        click.echo(json.dumps(path.to_dict(), indent=2))
        return
    title = f"{path.src.name} -> {path.dst.name}" + (" (reply)" if reply else "")
    click.echo(title)
    width = max([len(h.station) for h in path.hops] + [7])
    click.echo(f"  {'station':<{width}}  {'src':<15}  {'dst':<15}")
    for h in path.hops:
        mark = "  NAT" if h.nat else ""
        click.echo(f"  {h.station:<{width}}  {h.src!s:<15}  {h.dst!s:<15}{mark}")
    verdict = path.verdict.upper()
    click.echo(f"{verdict}" + (f": {path.reason}" if path.reason else ""))
    for d in cl.diagnostics:
        click.echo(f"WARNING: {d}", err=True)


def _fmt(x: float, nd: int = 2) -> str:
    return "-" if x != x else f"{x:.{nd}f}"


def print_summary(sm: dict) -> None:
    """Print a run summary as readable tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console(width=160)
    console.print(
        f"scenario {sm['scenario']!r}, seed {sm['seed']}, {sm['duration_s']} s simulated "
        f"({sm['warmup_s']} s warm-up excluded)"
    )
    t = Table(title="flows (one-way latency, us)")
    for col in (
        "flow",
        "kind",
        "sent",
        "deliv",
        "drop",
        "in-fl",
        "mean",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
        "Gbit/s",
    ):
        t.add_column(col, justify="left" if col in ("flow", "kind") else "right")
    for name, f in sm["flows"].items():
        lat = f["latency_us"]
        t.add_row(
            name,
            f["kind"],
            str(f["sent"]),
            str(f["delivered"]),
            str(f["dropped"]),
            str(f["in_flight"]),
            _fmt(lat["mean"]),
            _fmt(lat["p50"]),
            _fmt(lat["p90"]),
            _fmt(lat["p99"]),
            _fmt(lat["p99.9"]),
            _fmt(lat["max"]),
            _fmt(f["throughput_gbps"], 3),
        )
    console.print(t)
    rr = {n: f for n, f in sm["flows"].items() if "rtt_us" in f}
    if rr:
        t = Table(title="request/response round trips (us)")
        for col in ("flow", "trans/s", "mean", "p50", "p99", "p99.9", "max"):
            t.add_column(col, justify="left" if col == "flow" else "right")
        for name, f in rr.items():
            r = f["rtt_us"]
            t.add_row(
                name,
                _fmt(f["transactions_per_s"], 0),
                _fmt(r["mean"]),
                _fmt(r["p50"]),
                _fmt(r["p99"]),
                _fmt(r["p99.9"]),
                _fmt(r["max"]),
            )
        console.print(t)
    drops = {n: f["drops_by_reason"] for n, f in sm["flows"].items() if f["drops_by_reason"]}
    for name, reasons in drops.items():
        for reason, count in reasons.items():
            console.print(f"drops of {name}: {count} x {reason}", highlight=False)
    t = Table(title="stations")
    for col in ("station", "arrivals", "drops", "util", "wait us", "sojourn us", "mean n", "max n"):
        t.add_column(col, justify="left" if col == "station" else "right")
    for name, s in sm["stations"].items():
        t.add_row(
            name,
            str(s["arrivals"]),
            str(s["drops"]),
            _fmt(s["utilization"], 3),
            _fmt(s["mean_wait_us"], 3),
            _fmt(s["mean_sojourn_us"], 3),
            _fmt(s["mean_in_system"], 3),
            str(s["max_in_system"]),
        )
    console.print(t)
    for w in sm["warnings"]:
        console.print(f"WARNING: {w}", highlight=False)


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--duration", "duration_s", type=float, help="Simulated seconds (incl. warm-up).")
@click.option("--warmup", "warmup_s", type=float, help="Warm-up seconds excluded from summaries.")
@click.option("--seed", type=int, help="Base seed of the random streams.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--packets-out",
    type=click.Path(dir_okay=False),
    help="Write per-packet records (.csv or .parquet).",
)
@click.option(
    "--hops-out",
    type=click.Path(dir_okay=False),
    help="Also record and write per-station rows (.csv or .parquet).",
)
@SET_OPTION
def simulate(
    scenario: str,
    duration_s: float | None,
    warmup_s: float | None,
    seed: int | None,
    as_json: bool,
    packets_out: str | None,
    hops_out: str | None,
    sets: tuple[str, ...],
) -> None:
    """Simulate the flows SCENARIO declares and summarize latency, throughput, drops."""
    from sim.analysis import summarize
    from sim.analysis.tables import hop_table, packet_table, write_table
    from sim.engine import simulate as run
    from sim.spec import load_scenario

    overrides = parse_sets(sets)
    if duration_s is not None:
        overrides["simulation.duration_s"] = duration_s
    if warmup_s is not None:
        overrides["simulation.warmup_s"] = warmup_s
    if seed is not None:
        overrides["simulation.seed"] = seed
    scn = load_scenario(scenario, overrides)
    if not scn.flows:
        raise UserError(
            "the scenario declares no flows",
            file=scenario,
            field="flows",
            fix="add [[flows]] tables (see experiments/scenarios/article.toml)",
        )
    res = run(scn, file=scenario, record_hops=bool(hops_out) or None)
    sm = summarize(res)
    if as_json:
        click.echo(json.dumps(sm, indent=2, sort_keys=True))
    else:
        print_summary(sm)
    if packets_out:
        write_table(packet_table(res), packets_out)
    if hops_out:
        write_table(hop_table(res), hops_out)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--duration",
    "duration_s",
    type=float,
    default=0.6,
    show_default=True,
    help="Simulated seconds of the benchmark scenario.",
)
@click.option("--repeats", type=int, default=3, show_default=True)
def bench(as_json: bool, duration_s: float, repeats: int) -> None:
    """Engine speed (packet-hops/s) against a bare SimPy loop, and memory per packet."""
    from sim.bench import run_bench

    r = run_bench(duration_s, repeats)
    if as_json:
        click.echo(json.dumps(r, indent=2, sort_keys=True))
        return
    click.echo(f"packets simulated          {r['packets']}")
    click.echo(f"packet-hops                {r['packet_hops']}")
    click.echo(f"packet-hops per wall s     {r['packet_hops_per_s']:,.0f}")
    click.echo(f"bare SimPy events per s    {r['bare_simpy_events_per_s']:,.0f}")
    click.echo(f"ratio                      {r['ratio']:.3f}")
    click.echo(f"peak bytes per packet      {r['bytes_per_packet']:.1f}")


class _Progress:
    """Progress of a batch: a bar on a terminal, plain log lines otherwise."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.tty = sys.stderr.isatty()
        self.bar = None
        self.done = 0
        self.total = 0

    def start(self, total: int, already: int) -> None:
        self.total, self.done = total, already
        if self.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                transient=False,
            )
            self.bar.start()
            self.task = self.bar.add_task(self.label, total=total, completed=already)
        else:
            click.echo(f"{self.label}: {total} runs, {already} already done", err=True)

    def step(self, spec, error: str | None) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.advance(self.task)
            if error:
                self.bar.console.print(f"run {spec.run_id} {spec.params} FAILED: {error}")
        else:
            state = f"FAILED: {error}" if error else "done"
            click.echo(f"[{self.done}/{self.total}] {spec.run_id} {state}", err=True)

    def stop(self) -> None:
        if self.bar is not None:
            self.bar.stop()


@cli.command()
@click.argument("experiment", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Results directory (default results/<experiment name>).",
)
@click.option(
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
) -> None:
    """Run the batch of EXPERIMENT and write tables, summary, manifest and plots."""
    from sim.batch import run_experiment

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
    if scheduler or dask_local:
        _run_on_dask(
            experiment,
            out,
            resume,
            force,
            quick,
            no_plots,
            independent_streams,
            scheduler,
            dask_local,
        )
        return
    progress = _Progress(f"podnetsim run {experiment}")
    try:
        rep = run_experiment(
            experiment,
            out,
            jobs=jobs,
            resume=resume,
            force=force,
            quick=quick,
            plots=not no_plots,
            crn=False if independent_streams else None,
            on_start=progress.start,
            on_done=progress.step,
        )
    finally:
        progress.stop()
    _finish(rep)


def _finish(rep) -> None:
    """Print the outcome of a batch; exit 1 if any run failed."""
    click.echo(
        f"{rep.ran} runs done, {rep.reused} reused, {len(rep.failures)} failed; "
        f"results in {rep.out}"
    )
    for run_id, params, err in rep.failures:
        click.echo(f"FAILED {run_id} {params}: {err}", err=True)
    if rep.failures:
        sys.exit(EXIT_FAILED)


def _run_on_dask(
    experiment, out, resume, force, quick, no_plots, independent_streams, scheduler, dask_local
) -> None:
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
        try:
            rep = run_experiment(
                experiment,
                out,
                resume=resume,
                force=force,
                quick=quick,
                plots=not no_plots,
                crn=False if independent_streams else None,
                executor=lambda specs: run_dask(specs, client),
                executor_info=info,
                on_start=progress.start,
                on_done=progress.step,
            )
        finally:
            progress.stop()
    _finish(rep)


@cli.command()
@click.argument("results", type=click.Path(file_okay=False))
def plot(results: str) -> None:
    """Redraw the plots of a results directory without re-running."""
    from sim.plots.figures import draw_all

    for p in draw_all(results):
        click.echo(str(p))


def _register_testbed() -> None:
    from sim.cli.testbed_cmds import calibrate, compare, testbed

    cli.add_command(testbed)
    cli.add_command(calibrate)
    cli.add_command(compare)


_register_testbed()


def main() -> None:
    """Entry point of the ``podnetsim`` console script."""
    cli(prog_name="podnetsim")


if __name__ == "__main__":
    main()
