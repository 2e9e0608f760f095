"""Pieces shared by the command-line verbs: exit codes and ``--set`` overrides."""

from __future__ import annotations

import click

from sim.errors import UserError
from sim.spec.load import MAX_NESTING, nesting_problem

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


SET_OPTION = click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a scenario field by dotted path (list items by index or name), "
    "e.g. external_hosts.intranet.return_route_to_pods=false.",
)
