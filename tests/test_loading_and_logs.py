"""Loading a missing file, using a never-built model, and progress output in logs."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L


def test_missing_files_raise_file_not_found(tmp_path):
    for load in (fn.load_model, fn.load_engine):
        with pytest.raises(FileNotFoundError, match="absent.safetensors: no such file"):
            load(tmp_path / "absent.safetensors")


def test_never_built_model_says_so():
    model = fn.Sequential([L.Dense(2)])
    with pytest.raises(RuntimeError, match="not built: call build"):
        model.predict(np.zeros((1, 3)))
    model.compile("sgd", "mse")
    with pytest.raises(RuntimeError, match="not built: call build"):
        model.evaluate(np.zeros((1, 3)), np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="not built"):
        fn.deploy(model)


def test_progress_bar_leaves_nothing_in_a_log(capsys):
    rng = np.random.default_rng(0)
    model = fn.Sequential([L.Dense(1)], seed=0)
    model.compile("sgd", "mse")
    model.fit(rng.standard_normal((64, 2)), rng.standard_normal(64), epochs=2, batch_size=8,
              verbose=1)
    captured = capsys.readouterr()  # not a terminal: epoch lines only, no bar
    assert "\r" not in captured.err and "\r" not in captured.out
    assert captured.err == ""
    assert captured.out.count("Epoch") == 2
