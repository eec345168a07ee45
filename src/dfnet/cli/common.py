"""Pieces shared by the sub-commands."""


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""
