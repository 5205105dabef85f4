"""The ``fastnn`` command: demo, train, prune, predict, bench, convert, experiment and info.

Each subcommand is a module ``fastnn/cli/<name>.py`` with ``add_parser(commands)`` and
``run(args)``, which returns an exit status; `fastnn.cli.data` reads the data files. `main`
parses the arguments and turns every error a user can cause (a missing or malformed
file, a model that does not fit the data, a bad value) into one line
``fastnn: error: ...`` on stderr and exit status 2.

The data files each command reads are described in `fastnn.cli.data`.

Class labels
------------
``fastnn train`` numbers the distinct class values in increasing order, 0 to k-1, and
the model predicts these indices; the model file does not keep the original values (the
command prints the correspondence when it is not the identity). Labels given to
``fastnn prune`` must be these indices.
"""
from fastnn.cli.data import infer_task, read_data
from fastnn.cli.errors import UsageError
from fastnn.cli.main import build_parser, main

__all__ = ["main", "build_parser", "read_data", "infer_task", "UsageError"]
