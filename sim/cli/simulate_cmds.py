"""``podnetsim simulate`` and ``podnetsim bench``."""

from __future__ import annotations

import json

import click

from sim.cli.common import SET_OPTION, check_table_path, parse_sets
from sim.engine.budget import DEFAULT_MAX_HOP_RECORDS, DEFAULT_MAX_PACKETS, HIGHEST_CEILING
from sim.errors import UserError


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
    sets: tuple[str, ...],
) -> None:
    """Simulate the flows SCENARIO declares and summarize latency, throughput, drops.

    The run's work is estimated first; past --max-packets or --max-hop-records
    it does not start (see sim/engine/budget.py for the estimate and the defaults).
    """
    from sim.analysis import summarize
    from sim.analysis.tables import hop_table, packet_table, write_table
    from sim.engine import simulate as run
    from sim.spec import load_scenario

    for option, path in (("--packets-out", packets_out), ("--hops-out", hops_out)):
        if path:
            check_table_path(path, option)
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
    click.echo(f"engine: {res.engine} ({why})", err=True)
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
    if r["compiled_packet_hops_per_s"] is None:
        click.echo("compiled engine            numba not installed (pip install 'podnetsim[fast]')")
        return
    how = "cache load" if r["compile_from_cache"] else "compile"
    click.echo(f"compiled packet-hops/s     {r['compiled_packet_hops_per_s']:,.0f}")
    click.echo(f"compiled / SimPy engine    {r['compiled_ratio']:.1f}")
    click.echo(f"first call ({how})  {r['compile_s']:.2f} s (excluded above)")
    click.echo(f"compiled peak B/packet     {r['compiled_peak_bytes_per_packet']:.1f}")
