"""Errors a user can cause: the CLI prints them as one line and exits with status 2.

Also the one way ganbench words an exception or a near-miss name in such a line:
:func:`first_line`, :func:`message_of`, :func:`one_line`, :func:`describe` and :func:`did_you_mean`.
"""

import difflib
from collections.abc import Iterable


def first_line(message: object) -> str:
    """The first line of ``message`` (an exception or text), stripped; "" when it is empty."""
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""


def message_of(exc: BaseException) -> str:
    """The first line of ``exc``'s message, or its type name when it has none."""
    return first_line(exc) or type(exc).__name__


def one_line(message: object, limit: int | None = None) -> str:
    """All of ``message`` (an exception or text) on one line: each run of whitespace, newlines
    included, becomes one space. Longer than ``limit`` characters: cut, ending in ``...``."""
    text = " ".join(str(message).split())
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 3, 0)] + "..."
    return text


def describe(exc: BaseException, *, whole: bool = False, limit: int | None = None) -> str:
    """``"TypeName: message"``: an exception in one line. The message is its first line; with
    ``whole``, all of it (:func:`one_line`, cut to ``limit``; ``(no message)`` when empty)."""
    text = (one_line(exc, limit) or "(no message)") if whole else first_line(exc)
    return f"{type(exc).__name__}: {text}"


class GanbenchError(Exception):
    """A user-facing error: bad input, a missing resource. Printed as one line, exit status 2."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """`` Did you mean 'x'?`` for the closest of ``choices`` to ``name``, else ``""``."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" Did you mean {close[0]!r}?" if close else ""


class EnvironmentFailure(GanbenchError):
    """The machine refused (a full disk, a file that cannot be written): one line, exit
    status 74 (EX_IOERR), apart from a user's mistake (2)."""

    exit_code = 74


class CellsBusy(GanbenchError):
    """Cells of this run are being trained by another process on the same ``--out``: one
    line, exit status 75 (EX_TEMPFAIL: rerun when that process has finished)."""

    exit_code = 75
