"""``python -m fastnn``: the command line of `fastnn.cli`."""
import sys

from fastnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
