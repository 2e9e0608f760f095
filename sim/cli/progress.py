"""Progress and verbosity of the command line.

On a terminal a batch shows a progress bar (runs done of total, elapsed, ETA,
the parameters of the run that just ended, by name); off a terminal, one line per
run on stderr with its id (its file in ``runs/``) and parameter values. ``-q``
silences both; ``-v`` adds a line per run on a terminal too, and turns on the
``sim`` loggers' INFO messages (``-vv``: DEBUG). Every verb takes ``-q``/``-v``
(see :func:`add_verbosity`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import sys
import time

import click

#: -q: 0, default: 1, -v: 2, -vv: 3.
_LEVEL = {"value": 1}


def verbosity() -> int:
    """Return the verbosity chosen on the command line (0 quiet, 1 normal, 2+ verbose)."""
    return _LEVEL["value"]


def set_verbosity(level: int) -> None:
    """Set the verbosity and the ``sim`` loggers' level to match."""
    _LEVEL["value"] = level
    logging.getLogger("sim").setLevel(
        {0: logging.ERROR, 1: logging.WARNING, 2: logging.INFO}.get(level, logging.DEBUG)
    )


def _quiet(ctx: click.Context, _param, value: bool) -> None:
    if value:
        set_verbosity(0)


def _verbose(ctx: click.Context, _param, value: int) -> None:
    if value:
        set_verbosity(1 + value)


def add_verbosity(command: click.Command) -> None:
    """Give ``command`` (and every verb of a group) ``-q/--quiet`` and ``-v/--verbose``."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_verbosity(sub)
        return
    if any("--quiet" in getattr(p, "opts", ()) for p in command.params):
        return
    command.params += [
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=_quiet,
                     help="Print only results and errors (no progress)."),
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=_verbose,
                     help="Say more (a line per run on a terminal too); -vv for debug."),
    ]  # fmt: skip


def describe(params: dict) -> str:
    """Parameter values by their short names: ``placement=cross-node rate_gbps=7.5``."""
    return " ".join(f"{k.rsplit('.', 1)[-1]}={v}" for k, v in params.items())


class BatchProgress:
    """Progress of a batch: a bar on a terminal, plain log lines otherwise.

    Parameters
    ----------
    label : str
        What runs (shown before the bar or in the first line).
    console : rich.console.Console, optional
        Where a bar goes (default: stderr); a terminal console gets a bar.
    """

    def __init__(self, label: str, console=None) -> None:
        from rich.console import Console

        self.label = label
        self.console = console or Console(stderr=True)
        self.tty = self.console.is_terminal
        self.bar = None
        self.done = self.total = 0
        self.started = time.monotonic()

    def start(self, total: int, already: int) -> None:
        """Begin: ``total`` runs, of which ``already`` were done (resume)."""
        self.total, self.done = total, already
        if verbosity() == 0:
            return
        if not self.tty:
            click.echo(f"{self.label}: {total} runs, {already} already done", err=True)
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,  # fmt: skip
            TimeRemainingColumn,
        )

        self.bar = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            TextColumn("{task.fields[last]}"), console=self.console, transient=False,
        )  # fmt: skip
        self.bar.start()
        self.task = self.bar.add_task(self.label, total=total, completed=already, last="")

    def step(self, spec, error: str | None) -> None:
        """One run ended (``error`` set if it failed)."""
        self.done += 1
        if verbosity() == 0 and not error:
            return
        what = f"{describe(spec.params)} rep={spec.replication}"
        state = f"FAILED: {error}" if error else "done"
        if self.bar is not None:
            self.bar.update(self.task, advance=1, last=what)
            if error or verbosity() >= 2:
                self.bar.console.print(f"run {spec.run_id} {what} {state}", markup=False)
        else:
            elapsed = time.monotonic() - self.started
            line = f"[{self.done}/{self.total}] {spec.run_id} {what} {state} ({elapsed:.1f} s)"
            click.echo(line, err=True)

    def stop(self) -> None:
        """End the bar (idempotent)."""
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextlib.contextmanager
def activity(label: str, console=None):
    """Show that ``label`` is under way.

    A spinner with the elapsed time on a terminal (cleared when done); off a
    terminal a line at the start and one at the end with ``-v`` only, so that bad
    input stays one line; nothing with ``-q``.
    """
    from rich.console import Console

    console = console or Console(stderr=True)
    if verbosity() == 0:
        yield
        return
    if not console.is_terminal:  # lines only with -v: bad input stays one line
        t0 = time.monotonic()
        if verbosity() >= 2:
            click.echo(f"{label} ...", err=True)
        yield
        if verbosity() >= 2:
            click.echo(f"{label}: done in {time.monotonic() - t0:.1f} s", err=True)
        return
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:  # fmt: skip
        bar.add_task(label, total=None)
        yield


def shows_activity(label: str):
    """Decorate a verb so it runs inside :func:`activity` (``label`` names the work)."""

    def wrap(func):
        @functools.wraps(func)
        def inner(*args, **kwargs):
            with activity(label):
                return func(*args, **kwargs)

        return inner

    return wrap


def echo_stderr(text: str) -> None:
    """Write a line to stderr unless ``-q`` (for notes that are not results)."""
    if verbosity() > 0:
        sys.stderr.write(text + "\n")
