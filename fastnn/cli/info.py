"""``fastnn info``: versions, OpenMP, threads and BLAS."""
import fastnn


def add_parser(commands):
    """Add the ``info`` subcommand to `commands`."""
    info = commands.add_parser("info", help="versions, OpenMP, threads and BLAS")
    info.set_defaults(func=run)


def run(args):
    fastnn.show_config()
    return 0
