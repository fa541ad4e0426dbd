"""Errors the CLI turns into one line and an exit status (2: bad input)."""


class DrtframeError(Exception):
    """A problem with what the user asked for. The message is shown as is, on one line."""

    exit_code = 2
