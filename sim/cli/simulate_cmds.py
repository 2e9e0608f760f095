"""``podnetsim simulate`` and ``podnetsim bench``."""

from __future__ import annotations

import json

import click

from sim.analysis.summary import LATENCY_KEYS
from sim.cli.batch_cmds import PARAMS_OPTION, blame_params
from sim.cli.common import SET_OPTION, check_table_path, parse_sets
from sim.cli.progress import echo_stderr, shows_activity
from sim.engine.budget import DEFAULT_MAX_HOP_RECORDS, DEFAULT_MAX_PACKETS, HIGHEST_CEILING
from sim.errors import UserError


def _fmt(x: float, nd: int = 2) -> str:
    return "-" if x != x else f"{x:.{nd}f}"


def _table(title: str, columns: tuple[str, ...], rows, left: int = 1):
    """Return a rich table with ``columns`` (the first ``left`` left-aligned) and ``rows``."""
    from rich.table import Table

    t = Table(title=title)
    for i, col in enumerate(columns):
        t.add_column(col, justify="left" if i < left else "right")
    for row in rows:
        t.add_row(*row)
    return t


def _flow_rows(flows: dict):
    """Yield one row per flow: counts, one-way latency (us), throughput (Gbit/s)."""
    for name, f in flows.items():
        lat = f["latency_us"]
        counts = [str(f[k]) for k in ("sent", "delivered", "dropped", "in_flight")]
        yield (
            name,
            f["kind"],
            *counts,
            *(_fmt(lat[k]) for k in LATENCY_KEYS),
            _fmt(f["throughput_gbps"], 3),
        )


def _rtt_rows(flows: dict):
    """Yield one row per request/response flow: transactions/s and round trips (us)."""
    for name, f in flows.items():
        if "rtt_us" in f:
            r = f["rtt_us"]
            rtts = (_fmt(r[k]) for k in LATENCY_KEYS)
            yield (name, _fmt(f["transactions_per_s"], 0), *rtts)


def _station_rows(stations: dict):
    """Yield one row per station: arrivals, drops, utilization, waits (us), occupancy."""
    for name, s in stations.items():
        yield (
            name,
            str(s["arrivals"]),
            str(s["drops"]),
            *(_fmt(s[k], 3) for k in ("utilization", "mean_wait_us", "mean_sojourn_us")),
            _fmt(s["mean_in_system"], 3),
            str(s["max_in_system"]),
        )


def print_summary(sm: dict) -> None:
    """Print a run summary as readable tables."""
    from rich.console import Console

    console = Console(width=160)
    console.print(
        f"scenario {sm['scenario']!r}, seed {sm['seed']}, {sm['duration_s']} s simulated "
        f"({sm['warmup_s']} s warm-up excluded)"
    )
    flow_cols = ("flow", "kind", "sent", "deliv", "drop", "in-fl")
    flow_cols += (*LATENCY_KEYS, "Gbit/s")
    console.print(_table("flows (one-way latency, us)", flow_cols, _flow_rows(sm["flows"]), 2))
    rtt_rows = list(_rtt_rows(sm["flows"]))
    if rtt_rows:
        rtt_cols = ("flow", "trans/s", *LATENCY_KEYS)
        console.print(_table("request/response round trips (us)", rtt_cols, rtt_rows))
    for name, f in sm["flows"].items():
        for reason, count in f["drops_by_reason"].items():
            console.print(f"drops of {name}: {count} x {reason}", highlight=False)
    st_cols = ("station", "arrivals", "drops", "util", "wait us", "sojourn us", "mean n", "max n")
    console.print(_table("stations", st_cols, _station_rows(sm["stations"])))
    for w in sm["warnings"]:
        console.print(f"WARNING: {w}", highlight=False)


def _load(scenario: str, params: str | None, sets: tuple[str, ...], run_length: dict):
    """Load SCENARIO with --params, then --set, then the run-length options applied."""
    from sim.spec import load_scenario
    from sim.validate.params import params_overrides

    set_values = parse_sets(sets)
    fitted = params_overrides(params) if params else {}
    overrides = {**fitted, **set_values}
    fitted = {k: v for k, v in fitted.items() if k not in set_values}  # --set wins
    overrides.update({f"simulation.{k}": v for k, v in run_length.items() if v is not None})
    try:
        return load_scenario(scenario, overrides)
    except UserError as err:
        raise blame_params(err, params, fitted) from None


@click.command()
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
@click.option(
    "--max-packets",
    type=click.FloatRange(min=0, max=HIGHEST_CEILING),
    metavar="N",
    default=DEFAULT_MAX_PACKETS,
    show_default=True,
    help="Stop before the run if it would make more packets than this (estimated).",
)
@click.option(
    "--max-hop-records",
    type=click.FloatRange(min=0, max=HIGHEST_CEILING),
    metavar="N",
    default=DEFAULT_MAX_HOP_RECORDS,
    show_default=True,
    help="Stop before the run if --hops-out would keep more per-hop rows than this.",
)
@click.option(
    "--engine",
    type=click.Choice(["auto", "simpy", "compiled"]),
    default="auto",
    show_default=True,
    help="auto: the compiled engine (numba) when every flow is open loop, else SimPy. "
    "Both give identical results.",
)
@PARAMS_OPTION
@SET_OPTION
def simulate(
    scenario: str,
    duration_s: float | None,
    warmup_s: float | None,
    seed: int | None,
    as_json: bool,
    packets_out: str | None,
    hops_out: str | None,
    max_packets: float,
    max_hop_records: float,
    engine: str,
    params: str | None,
    sets: tuple[str, ...],
) -> None:
    """Simulate the flows SCENARIO declares and summarize latency, throughput, drops.

    The run's work is estimated first; past --max-packets or --max-hop-records
    it does not start (see sim/engine/budget.py for the estimate and the defaults).
    """
    from sim.analysis import summarize
    from sim.analysis.tables import hop_table, packet_table, write_table
    from sim.engine import simulate as run
    for option, path in (("--packets-out", packets_out), ("--hops-out", hops_out)):
        if path:
            check_table_path(path, option)
    run_length = {"duration_s": duration_s, "warmup_s": warmup_s, "seed": seed}
    scn = _load(scenario, params, sets, run_length)
    if not scn.flows:
        raise UserError(
            "the scenario declares no flows",
            file=scenario,
            field="flows",
            fix="add [[flows]] tables (see experiments/scenarios/article.toml)",
        )
    from sim.engine.compiled.select import choose

    ran, why = choose(scn, engine, scenario)
    res = run(
        scn,
        file=scenario,
        record_hops=bool(hops_out) or None,
        max_packets=max_packets,
        max_hop_records=max_hop_records,
        engine=ran,
    )
    echo_stderr(f"engine: {res.engine} ({why})")
    sm = summarize(res)
    if as_json:
        click.echo(json.dumps(sm, indent=2, sort_keys=True))
    else:
        print_summary(sm)
    if packets_out:
        write_table(packet_table(res), packets_out)
    if hops_out:
        write_table(hop_table(res), hops_out)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--duration",
    "duration_s",
    type=click.FloatRange(min=0, min_open=True),
    default=0.6,
    show_default=True,
    help="Simulated seconds of the benchmark scenario (its work is bounded like simulate's).",
)
@click.option("--repeats", type=click.IntRange(min=1, max=100), default=3, show_default=True)
@shows_activity("bench: simulating the benchmark case and a bare SimPy loop")
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
    click.echo(f"packet columns, B/packet   {r['bytes_per_packet']:.1f}")
    click.echo(f"peak B/packet (+summary)   {r['peak_bytes_per_packet']:.1f}")
    click.echo(f"SimPy events / packet-hop  {r['events_per_packet_hop']:.3f}")
    for case, what in (("tcp", "TCP"), ("tcp_tso", "TCP with TSO")):
        c = r[case]
        click.echo(
            f"{what} ({c['duration_s']:g} s): {c['packets']} segments and ACKs, "
            f"{c['packet_hops_per_s']:,.0f} segment-hops/s, ratio {c['ratio']:.3f}, "
            f"{c['events_per_packet_hop']:.3f} SimPy events per segment-hop"
        )
    if r["compiled_packet_hops_per_s"] is None:
        click.echo("compiled engine            numba not installed (pip install 'podnetsim[fast]')")
        return
    how = "cache load" if r["compile_from_cache"] else "compile"
    click.echo(f"compiled packet-hops/s     {r['compiled_packet_hops_per_s']:,.0f}")
    click.echo(f"compiled / SimPy engine    {r['compiled_ratio']:.1f}")
    click.echo(f"first call ({how})  {r['compile_s']:.2f} s (excluded above)")
    click.echo(f"compiled peak B/packet     {r['compiled_peak_bytes_per_packet']:.1f}")
    click.echo(f"CPU path: SimPy hops/s     {r['cpu_packet_hops_per_s']:,.0f}")
    click.echo(f"CPU path: compiled hops/s  {r['cpu_compiled_packet_hops_per_s']:,.0f}")
    click.echo(f"CPU path: compiled / SimPy {r['cpu_compiled_ratio']:.1f}")
