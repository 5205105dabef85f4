"""``fastnn convert``, and ONNX files given to predict, prune and bench."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import cli

pytest.importorskip("onnx")


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """An ONNX classifier written by fastnn, and data it fits."""
    folder = tmp_path_factory.mktemp("convert")
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    X = np.eye(3, 5)[y] * 2 + 0.3 * rng.standard_normal((120, 5))
    np.savez(folder / "data.npz", X=X, y=y)
    model = fn.Sequential([fn.layers.Dense(16, activation="relu"),
                           fn.layers.Dense(3, activation="softmax")], input_dim=5, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=20, verbose=0)
    fn.to_onnx(model, folder / "model.onnx")
    return {"folder": folder, "data": folder / "data.npz", "onnx": folder / "model.onnx",
            "model": model, "X": X}


def test_convert_runs_from_its_module():
    from fastnn.cli import convert
    args = cli.build_parser().parse_args(["convert", "a.onnx", "b.safetensors"])
    assert args.func is convert.run


def test_onnx_to_model_and_back(files, capsys):
    folder, model = files["folder"], files["model"]
    status, out, err = _run(capsys, "convert", files["onnx"], folder / "m.safetensors")
    assert status == 0, err
    assert "converted" in out
    loaded = fn.load_model(folder / "m.safetensors")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.loss is not None  # compiled, ready for fastnn prune
    status, _, err = _run(capsys, "convert", folder / "m.safetensors", folder / "m.onnx",
                          "--matmul", "--opset", "18")
    assert status == 0, err
    again = fn.from_onnx(folder / "m.onnx")
    np.testing.assert_array_equal(again.predict(files["X"]), model.predict(files["X"]))


def test_predict_prune_and_bench_read_onnx(files, capsys):
    folder, X = files["folder"], files["X"]
    status, _, err = _run(capsys, "predict", files["onnx"], "--data", files["data"],
                          "--out", folder / "p.npy")
    assert status == 0, err
    np.testing.assert_allclose(np.load(folder / "p.npy"), files["model"].predict(X), rtol=1e-6)
    status, out, err = _run(capsys, "prune", files["onnx"], "--data", files["data"],
                            "--sparsity", "0.8", "--epochs", "2", "--out",
                            folder / "pruned.safetensors")
    assert status == 0, err
    assert fn.pruning.sparsity(fn.load_model(folder / "pruned.safetensors")) >= 0.79
    status, out, err = _run(capsys, "bench", files["onnx"], "--batch", "1", "--repeat", "3")
    assert status == 0, err
    # a pruned model (and an engine) to a sparse ONNX file
    status, _, err = _run(capsys, "convert", folder / "pruned.safetensors",
                          folder / "pruned.onnx", "--sparse")
    assert status == 0, err
    pruned = fn.load_model(folder / "pruned.safetensors")
    np.testing.assert_allclose(fn.from_onnx(folder / "pruned.onnx").predict(X),
                               pruned.predict(X), rtol=1e-6)
    fn.deploy(pruned).save(folder / "engine.safetensors")
    status, _, err = _run(capsys, "convert", folder / "engine.safetensors",
                          folder / "engine.onnx")
    assert status == 0, err


def test_convert_mistakes_are_one_line(files, tmp_path, capsys):
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    cases = [
        (("convert", tmp_path / "missing.onnx", tmp_path / "m.safetensors"), "no such file"),
        (("convert", files["onnx"], tmp_path / "m.npy"), "unsupported output format"),
        (("convert", tmp_path / "bad.onnx", tmp_path / "m.safetensors"), "cannot read"),
        (("predict", tmp_path / "bad.onnx", "--data", files["data"], "--out",
          tmp_path / "p.npy"), "cannot read"),
    ]
    for argv, message in cases:
        status, _, err = _run(capsys, *argv)
        assert status == 2 and message in err and err.count("\n") == 1, err
    fn.Sequential([fn.layers.Dense(2)], input_dim=3).save(tmp_path / "m.safetensors")
    status, _, err = _run(capsys, "convert", tmp_path / "m.safetensors", tmp_path / "m.onnx",
                          "--opset", "5")
    assert status == 2 and "opset" in err
