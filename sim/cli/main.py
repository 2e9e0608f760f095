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

    cl = load_cluster(scenario, parse_sets(sets))
    path = resolve(cl, src, dst)
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


def main() -> None:
    """Entry point of the ``podnetsim`` console script."""
    cli(prog_name="podnetsim")


if __name__ == "__main__":
    main()
