"""``podnetsim`` command line: thin verbs that call library functions.

Exit status: 0 success, 1 a check/verdict the user asked to fail on, 2 bad input
(one line on stderr naming the file, the field and the fix; never a traceback).
The verbs live in small modules beside this one; this module makes the group.
"""

from __future__ import annotations

import json
import sys
import typing

import click

from sim import __version__
from sim.cli.common import (
    EXIT_BAD_INPUT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    OWNS_PROCESS,
    SET_OPTION,
    parse_sets,
)
from sim.cli.progress import add_verbosity, set_verbosity
from sim.errors import UserError

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "cli", "main", "parse_sets"]


def usage_error(err: click.UsageError) -> UserError:
    """Report a parser error (unknown option, missing or bad argument) as one project line.

    The command path stands where a file name would (``podnetsim run: --jobs: 0 is
    not in the range x>=1. Fix: ...``).
    """
    ctx = err.ctx
    where = ctx.command_path if ctx is not None else "podnetsim"
    see = f"see '{where} --help'"
    param = getattr(err, "param", None)
    field = None
    if param is not None:
        # the long name (--jobs, not -j) says what the option is
        field = max(param.opts, key=len) if isinstance(param, click.Option) else None
        field = field or param.human_readable_name
    if isinstance(err, click.MissingParameter):
        return UserError("missing", file=where, field=field, fix=f"give it ({see})")
    if isinstance(err, click.BadParameter):
        return UserError(err.message, file=where, field=field, fix=f"correct the value ({see})")
    if isinstance(err, click.NoSuchOption):
        fix = "remove it or correct the spelling"
        if err.possibilities:
            fix += f" (did you mean {', '.join(sorted(err.possibilities))}?)"
        return UserError(f"no such option {err.option_name}", file=where, fix=f"{fix}; {see}")
    group = ctx.command if ctx is not None else None
    fix = see
    if isinstance(group, click.Group) and "command" in err.message.lower():
        fix = f"use one of: {', '.join(sorted(group.commands))}"
    return UserError(err.format_message(), file=where, fix=fix)


def _usage_exit(err: click.UsageError) -> typing.NoReturn:
    click.echo(f"error: {usage_error(err)}", err=True)
    raise click.exceptions.Exit(err.exit_code)


# ``podnetsim`` alone (or a group alone) prints its help: not an input error
_HELP_ONLY = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _Group(click.Group):
    """Turns :class:`UserError` and parser errors into one line on stderr and exit 2.

    Set once here, on the top group, so every verb (and every subgroup's verbs)
    reports option errors in the project's ``error: ... Fix: ...`` form.
    """

    def make_context(self, info_name, args, parent=None, **extra) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except _HELP_ONLY:
            raise
        except click.UsageError as err:
            _usage_exit(err)

    def invoke(self, ctx: click.Context):
        from sim.batch.signals import BatchInterrupted, stop_on_signals

        try:
            with stop_on_signals():  # SIGTERM too: one line, and clean-ups (finally) run
                return super().invoke(ctx)
        except _HELP_ONLY:
            raise
        except click.UsageError as err:
            _usage_exit(err)
        except UserError as err:
            click.echo(f"error: {err}", err=True)
            ctx.exit(err.exit_code)
        except BatchInterrupted as exc:  # `run` says more (its kept runs) itself
            verb = ctx.invoked_subcommand
            click.echo(f"interrupted by {exc}: podnetsim {verb} stopped", err=True)
            ctx.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(EXIT_INTERRUPTED)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="podnetsim")
def cli() -> None:
    """Packet performance simulator of Kubernetes pod networking."""
    set_verbosity(1)  # each invocation starts at normal; a verb's -q/-v then sets it


@cli.command()
@click.argument("scenario", type=click.Path(dir_okay=False))
@click.option("--strict", is_flag=True, help="Exit 1 if there are warnings.")
@SET_OPTION
def check(scenario: str, strict: bool, sets: tuple[str, ...]) -> None:
    """Validate SCENARIO and print its address plan, routes and NAT rules.

    Given an experiment file, validate the experiment and its scenario as
    ``podnetsim run`` would (every configuration, with and without --quick).
    """
    from sim.batch.check import check_experiment, is_experiment_file
    from sim.control import load_cluster

    if is_experiment_file(scenario):
        lines = check_experiment(scenario, parse_sets(sets))
        click.echo("\n".join(lines))
        if strict and any(line.startswith("warning: ") for line in lines):
            sys.exit(EXIT_FAILED)
        return
    cl = load_cluster(scenario, parse_sets(sets))
    click.echo("\n".join(cl.describe()))  # one write: 1,000 nodes make 190k lines
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


def _register() -> None:
    from sim.cli.batch_cmds import run
    from sim.cli.report_cmds import plot, report
    from sim.cli.simulate_cmds import bench, simulate
    from sim.cli.testbed_cmds import calibrate, compare, testbed

    for command in (simulate, bench, run, plot, report, testbed, calibrate, compare):
        cli.add_command(command)
    add_verbosity(cli)


_register()


def main() -> None:
    """Entry point of the ``podnetsim`` console script."""
    OWNS_PROCESS["value"] = True
    cli(prog_name="podnetsim")


if __name__ == "__main__":
    main()
