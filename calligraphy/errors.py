"""Errors every part may raise to end a command with one clear line instead of a traceback."""


class UsageError(Exception):
    """A problem with the user's input or data: the message is shown as is, without a traceback."""
