"""Saves are atomic and leave nothing behind, even when the process is killed."""
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import fastnn as fn
from fastnn import io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Saves two large models (their first weight tells them apart) to one target forever.
SAVER = textwrap.dedent("""
    import sys
    import fastnn as fn
    from fastnn import io, layers as L
    target, mode = sys.argv[1], sys.argv[2]
    if mode == "named":
        io._write_unnamed = lambda *args: False  # as where O_TMPFILE is missing
    models = []
    for value in (1.0, 2.0):
        m = fn.Sequential([L.Dense(2048, kernel_initializer="ones"), L.Dense(2048)],
                          input_dim=2048, seed=0)
        m.layers[0].kernel[0, 0] = value
        models.append(m)
    print("saving", flush=True)
    k = 0
    while True:
        models[k % 2].save(target)
        k += 1
""")


def _temps(folder):
    return sorted(p for p in os.listdir(folder) if p.endswith(io.TEMP_SUFFIX))


@pytest.mark.skipif(os.name != "posix", reason="SIGKILL is POSIX")
@pytest.mark.parametrize("mode", ["unnamed", "named"])
def test_a_save_killed_at_random_moments_leaves_old_or_new_and_no_temporary(tmp_path, mode):
    if mode == "unnamed" and not getattr(os, "O_TMPFILE", None):
        pytest.skip("no O_TMPFILE here")
    target = tmp_path / "big.fnn"
    rng = random.Random(13)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    seen = set()
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(target), mode], env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "saving"
        time.sleep(rng.uniform(0.0, 1.5))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        if target.exists():
            model = fn.load_model(target)
            seen.add(float(model.layers[0].kernel[0, 0]))
            assert model.layers[0].kernel[0, 0] in (1.0, 2.0)
        if mode == "unnamed":
            assert _temps(tmp_path) == []
        else:
            # a killed writer may leave its recognisable file; the next save removes it
            fn.Sequential([fn.layers.Dense(1)], input_dim=1).save(tmp_path / "big.fnn")
            assert _temps(tmp_path) == []
            target.unlink()
        assert sorted(os.listdir(tmp_path)) in ([], ["big.fnn"])
    assert seen, "no save completed before the kills"


def test_the_next_save_removes_temporaries_of_dead_writers_only(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".m.fnn.{dead.pid}.0123abcd{io.TEMP_SUFFIX}"
    live = tmp_path / f".m.fnn.{os.getppid()}.0123abcd{io.TEMP_SUFFIX}"
    other = tmp_path / f".other.fnn.{dead.pid}.0123abcd{io.TEMP_SUFFIX}"
    for p in (stale, live, other):
        p.write_bytes(b"partial")
    io.save_tensors(tmp_path / "m.fnn", {"a": np.ones(3)}, {})
    assert not stale.exists() and live.exists() and other.exists()


@pytest.mark.parametrize("unnamed", [True, False])
def test_saves_replace_the_target_with_the_mode_of_a_new_file(tmp_path, monkeypatch, unnamed):
    if not unnamed:
        monkeypatch.setattr(io, "_write_unnamed", lambda *args: False)
    path = tmp_path / "t.st"
    path.write_bytes(b"old")
    io.save_tensors(path, {"a": np.arange(4.0)}, {"k": "v"})
    tensors, meta = io.load_tensors(path)
    np.testing.assert_array_equal(tensors["a"], np.arange(4.0))
    assert meta == {"k": "v"}
    umask = os.umask(0)
    os.umask(umask)
    assert (path.stat().st_mode & 0o777) == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ["t.st"]


def test_a_save_into_a_missing_folder_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        io.save_tensors(tmp_path / "no" / "t.st", {"a": np.ones(1)}, {})


def test_tensors_from_bytes_returns_views_of_the_bytes():
    import safetensors.numpy

    data = safetensors.numpy.save({"w": np.arange(6, dtype=np.float32).reshape(2, 3),
                                   "i": np.arange(3, dtype=np.int64)}, metadata={"x": "y"})
    tensors, meta = io.tensors_from_bytes(data)
    assert meta == {"x": "y"} and not tensors["w"].flags.writeable
    np.testing.assert_array_equal(tensors["w"], np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(tensors["i"], np.arange(3))
