"""Errors a user can cause: the CLI prints them as one line and exits with status 2."""


class GanbenchError(Exception):
    """A user-facing error: bad input, a missing resource. Printed as one line, exit status 2."""
