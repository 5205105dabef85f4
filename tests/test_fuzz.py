"""The fuzzing campaign in CI: every target for 60 seconds, all four at once.

Skipped where atheris does not import; ``python -m tests.fuzz --minutes N`` runs
longer campaigns.
"""
import os
import subprocess
import sys

import pytest

pytest.importorskip("atheris")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TARGETS = ("load_model", "load_engine", "read_csv", "read_npz")
SECONDS = int(os.environ.get("FASTNN_FUZZ_SECONDS", "60"))


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """Start every target in its own process; name -> (exit code, output).

    A failing input stays in the test's temporary folder (``<target>-crash-*``)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    folder = str(tmp_path_factory.mktemp("fuzz"))
    procs = {name: subprocess.Popen(
        [sys.executable, "-m", "tests.fuzz", "--target", name, "--minutes",
         str(SECONDS / 60), "--artifacts", folder], cwd=ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace")
        for name in TARGETS}
    outputs = {name: p.communicate(timeout=SECONDS + 600)[0] for name, p in procs.items()}
    return {name: (procs[name].returncode, outputs[name]) for name in TARGETS}


@pytest.mark.parametrize("target", TARGETS)
def test_fuzz_target_finds_nothing(campaign, target):
    code, output = campaign[target]
    assert code == 0, output[-3000:]
    line = [line for line in output.splitlines() if line.startswith(f"{target}:")][-1]
    executed = int(line.split()[1])
    assert executed >= 100, line
