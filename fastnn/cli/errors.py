"""The error of the command line's user."""


class UsageError(Exception):
    """A problem with the user's input, reported as one line."""
