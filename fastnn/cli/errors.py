"""The error of the command line's user."""


class UsageError(Exception):
    """A mistake of the user (arguments, files, data), reported as one line.

    Commands raise it for what the user can fix; `fastnn.cli.main` prints
    ``fastnn: error: <message>`` and returns exit status 2. Errors that are not the
    user's are not turned into it, so that a bug in fastnn shows its traceback.
    """
