"""``fastnn experiment``: the initialisation, activation, dropout, pruning and augmentation
experiments."""
import time

from fastnn import experiments
from fastnn.cli.errors import UsageError


def add_parser(commands):
    """Add the ``experiment`` subcommand to `commands`."""
    experiment = commands.add_parser(
        "experiment",
        help="initialisation, activation, dropout, pruning and augmentation experiments",
        description="Run one of the bundled experiments and print its table.")
    experiment.add_argument("name", choices=tuple(experiments.EXPERIMENTS))
    experiment.add_argument("--plot", metavar="FILE.png",
                            help="also draw the table (needs matplotlib: fastnn[plot])")
    experiment.add_argument("--quick", action="store_true",
                            help="fewer iterations and settings, for a fast look")
    experiment.set_defaults(func=run)


def run(args):
    experiment = experiments.EXPERIMENTS[args.name]
    if args.plot:
        try:
            experiments.require_matplotlib()  # fail before the experiment, not after
        except experiments.PlotUnavailableError as exc:
            raise UsageError(str(exc)) from None
    print(experiment.title + (" (quick)" if args.quick else ""))
    start = time.perf_counter()
    rows = experiment.run(**(experiment.quick if args.quick else {}))
    print(experiments.format_table(rows, experiment.columns))
    print(f"{time.perf_counter() - start:.1f} s")
    if args.plot:
        experiments.plot(rows, experiment, args.plot)
        print(f"plot written to {args.plot}")
    return 0
