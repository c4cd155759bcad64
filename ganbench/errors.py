"""Errors a user can cause: the CLI prints them as one line and exits with status 2."""


def first_line(message: object) -> str:
    """The first line of ``message`` (an exception or text), stripped; "" when it is empty."""
    lines = str(message).strip().splitlines()
    return lines[0] if lines else ""


def describe(exc: BaseException) -> str:
    """``"TypeName: first line of the message"``: an exception in one line."""
    return f"{type(exc).__name__}: {first_line(exc)}"


class GanbenchError(Exception):
    """A user-facing error: bad input, a missing resource. Printed as one line, exit status 2."""
