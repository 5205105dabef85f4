"""One fuzzing process: ``python -m tests.fuzz.worker TARGET CORPUS_DIR [libFuzzer flags]``.

Runs the seeds in CORPUS_DIR once (they must pass), takes the peak memory as the
reference, then hands over to atheris; a failing input is written by libFuzzer as
``crash-*`` under ``-artifact_prefix``.
"""
import os
import sys

import atheris

with atheris.instrument_imports(include=["fastnn"]):
    import fastnn  # noqa: F401  (instrumented for coverage before the targets import it)

from tests.fuzz import mutator, targets  # noqa: E402


def main(argv):
    name, corpus = argv[1], argv[2]
    target = targets.TARGETS[name]
    for seed in sorted(os.listdir(corpus)):
        with open(os.path.join(corpus, seed), "rb") as f:
            target(f.read())
    targets.set_baseline()
    structured = name.startswith("load_")
    atheris.Setup([argv[0], corpus] + argv[3:], target,
                  custom_mutator=mutator.custom_mutator if structured else None)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
