"""The ``fastnn`` command: demo, train, prune, predict, bench, convert, experiment and info.

Each subcommand is a module ``fastnn/cli/<name>.py`` with ``add_parser(commands)`` and
``run(args)``, which returns an exit status; `fastnn.cli.data` reads the data files. `main`
parses the arguments and turns every error a user can cause (a missing or malformed
file, a model that does not fit the data, a bad value) into one line
``fastnn: error: ...`` on stderr and exit status 2.

The data files each command reads are described in `fastnn.cli.data`.

Class labels
------------
``fastnn train`` keeps the class labels (numbers or names) in the model, and
``fastnn predict --labels`` writes them back; see ``fastnn train --help``.
"""
from fastnn.cli.data import infer_task, read_data
from fastnn.cli.errors import UsageError
from fastnn.cli.main import build_parser, main

__all__ = ["main", "build_parser", "read_data", "infer_task", "UsageError"]
