"""CLI verbs of the real-kernel replica: ``testbed up|down|status|measure``,
``calibrate`` and ``compare``.

Register them in :mod:`sim.cli.main` with::

    from sim.cli.testbed_cmds import calibrate, compare, testbed
    cli.add_command(testbed)
    cli.add_command(calibrate)
    cli.add_command(compare)

Every verb turns a bad input (:class:`~sim.errors.UserError`) or a testbed
failure (missing privilege or tool, failed ``ip``/``nft`` command:
:class:`~sim.testbed.errors.TestbedError`) into one line on stderr and exit
status 2, also when the verbs are used outside the main group.
"""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click

from sim.errors import UserError
from sim.testbed.errors import TestbedError
from sim.testbed.topology import DEFAULT_PREFIX, check_prefix

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2

_SET = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a scenario field by dotted path, e.g. "
    "external_hosts.intranet.return_route_to_pods=false.",
)


def _check_prefix(ctx: click.Context, param: click.Parameter, value: str) -> str:
    try:
        return check_prefix(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


_PREFIX = click.option(
    "--prefix",
    default=DEFAULT_PREFIX,
    show_default=True,
    callback=_check_prefix,
    help="Prefix of every namespace of the replica.",
)


def _errors_to_exit(fn):
    """Report UserError/TestbedError as one line and exit 2 (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except (UserError, TestbedError) as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(EXIT_BAD_INPUT)

    return wrapper


def _parse_sets(sets: tuple[str, ...]) -> dict:
    from sim.cli.main import parse_sets

    return parse_sets(sets)


def _replica(scenario: str, sets: tuple[str, ...], prefix: str):
    from sim.testbed.replica import load_replica

    overrides = _parse_sets(sets)
    return load_replica(scenario, overrides, prefix), overrides


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def testbed() -> None:
    """Real-kernel replica of a scenario in network namespaces (needs root)."""


@testbed.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@_SET
@_PREFIX
@click.option("--replace", is_flag=True, help="Remove an existing replica with this prefix first.")
@_errors_to_exit
def up(scenario: str, sets: tuple[str, ...], prefix: str, replace: bool) -> None:
    """Build SCENARIO in namespaces, with addresses mapped into 198.18.0.0/15."""
    from sim.testbed.replica import build

    replica, _ = _replica(scenario, sets, prefix)
    for line in replica.mapping.lines():
        click.echo(line)
    made = build(replica, replace=replace)
    topo = replica.topology
    click.echo(f"built {len(made)} namespaces with prefix {prefix!r}:")
    click.echo(f"  LAN {topo.lan_ns}, gateway {topo.gateway_ns}")
    for node in topo.nodes:
        click.echo(f"  node {node.name}: {topo.node_ns(node.name)}")
    for pod in topo.pods:
        click.echo(f"  pod {pod.name}: {topo.pod_ns(pod.name)} ({pod.address.ip})")
    for ext in topo.externals:
        rr = "with" if ext.return_route_to_pods else "WITHOUT"
        click.echo(
            f"  external {ext.name}: {topo.external_ns(ext.name)} ({ext.address.ip}, "
            f"{rr} a return route to the pods)"
        )
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
    "--scenario",
    type=click.Path(dir_okay=False),
    help="Also check that the replica is this scenario's.",
)
@_SET
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_errors_to_exit
def status(prefix: str, scenario: str | None, sets: tuple[str, ...], as_json: bool) -> None:
    """Show the replica's namespaces, links and addresses."""
    from sim.testbed import netns
    from sim.testbed.replica import verify

    st = netns.status(prefix)
    problems = None
    if scenario:
        replica, _ = _replica(scenario, sets, prefix)
        problems = verify(replica) if st else ["no replica"]
    if as_json:
        click.echo(json.dumps({"namespaces": st, "problems": problems}, indent=2))
    elif not st:
        click.echo(f"no replica: no namespace with prefix {prefix!r}")
    else:
        for ns, info in st.items():
            links = ", ".join(
                f"{link['name']}" + (f" {' '.join(link['addresses'])}" if link["addresses"] else "")
                for link in info["links"]
                if link["name"] != "lo"
            )
            pids = f"  processes {info['pids']}" if info["pids"] else ""
            click.echo(f"{ns}: {links}{pids}")
        if problems is not None:
            if problems:
                for p in problems:
                    click.echo(f"MISMATCH: {p}")
            else:
                click.echo(f"the replica matches {scenario}")
    if problems:
        sys.exit(EXIT_FAILED)


@testbed.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@_SET
@_PREFIX
@click.option(
    "-o",
    "--output",
    default="measurements.json",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Measurements file (JSON).",
)
@click.option("-n", "n", default=30000, show_default=True, help="Timed round trips per repeat.")
@click.option("--warmup", default=3000, show_default=True, help="Untimed round trips first.")
@click.option("--repeats", default=5, show_default=True, help="Rounds over the RTT cases.")
@click.option(
    "--pair-n", default=200, show_default=True, help="Round trips of each endpoint-pair probe."
)
@click.option(
    "--case",
    "cases",
    multiple=True,
    type=click.Choice(["localhost", "same_node", "cross_node", "ext_nomasq", "ext_masq"]),
    help="Measure only these RTT cases (repeatable).",
)
@click.option("--no-rtt", is_flag=True, help="Skip the RTT cases (only probe the pairs).")
@click.option("--no-pairs", is_flag=True, help="Skip the endpoint-pair (SNAT) probes.")
@click.option("--nodes", is_flag=True, help="Also probe pairs involving the nodes themselves.")
@click.option(
    "--up/--no-up",
    "build_it",
    default=False,
    help="Build the replica first if it is absent, and remove it afterwards.",
)
@_errors_to_exit
def measure(
    scenario: str,
    sets: tuple[str, ...],
    prefix: str,
    output: str,
    n: int,
    warmup: int,
    repeats: int,
    pair_n: int,
    cases: tuple[str, ...],
    no_rtt: bool,
    no_pairs: bool,
    nodes: bool,
    build_it: bool,
) -> None:
    """Probe RTTs and SNAT of SCENARIO's replica; write the results (JSON).

    The replica must have been built with `podnetsim testbed up SCENARIO` and
    the same --set options (or pass --up).
    """
    from sim.testbed import netns
    from sim.testbed.measure import measure_replica, write_measurements
    from sim.testbed.replica import build, verify

    if n < 1 or warmup < 0 or not 1 <= repeats <= 50 or pair_n < 1:
        raise UserError(
            "bad measurement size",
            field="-n/--warmup/--repeats/--pair-n",
            fix="use n >= 1, warmup >= 0, 1 <= repeats <= 50, pair-n >= 1",
        )
    replica, overrides = _replica(scenario, sets, prefix)
    netns.require(probe=True)
    built = False
    if not netns.list_namespaces(prefix):
        if not build_it:
            raise UserError(
                f"no replica with prefix {prefix!r}",
                file=scenario,
                fix=f"run `podnetsim testbed up {scenario}` (with the same --set options) "
                "first, or pass --up",
            )
        build(replica)
        built = True
    try:
        problems = verify(replica)
        if problems:
            raise UserError(
                f"the replica with prefix {prefix!r} is not this scenario's: {problems[0]}"
                + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
                file=scenario,
                fix="run `podnetsim testbed down` then `podnetsim testbed up` with the same "
                "scenario and --set options",
            )
        doc = measure_replica(
            replica,
            n=n,
            warmup=warmup,
            repeats=repeats,
            pair_n=pair_n,
            include_nodes=nodes,
            cases=() if no_rtt else (cases or None),
            pairs=not no_pairs,
            overrides=overrides,
            progress=click.echo,
        )
    finally:
        if built:
            netns.down(prefix)
    write_measurements(doc, output)
    if doc["rtt"]:
        click.echo("")
        click.echo(
            f"{'case':<11} {'pair':<26} {'p50 us':>8} {'p50 spread':>15} {'p99 us':>8}  seen"
        )
    for case, e in doc["rtt"].items():
        pair = f"{e['src']} -> {e['dst']}"
        if e["ok"]:
            lo, hi = e["spread_p50_us"]
            click.echo(
                f"{case:<11} {pair:<26} {e['p50_us']:>8.2f} {f'{lo:.2f}-{hi:.2f}':>15} "
                f"{e['p99_us']:>8.2f}  {e['seen_source_scenario']}"
            )
        else:
            click.echo(f"{case:<11} {pair:<26} failed: {e.get('error')}")
    load = doc["machine"].get("loadavg_1min_start")
    if load is not None and load > 0.5:
        click.echo(
            f"WARNING: load average was {load:.2f} when measuring: other processes compete "
            "for the CPUs and the round trips are noisy",
            err=True,
        )
    click.echo(f"wrote {output} ({doc['elapsed_s']:.0f} s of measurement)")


@click.command()
@click.argument("measurements", type=click.Path(dir_okay=False))
@click.option(
    "-o",
    "--output",
    default="params.toml",
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Parameter file (TOML with a [costs] table).",
)
@click.option(
    "--scenario",
    type=click.Path(dir_okay=False),
    help="Scenario file (default: the one recorded in MEASUREMENTS).",
)
@_SET
@click.option(
    "--fit-on",
    default=None,
    help="Comma-separated RTT cases to fit, or 'all' "
    "[default: localhost,same_node,ext_nomasq; the others are held out].",
)
@_errors_to_exit
def calibrate(
    measurements: str, output: str, scenario: str | None, sets: tuple[str, ...], fit_on: str | None
) -> None:
    """Fit per-hop costs to MEASUREMENTS and write a parameter file."""
    from sim.control.cluster import build_cluster
    from sim.spec.load import load_scenario
    from sim.testbed.calibrate import calibrate as fit_costs
    from sim.testbed.calibrate import parse_fit_on, write_params
    from sim.testbed.measure import read_measurements

    doc = read_measurements(measurements)
    meta = doc["scenario"]
    path = scenario or meta.get("file")
    overrides = _parse_sets(sets) if sets else dict(meta.get("overrides") or {})
    if not path or not Path(path).exists():
        raise UserError(
            f"scenario file {path!r} recorded in the measurements is not found",
            file=measurements,
            fix="pass --scenario SCENARIO",
        )
    scn = load_scenario(path, overrides)
    if scn.digest() != meta.get("sha256"):
        raise UserError(
            "the scenario differs from the one measured (digest)",
            file=path,
            fix="pass the measured scenario with --scenario and the same --set options",
        )
    cl = build_cluster(scn, path)
    fit = fit_costs(cl, doc, parse_fit_on(fit_on))
    write_params(
        fit,
        output,
        source={
            "measurements": measurements,
            "scenario": scn.name,
            "scenario_sha256": meta["sha256"],
        },
    )
    click.echo(
        f"endpoint (probe software) cost {fit['endpoint_us']:.3f} us per round trip "
        f"(fitted on {', '.join(fit['fit_on'])})"
    )
    click.echo("elementary costs, us per packet:")
    for e, v in fit["elements_us"].items():
        click.echo(f"  {e:<11} {v:8.3f}")
    if fit["undetermined"]:
        click.echo(
            "not determined by the fitted cases (kept near the scenario's costs): "
            + "; ".join(fit["undetermined"])
        )
    click.echo(f"{'case':<11} {'measured p50':>12} {'model p50':>10} {'residual':>9}")
    for case, c in fit["cases"].items():
        tag = "fitted" if c["fitted"] else "held out"
        click.echo(
            f"{case:<11} {c['measured_p50_us']:>12.2f} {c['model_p50_us']:>10.2f} "
            f"{c['residual_us']:>+9.2f}  {tag}"
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
@_SET
@click.option("--seed", default=1, show_default=True, help="Simulation seed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 if a verdict disagrees or a held-out prediction misses its tolerance.",
)
@_errors_to_exit
def compare(
    scenario: str,
    measurements: str,
    params: str,
    sets: tuple[str, ...],
    seed: int,
    as_json: bool,
    strict: bool,
) -> None:
    """Predicted vs measured RTTs, and model vs observed SNAT, for SCENARIO."""
    from sim.testbed.compare import compare as run_compare
    from sim.testbed.compare import format_report
    from sim.testbed.measure import read_measurements

    doc = read_measurements(measurements)
    res = run_compare(scenario, doc, params, overrides=_parse_sets(sets), seed=seed)
    if as_json:
        click.echo(json.dumps(res, indent=2))
    else:
        for line in format_report(res):
            click.echo(line)
    bad = any(not v["agree"] for v in res["verdicts"])
    bad |= any(r.get("within") is False and not r["fitted"] for r in res["rtt"].values())
    bad |= bool(res["ratio_cross_same"] and not res["ratio_cross_same"]["within"])
    if strict and bad:
        sys.exit(EXIT_FAILED)


if __name__ == "__main__":  # pragma: no cover - manual use before registration
    cli = click.Group(commands={"testbed": testbed, "calibrate": calibrate, "compare": compare})
    cli(prog_name="podnetsim")
