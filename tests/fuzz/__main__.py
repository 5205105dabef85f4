"""Run the fuzzing campaign: ``python -m tests.fuzz --minutes N [--target NAME ...]``.

Each target runs in a worker process for its share of the time, on a corpus folder
seeded with valid files (kept under ``--corpus`` when given, so that a campaign can
resume). Prints the inputs run per target; exits 1 when any target found an input
that breaks its contract (saved as ``crash-*`` in ``--artifacts``).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

from tests.fuzz import corpus as seeds
from tests.fuzz.targets import TARGETS

SEEDS = {"load_model": seeds.model_seeds, "load_engine": seeds.engine_seeds,
         "read_csv": lambda: {k: v for k, v in seeds.data_seeds().items() if "csv" in k},
         "read_npz": lambda: {k: v for k, v in seeds.data_seeds().items() if "npz" in k}}


def write_seeds(name, folder):
    os.makedirs(folder, exist_ok=True)
    for seed, data in SEEDS[name]().items():
        with open(os.path.join(folder, seed), "wb") as f:
            f.write(data)


def run_target(name, seconds, corpus, artifacts, runs=None, jobs_env=None):
    """Fuzz `name` for `seconds` (or `runs` inputs); returns (inputs run, passed)."""
    write_seeds(name, corpus)
    os.makedirs(artifacts, exist_ok=True)
    cmd = [sys.executable, "-m", "tests.fuzz.worker", name, corpus,
           f"-max_total_time={int(seconds)}", "-timeout=20", "-rss_limit_mb=4096",
           "-max_len=1048576", "-print_final_stats=1",
           f"-artifact_prefix={os.path.join(artifacts, name)}-"]
    if runs is not None:
        cmd.append(f"-runs={int(runs)}")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [root] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    proc = subprocess.run(cmd, cwd=root, env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    counts = re.findall(r"stat::number_of_executed_units:\s*(\d+)", proc.stdout)
    executed = int(counts[-1]) if counts else 0
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:])
    return executed, proc.returncode == 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("--minutes", type=float, default=1.0,
                        help="minutes per target (default 1)")
    parser.add_argument("--target", action="append", choices=sorted(TARGETS),
                        help="fuzz only this target (repeatable); default all")
    parser.add_argument("--corpus", help="folder of per-target corpora to keep and resume")
    parser.add_argument("--artifacts", default=".", help="where failing inputs are written")
    parser.add_argument("--runs", type=int, help="stop each target after this many inputs")
    args = parser.parse_args(argv)
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        for name in args.target or sorted(TARGETS):
            corpus = os.path.join(args.corpus or scratch, name)
            executed, ok = run_target(name, args.minutes * 60, corpus, args.artifacts,
                                      args.runs)
            print(f"{name}: {executed} inputs, {'no finding' if ok else 'FINDING'}",
                  flush=True)
            failed |= not ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
