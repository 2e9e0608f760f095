"""CLI verbs of the real-kernel replica.

The verbs are ``testbed up|down|status|measure|tcp|load``, ``calibrate`` and ``compare``.

Every verb turns a bad input or a testbed failure (all
:class:`~sim.errors.UserError`) into one line on stderr and exit status 2,
also when used outside the main group (tests call them directly).
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from sim.analysis.io import OUTPUT_FIX, atomic_write_text
from sim.cli.common import EXIT_BAD_INPUT, EXIT_FAILED, SET_OPTION, parse_sets
from sim.cli.progress import shows_activity
from sim.errors import UserError
from sim.testbed.render import DEFAULT_PREFIX, check_prefix


def _check_prefix(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_prefix(value)
    except UserError as err:
        raise click.BadParameter(err.problem) from None


_PREFIX = click.option(
    "--prefix",
    default=DEFAULT_PREFIX,
    show_default=True,
    callback=_check_prefix,
    help="Prefix of every namespace of the replica.",
)


def _errors_to_exit(fn):
    """Report a UserError as one line and exit 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except UserError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def _replica(scenario: str, sets: tuple[str, ...], prefix: str):
    from sim.testbed.replica import load_replica

    overrides = parse_sets(sets)
    return load_replica(scenario, overrides, prefix), overrides


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def testbed() -> None:
    """Real-kernel replica of a scenario in network namespaces (needs root)."""


@testbed.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@SET_OPTION
@_PREFIX
@click.option("--replace", is_flag=True, help="Remove an existing replica with this prefix first.")
@click.option("--dry-run", is_flag=True, help="Print the rendered commands; build nothing.")
@_errors_to_exit
def up(scenario: str, sets: tuple[str, ...], prefix: str, replace: bool, dry_run: bool) -> None:
    """Build SCENARIO in namespaces, with addresses mapped into 198.18.0.0/15."""
    from sim.testbed.replica import build

    replica, _ = _replica(scenario, sets, prefix)
    if dry_run:
        click.echo(
            "".join(f"# {line}\n" for line in replica.mapping.lines()) + replica.text(), nl=False
        )
        return
    for line in replica.mapping.lines():
        click.echo(line)
    made = build(replica, replace=replace)
    click.echo(f"built {len(made)} namespaces with prefix {prefix!r}:")
    for ns in replica.namespaces:
        addrs = ", ".join(a for _, a in ns.addresses)
        click.echo(f"  {ns.name}: {ns.role}" + (f" ({addrs})" if addrs else ""))
    click.echo(f"remove it with: podnetsim testbed down --prefix {prefix}")


@testbed.command()
@_PREFIX
@_errors_to_exit
def down(prefix: str) -> None:
    """Remove every namespace (and so every link and rule) of the replica."""
    from sim.testbed import netns

    removed = netns.down(prefix)
    if removed:
        click.echo(f"removed {len(removed)} namespaces with prefix {prefix!r}")
    else:
        click.echo(f"nothing to remove: no namespace with prefix {prefix!r}")


@testbed.command()
@_PREFIX
@click.option(
    "--scenario", type=click.Path(dir_okay=False), help="Also check it is this scenario's."
)
@SET_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_errors_to_exit
def status(prefix: str, scenario: str | None, sets: tuple[str, ...], as_json: bool) -> None:
    """Show the replica's namespaces, links, addresses and routes."""
    from sim.testbed import netns
    from sim.testbed.replica import verify

    st = netns.status(prefix)
    problems = None
    if scenario:
        problems = verify(_replica(scenario, sets, prefix)[0]) if st else ["no replica"]
    if as_json:
        click.echo(json.dumps({"namespaces": st, "problems": problems}, indent=2))
    elif not st:
        click.echo(f"no replica: no namespace with prefix {prefix!r}")
    for ns, info in st.items() if not as_json else ():
        links = [
            f"{x['name']} {' '.join(x['addresses'])}".strip()
            for x in info["links"]
            if x["name"] != "lo"
        ]
        pids = f"  processes {info['pids']}" if info["pids"] else ""
        click.echo(f"{ns}: {', '.join(links)}{pids}")
    for p in problems or []:
        click.echo(f"MISMATCH: {p}")
    if problems == [] and not as_json:
        click.echo(f"the replica matches {scenario}")
    if problems:
        sys.exit(EXIT_FAILED)


def _print_rtt(doc) -> None:
    if doc.rtt:
        click.echo(f"\n{'case':<11} {'pair':<26} {'p50 us':>8} {'p50 spread':>15} {'p99 us':>10}")
    for case, e in doc.rtt.items():
        pair = f"{e.src} -> {e.dst}"
        if e.ok:
            lo, hi = e.spread_p50_us
            click.echo(
                f"{case:<11} {pair:<26} {e.p50_us:>8.2f} {f'{lo:.2f}-{hi:.2f}':>15} "
                f"{e.p99_us:>10.2f}"
            )
        else:
            click.echo(f"{case:<11} {pair:<26} failed: {e.error}")


def _measured(replica, overrides, build_it: bool, **kw):
    from sim.testbed import netns
    from sim.testbed.replica import build, verify
    from sim.validate.measure import measure_replica

    netns.require(("ip", "nft", "sysctl", "taskset", "chrt", "sockperf"))
    prefix, file = replica.prefix, replica.cluster.file
    built = not netns.list_namespaces(prefix)
    if built and not build_it:
        raise UserError(
            f"no replica with prefix {prefix!r}",
            file=file,
            fix=f"run `podnetsim testbed up {file}` (with the same --set options) first, "
            "or pass --up",
        )
    try:  # an interrupt while the replica settles removes it too
        if built:
            build(replica)
        problems = verify(replica)
        if problems:
            raise UserError(
                f"the replica with prefix {prefix!r} is not this scenario's: {problems[0]}",
                file=file,
                fix="run `podnetsim testbed down`, then `testbed up` with the same --set options",
            )
        return measure_replica(replica, overrides=overrides, progress=click.echo, **kw)
    finally:
        if built:
            netns.down(prefix)


@testbed.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@SET_OPTION
@_PREFIX
@click.option("-o", "--output", default="measurements.json", show_default=True, help="JSON file.")
@click.option("--duration", default=2.0, show_default=True, help="Seconds per sockperf run.")
@click.option("--repeats", default=5, show_default=True, help="Rounds over the RTT cases.")
@click.option(
    "--busy-poll/--no-busy-poll",
    default=None,
    help="Busy-polling sockets [default: where it works].",
)
@click.option(
    "--case",
    "cases",
    multiple=True,
    type=click.Choice(["localhost", "same_node", "cross_node", "ext_nomasq", "ext_masq"]),
    help="Only these RTT cases (repeatable).",
)
@click.option("--no-rtt", is_flag=True, help="Skip the RTT cases (only probe the pairs).")
@click.option("--no-pairs", is_flag=True, help="Skip the endpoint-pair (SNAT) probes.")
@click.option("--nodes", is_flag=True, help="Also probe pairs involving the nodes themselves.")
@click.option(
    "--up/--no-up", "build_it", default=False, help="Build it first if absent; remove after."
)
@_errors_to_exit
@shows_activity("testbed measure: sockperf round trips and SNAT probes on the replica")
def measure(
    scenario,
    sets,
    prefix,
    output,
    duration,
    repeats,
    busy_poll,
    cases,
    no_rtt,
    no_pairs,
    nodes,
    build_it,
) -> None:
    """Time RTTs (sockperf) and probe SNAT of SCENARIO's replica; write JSON.

    The replica must have been built with `podnetsim testbed up SCENARIO` and
    the same --set options (or pass --up).
    """
    from sim.validate.models import Timing, write_json

    if duration not in range(1, 61) or not 1 <= repeats <= 50:
        raise UserError(
            "bad measurement size",
            field="--duration/--repeats",
            fix="use a whole number of seconds 1 <= duration <= 60 (sockperf's -t) "
            "and 1 <= repeats <= 50",
        )
    timing = Timing(duration_s=duration, repeats=repeats, busy_poll=busy_poll)
    replica, overrides = _replica(scenario, sets, prefix)
    doc = _measured(
        replica,
        overrides,
        build_it,
        timing=timing,
        include_nodes=nodes,
        cases=() if no_rtt else (cases or None),
        pairs=not no_pairs,
    )
    write_json(doc, output)
    _print_rtt(doc)
    load = doc.machine.get("loadavg_1min_start", 0.0)
    if load > 0.5:
        click.echo(f"WARNING: load average {load:.2f}: other work competes for the CPUs", err=True)
    click.echo(f"wrote {output} ({doc.elapsed_s:.0f} s of measurement)")


@click.command()
@click.argument("measurements", type=click.Path(dir_okay=False))
@click.option("-o", "--output", default="params.toml", show_default=True, help="Parameter file.")
@click.option("--scenario", type=click.Path(dir_okay=False), help="Default: the one measured.")
@SET_OPTION
@click.option(
    "--fit-on",
    default=None,
    help="Comma-separated RTT cases to fit, or 'all' "
    "[default: localhost,same_node,ext_nomasq; the others are held out].",
)
@_errors_to_exit
def calibrate(measurements: str, output: str, scenario, sets, fit_on) -> None:
    """Fit per-hop costs to MEASUREMENTS and write a parameter file."""
    from sim.control.cluster import build_cluster
    from sim.spec.load import load_scenario
    from sim.validate.calibrate import calibrate as fit_costs
    from sim.validate.calibrate import parse_fit_on
    from sim.validate.models import Measurements, read_record
    from sim.validate.params import write_params

    doc = read_record(measurements, Measurements)
    path = scenario or doc.scenario.file
    overrides = parse_sets(sets) if sets else dict(doc.scenario.overrides)
    if not Path(path).exists():
        raise UserError(
            f"scenario file {path!r} recorded in the measurements is not found",
            file=measurements,
            fix="pass --scenario SCENARIO",
        )
    scn = load_scenario(path, overrides)
    if scn.digest() != doc.scenario.sha256:
        raise UserError(
            "the scenario differs from the one measured (digest)",
            file=path,
            fix="pass the measured scenario with --scenario and the same --set options",
        )
    fit = fit_costs(build_cluster(scn, path), doc, parse_fit_on(fit_on))
    source = {
        "measurements": measurements,
        "scenario": scn.name,
        "scenario_sha256": scn.digest(),
        "timing": "sockperf busy-poll" if doc.timing.busy_poll else "sockperf blocking",
    }
    write_params(fit, output, source=source)
    click.echo(
        f"endpoint term {fit.endpoint_us:.3f} us per round trip (fitted on {', '.join(fit.fit_on)})"
    )
    click.echo("elementary costs, us per packet:")
    for e, v in fit.elements_us.items():
        click.echo(f"  {e:<11} {v:8.3f}")
    if fit.undetermined:
        click.echo(
            "not determined by the fitted cases (kept near the scenario's costs): "
            + "; ".join(fit.undetermined)
        )
    click.echo(f"{'case':<11} {'measured p50':>12} {'model p50':>10} {'residual':>9}")
    for case, c in fit.cases.items():
        click.echo(
            f"{case:<11} {c.measured_p50_us:>12.2f} {c.model_p50_us:>10.2f} "
            f"{c.residual_us:>+9.2f}  {'fitted' if c.fitted else 'held out'}"
        )
    click.echo(f"wrote {output}")


@click.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.argument("measurements", type=click.Path(dir_okay=False))
@click.option(
    "--params",
    required=True,
    type=click.Path(dir_okay=False),
    help="Parameter file from `podnetsim calibrate`.",
)
@SET_OPTION
@click.option("--seed", default=1, show_default=True, help="Simulation seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 if a verdict disagrees or a held-out prediction misses its tolerance.",
)
@_errors_to_exit
def compare(scenario, measurements, params, sets, seed, as_json, strict) -> None:
    """Predicted vs measured RTTs, and model vs observed SNAT, for SCENARIO.

    MEASUREMENTS from `testbed tcp -o` instead: TCP goodput fitted on the
    same-node single stream and predicted for the rest (as `testbed tcp`).
    """
    from sim.validate.compare import compare as run_compare
    from sim.validate.compare import format_report
    from sim.validate.models import Measurements, TcpSet, read_record

    doc = read_record(measurements, Measurements, TcpSet)
    if isinstance(doc, TcpSet):
        _compare_tcp(scenario, doc, params, sets, as_json, strict)
        return
    res = run_compare(scenario, doc, params, overrides=parse_sets(sets), seed=seed)
    click.echo(res.model_dump_json(indent=2) if as_json else "\n".join(format_report(res)))
    bad = any(not v.agree for v in res.verdicts)
    bad |= any(r.within is False and not r.fitted for r in res.rtt.values())
    bad |= bool(res.ratio_cross_same and not res.ratio_cross_same.within)
    if strict and bad:
        sys.exit(EXIT_FAILED)


def _compare_tcp(scenario, ts, params, sets, as_json: bool, strict: bool) -> None:
    """``compare`` of a measured TCP set: the fit and predictions of ``testbed tcp``."""
    from sim.validate.params import params_overrides
    from sim.validate.tcp import compare_tcp, misses

    overrides = {**params_overrides(params), **parse_sets(sets)}
    pairs = {k: tuple(v) for k, v in ts.pairs.items()}
    fit, rows = compare_tcp(scenario, overrides, pairs, ts.idle_p50_us, ts.measured_gbps())
    _print_tcp(fit, ts.idle_p50_us, rows, as_json)
    if strict and misses(rows):
        sys.exit(EXIT_FAILED)


def _print_tcp(fit, idle: dict, rows: list[dict], as_json: bool) -> None:
    """Print a TCP fit and its rows (iperf3 vs model), as text or JSON (as ``testbed tcp``)."""
    if as_json:
        click.echo(json.dumps({"fit": vars(fit), "idle_p50_us": idle, "rows": rows}))
        return
    click.echo(
        f"fit: element {fit.element_us:.3f} us, syscall {fit.send_us:.3f} us, "
        f"copy {fit.per_byte_ns:.3f} ns/B (idle p50 same {idle['same']:.1f} us, "
        f"cross {idle['cross']:.1f} us)"
    )
    click.echo(f"{'case':<20} {'iperf3':>8} {'model':>8} {'model/iperf3':>13}")
    for r in rows:
        held = "held out" if r["held_out"] else "fitted"
        nums = f"{r['measured']:>8.3f} {r['predicted']:>8.3f} {r['ratio']:>13.3f}"
        click.echo(f"{r['case']:<20} {nums}  {held}")


@testbed.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@SET_OPTION
@_PREFIX
@click.option("--same", nargs=2, required=True, help="Same-node SRC DST pods.")
@click.option("--cross", nargs=2, required=True, help="Cross-node SRC DST pods.")
@click.option("--seconds", default=3.0, show_default=True, help="Seconds per iperf3 test.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Also save the measured set here (for a later `podnetsim compare`).",
)
@_errors_to_exit
@shows_activity("testbed tcp: iperf3 on the replica, then the TCP fit")
def tcp(scenario, sets, prefix, same, cross, seconds, as_json, output) -> None:
    """Measure iperf3 goodput on SCENARIO's replica; fit on one point, predict the rest.

    Builds the replica under --prefix, times the idle 64 B round trips and
    runs iperf3 (1 and 4 streams, both pairs), removes the replica, fits the CPU
    model's TCP costs on the same-node single stream and predicts the others
    (docs/testbed.md, "TCP throughput").
    """
    from sim.testbed import netns
    from sim.testbed.iperf import measure_tcp_set
    from sim.testbed.replica import build
    from sim.validate.tcp import compare_tcp

    if not 0.1 <= seconds <= 60:
        raise UserError("bad test length", field="--seconds", fix="use 0.1 to 60 seconds")
    if output and not Path(output).resolve().parent.is_dir():  # before the long measurement
        raise UserError("its folder does not exist", field="--output", fix="create it first")
    netns.require(("ip", "nft", "sysctl", "sockperf", "iperf3"))
    replica, overrides = _replica(scenario, sets, prefix)
    pairs = {"same": tuple(same), "cross": tuple(cross)}
    for pod in (*same, *cross):
        replica.namespace(pod)  # an unknown pod: one line naming it, exit 2
    try:  # an interrupt while the replica settles removes it too
        build(replica, replace=True)
        idle, gbps = measure_tcp_set(replica, pairs, seconds=seconds)
    finally:
        netns.down(prefix)
    if output:
        from sim.validate.models import write_tcp_set

        write_tcp_set(output, scenario, pairs, idle, gbps, seconds)
    fit, rows = compare_tcp(scenario, overrides, pairs, idle, gbps)
    _print_tcp(fit, idle, rows, as_json)


@testbed.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@SET_OPTION
@_PREFIX
@click.option("--same", nargs=2, required=True, help="Same-node SRC DST pods (probe, floods).")
@click.option("--cross", nargs=2, required=True, help="Cross-node SRC DST pods (floods).")
@click.option(
    "--background", nargs=2, required=True, help="Background SRC DST pods, apart from --same's."
)
@click.option(
    "--load", "load_frac", default=0.5, show_default=True, help="Background rate / its saturation."
)
@click.option("--duration", default=2.0, show_default=True, help="Seconds per sockperf run.")
@click.option("--repeats", default=3, show_default=True, help="Rounds over every case.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Also write the JSON here.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_errors_to_exit
@shows_activity("testbed load: sockperf under load on the replica, then the CPU fit")
def load(
    scenario, sets, prefix, same, cross, background, load_frac, duration, repeats, output, as_json
):
    """Measure SCENARIO's replica under load; fit the CPU data path, predict the rest.

    Builds the replica under --prefix and takes the loaded set
    (``sim.testbed.load.measure_loaded``): idle 64 B and 1400 B round trips and
    saturation floods of both pairs, the probe (--same, real-time priority, CPU
    0) with a background at --load of its saturation on CPU 0 or CPU 1, and a
    same-node overload on one core; removes the replica; fits the CPU model on
    the idle round trips and the same-node 64 B saturation and predicts the rest,
    with the overload's drop location in kernel and model (docs/testbed.md,
    "Under load"). Needs two CPUs; takes about 11 x --repeats x --duration s.
    """
    import os

    from sim.testbed import netns
    from sim.testbed.load import measure_loaded
    from sim.testbed.replica import build

    _check_load_args(load_frac, duration, repeats)
    if output and not Path(output).resolve().parent.is_dir():  # before the long measurement
        raise UserError("its folder does not exist", field="--output", fix="create it first")
    netns.require(("ip", "nft", "sysctl", "sockperf", "taskset", "chrt"))
    cpus = len(os.sched_getaffinity(0))
    if cpus < 2:
        raise UserError("one CPU", field="CPUs", fix="run on a machine with two CPUs or more")
    replica, overrides = _replica(scenario, sets, prefix)
    for pod in (*same, *cross, *background):
        replica.namespace(pod)  # an unknown pod: one line naming it, exit 2
    pairs = {"same": tuple(same), "cross": tuple(cross), "background": tuple(background)}
    try:  # an interrupt while the replica settles removes it too
        build(replica, replace=True)
        measured = measure_loaded(
            replica, *pairs.values(), load=load_frac, repeats=repeats, duration_s=duration
        )
    finally:
        netns.down(prefix)
    _report_load(scenario, overrides, pairs, measured, cpus, output, as_json)


def _check_load_args(load_frac: float, duration: float, repeats: int) -> None:
    """Bound the work of ``testbed load`` before it starts (one line per bad option)."""
    if not 0.05 <= load_frac <= 1.0:
        raise UserError("bad background load", field="--load", fix="use 0.05 to 1.0")
    if not (1 <= duration <= 30 and duration == int(duration)):  # sockperf -t: whole seconds
        raise UserError("bad run length", field="--duration", fix="use 1 to 30 whole seconds")
    if not 1 <= repeats <= 10:
        raise UserError("bad number of rounds", field="--repeats", fix="use 1 to 10")


def _report_load(scenario, overrides, pairs, measured, cpus, output, as_json) -> None:
    """Compare ``testbed load``'s measurements with the model; print (and write) them."""
    from sim.validate.loaded import compare_loaded, compare_overload

    fit, rows = compare_loaded(scenario, overrides, pairs, measured, cpus=cpus)
    ov = {**overrides, **fit.overrides(_cluster(scenario, overrides))}
    where = compare_overload(scenario, ov, pairs["same"], measured["overload"])
    doc = {"fit": vars(fit), "rows": rows, "overload": where, "measured": measured}
    if output:
        text = json.dumps(doc, default=str, indent=1)
        atomic_write_text(Path(output), text, "--output", OUTPUT_FIX)
    if as_json:
        click.echo(json.dumps(doc, default=str))
        return
    click.echo(f"{'case':<42} {'kernel':>10} {'CPU model':>10} {'ratio':>6} {'stations':>10}")
    for r in rows:
        held = "held out" if r["held_out"] else "fitted"
        nums = f"{r['measured']:>10.5g} {r['predicted']:>10.5g} {r['ratio']:>6.3f}"
        click.echo(f"{r['case']:<42} {nums} {r['stations']:>10.5g}  {held}")
    click.echo(
        f"overload (same-node 64 B flood, both ends on CPU 0): kernel drops "
        f"{where['kernel_drop_fraction']:.1%} at {where['kernel']}, model "
        f"{where['model_drop_fraction']:.1%} at {where['model']}"
    )


def _cluster(scenario: str, overrides: dict):
    """Return the built cluster of ``scenario`` with ``overrides`` (for the fit's overrides)."""
    from sim.control.cluster import build_cluster
    from sim.spec.load import load_scenario

    return build_cluster(load_scenario(scenario, overrides), str(scenario))
