"""Errors that reach the user as one clear line.

Every error raised for bad *input* (a scenario or experiment file, a command-line
argument) is a :class:`UserError`: the CLI prints ``str(err)`` and exits with
status 2, never a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input, reported as ``FILE: FIELD: PROBLEM. Fix: FIX``.

    Parameters
    ----------
    problem : str
        What is wrong, in one sentence.
    file : str or None
        The file the input came from, if any.
    field : str or None
        The dotted field path inside the file (``nodes.1.address``), if any.
    fix : str or None
        What the user should do about it.
    """

    exit_code = 2

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        field: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.field = field
        self.fix = fix
        super().__init__(self.__str__())

    def __str__(self) -> str:
        """Return the ``FILE: FIELD: PROBLEM. Fix: FIX`` line."""
        parts = [p for p in (self.file, self.field) if p]
        text = ": ".join([*parts, self.problem.rstrip(".")]) + "."
        if self.fix:
            text += f" Fix: {self.fix.rstrip('.')}."
        return " ".join(text.split())


class ScenarioError(UserError):
    """A scenario file is malformed or describes an impossible cluster."""


class ExperimentError(UserError):
    """An experiment file is malformed or asks for something impossible."""


class ResolveError(UserError):
    """An endpoint name or address given to ``trace``/flows does not exist."""
