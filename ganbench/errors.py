"""Errors a user can cause: the CLI prints them as one line and exits with status 2."""

import difflib
from collections.abc import Iterable


def first_line(message: object) -> str:
    """The first line of ``message`` (an exception or text), stripped; "" when it is empty."""
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""


def describe(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``: an exception in one line."""
    return f"{type(exc).__name__}: {first_line(exc)}"


class GanbenchError(Exception):
    """A user-facing error: bad input, a missing resource. Printed as one line, exit status 2."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""
