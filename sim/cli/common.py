"""Pieces shared by the command-line verbs: exit codes and ``--set`` overrides."""

from __future__ import annotations

import signal

import click

from sim.errors import UserError
from sim.spec.load import MAX_NESTING, nesting_problem

#: Exit statuses of every verb: success; a run failed or ``--strict`` found a
#: problem; bad input (the status every :class:`~sim.errors.UserError` carries);
#: interrupted by Ctrl-C (128 + SIGINT, as a shell reports it).
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = UserError.exit_code
EXIT_INTERRUPTED = 128 + signal.SIGINT

#: Whether the CLI runs as its own process (the console script, ``python -m``)
#: rather than inside another program (tests' ``CliRunner``, a notebook): only
#: then may a verb end the process itself (see ``batch_cmds._exit_now``).
OWNS_PROCESS = {"value": False}


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
        except RecursionError:
            value = None
        if value is None or nesting_problem(value, depth=1):
            raise UserError(
                f"--set {key.strip()!r}: the value is nested more than {MAX_NESTING} deep",
                field="--set",
                fix="give a plain value, list or inline table",
            )
        out[key.strip()] = value
    return out


TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def check_table_path(path: str, option: str) -> None:
    """Check before a run that ``path`` can take a table: known suffix, writable folder.

    Raises
    ------
    UserError
        Naming the option, so a run never ends by failing to write its output.
    """
    import os
    from pathlib import Path

    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    problem = fix = None
    if p.suffix.lower() not in TABLE_SUFFIXES:
        problem = f"cannot tell the format of {path!r} from its extension"
        fix = "end the file name in .csv or .parquet"
    elif p.is_dir():
        problem, fix = f"{path!r} is a directory", "give a file name"
    elif not parent.is_dir():
        problem = f"directory {str(parent)!r} does not exist"
        fix = f"create it first (mkdir -p {parent}) or pick another path"
    elif not os.access(parent, os.W_OK | os.X_OK) or (p.exists() and not os.access(p, os.W_OK)):
        problem, fix = f"cannot write {path!r} (permission denied)", "pick a writable path"
    if problem:
        raise UserError(problem, field=option, fix=fix)


SET_OPTION = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a scenario field by dotted path (list items by index or name), "
    "e.g. external_hosts.intranet.return_route_to_pods=false.",
)
