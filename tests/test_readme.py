"""Every code example and fastnn command in the README runs, so the README cannot go stale.

An example that imports an optional package (torch, onnxruntime) is skipped when that
package is missing, and so are the commands that read the ONNX files it writes.
"""
import importlib.util
import re
import shlex
from pathlib import Path


from fastnn.cli import main

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"```(python|bash)\n(.*?)```", re.S)
# Shell steps that install or run the test suite: documented, not run from inside it.
SETUP = ("pip install", "python -m pytest", "python bench/report.py")
IMPORT = re.compile(r"^(?:import|from) (\w+)", re.M)


def _missing(modules):
    return [m for m in modules if importlib.util.find_spec(m) is None]


def _blocks(kind):
    return [code for lang, code in BLOCK.findall(README.read_text()) if lang == kind]


def _commands():
    for block in _blocks("bash"):
        for line in block.splitlines():
            for part in line.split("&&"):
                part = part.strip()
                if part:
                    yield part


def test_readme_has_examples_and_commands():
    assert len(_blocks("python")) >= 3
    assert any(c.startswith("fastnn demo") for c in _commands())


def test_readme_examples_and_commands_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {}
    skipped = []
    for code in _blocks("python"):
        missing = _missing(IMPORT.findall(code))
        if missing:
            skipped += missing
            continue
        exec(compile(code, str(README), "exec"), namespace)
    assert namespace["model"].evaluate(namespace["X_test"], namespace["y_test"])["accuracy"] > 0.95
    for command in _commands():
        if command.startswith(SETUP):
            continue
        assert command.startswith("fastnn "), f"README command not run by any test: {command}"
        if ".onnx" in command and (skipped or _missing(["onnx"])):
            continue
        status = main(shlex.split(command)[1:])
        assert status == 0, f"{command!r} exited with {status}: {capsys.readouterr().err}"
    assert (tmp_path / "digits-pruned.safetensors").exists()
    assert (tmp_path / "fastnn-demo").is_dir()
