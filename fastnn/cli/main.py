"""The parser of the ``fastnn`` command and its entry point `main`."""
import argparse
import sys

import fastnn
from fastnn.cli import bench, convert, demo, experiment, info, predict, prune, train
from fastnn.callbacks import NonFiniteLossError
from fastnn.cli.errors import UsageError

# The subcommands, in the order of ``fastnn --help``: each module adds its parser and runs it.
COMMANDS = (demo, train, prune, predict, bench, convert, experiment, info)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``fastnn: error: ...``."""

    def error(self, message):
        command = self.prog.split(" ", 1)
        where = f"{command[1]}: " if len(command) > 1 else ""
        self.exit(2, f"fastnn: error: {where}{message} (see '{self.prog} --help')\n")


def build_parser():
    parser = _Parser(prog="fastnn", description="Train, prune, deploy and benchmark dense "
                     "neural networks on the CPU.")
    parser.add_argument("--version", action="version", version=f"fastnn {fastnn.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _describe(exc):
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, NonFiniteLossError):
        text = f"training diverged: {exc} (try a smaller --lr)"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


# What the user causes, told in one line: a mistake in the arguments or the files
# (UsageError), a file system that refuses a read or write, training that diverges with
# the chosen settings. Anything else is a bug in fastnn and shows its traceback.
USER_ERRORS = (UsageError, OSError, NonFiniteLossError)


def main(argv=None):
    """Run the command line `argv` (default ``sys.argv[1:]``); returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # argparse: --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except KeyboardInterrupt:
        print("fastnn: interrupted", file=sys.stderr)
        return 130
    except USER_ERRORS as exc:
        sys.stdout.flush()
        print(f"fastnn: error: {_describe(exc)}", file=sys.stderr)
        return 2

