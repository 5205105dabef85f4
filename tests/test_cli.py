"""The command line: every subcommand in-process through `main`, and the error paths."""
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import cli
from fastnn.datasets import train_test_split
from fastnn.deployment import deploy
from fastnn.engine import load_engine
from fastnn.experiments import EXPERIMENTS, SPARSITIES
from fastnn.pruning import sparsity

CENTRES = np.array([[2.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]])


def _blobs(n=150, seed=0, offset=0):
    """Three well separated Gaussian blobs in 4-D; labels offset, offset + 1, offset + 2."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    X = CENTRES[y] + 0.3 * rng.standard_normal((n, 4))
    return X, y + offset


def _linear(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    return X, X @ np.array([1.0, -2.0, 0.5]) + 0.25


def _write_csv(path, X, y, names):
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header=",".join(names),
               comments="")
    return str(path)


def _run(capsys, *argv):
    """main(argv) with the exit status and the captured stdout and stderr."""
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    """A classifier trained by `fastnn train` on blobs labelled 0..2, and its data file."""
    folder = tmp_path_factory.mktemp("classifier")
    X, y = _blobs()
    data = folder / "blobs.npz"
    np.savez(data, X=X, y=y)
    model = folder / "model.safetensors"
    status = cli.main(["train", "--data", str(data), "--layers", "32,16", "--epochs", "20",
                       "--lr", "0.01", "--out", str(model)])
    assert status == 0
    return {"model": str(model), "data": str(data), "X": X, "y": y}


# -- info and entry points ------------------------------------------------------------------
def test_info_prints_the_configuration(capsys):
    status, out, err = _run(capsys, "info")
    assert status == 0 and err == ""
    assert f"fastnn: {fastnn.__version__}" in out
    assert "threads:" in out and "dtypes: float32, float64" in out


def test_help_lists_every_command(capsys):
    status, out, _ = _run(capsys, "--help")
    assert status == 0
    for command in ("demo", "train", "prune", "predict", "bench", "experiment", "info"):
        assert command in out


def test_each_command_runs_from_its_own_module():
    import importlib

    parser = cli.build_parser()
    for command in ("demo", "train", "prune", "predict", "bench", "experiment", "info"):
        args = parser.parse_args([command] + {"train": ["--data", "d.npz", "--out", "m"],
                                              "prune": ["m", "--data", "d.npz", "--out", "o"],
                                              "predict": ["m", "--data", "d.npy", "--out", "o"],
                                              "bench": ["m"], "experiment": ["init"]}
                                 .get(command, []))
        assert args.func is importlib.import_module(f"fastnn.cli.{command}").run


def test_python_dash_m_runs_the_cli():
    result = subprocess.run([sys.executable, "-m", "fastnn", "info"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"fastnn: {fastnn.__version__}" in result.stdout


# -- train ----------------------------------------------------------------------------------
@pytest.mark.parametrize("y, task", [
    (np.array([0, 1, 2, 1] * 10), "classification"),
    (np.array([1.0, 3.0] * 20), "classification"),
    (np.array([True, False] * 20), "classification"),
    (np.linspace(0, 1, 40), "regression"),
    (np.arange(40), "regression"),                      # as many values as samples
    (np.zeros((40, 2), dtype=int), "regression"),       # several outputs
])
def test_task_is_inferred_from_the_targets(y, task):
    assert cli.infer_task(y) == task


def test_train_classification_npz_keeps_the_labels(tmp_path, capsys):
    X, y = _blobs(offset=5)
    data = tmp_path / "blobs.npz"
    np.savez(data, X=X, y=y)
    out = tmp_path / "model.safetensors"
    status, text, _ = _run(capsys, "train", "--data", data, "--layers", "16", "--epochs", "15",
                           "--lr", "0.01", "--seed", "3", "--out", out)
    assert status == 0
    assert "classification, 3 classes (inferred" in text
    assert "3 classes (inferred; set --task to override): 5, 6, 7" in text
    assert "final validation metrics" in text and "diagnosis: training error" in text
    model = fastnn.load_model(out)
    assert model.output_dim == 3 and [l.units for l in model.layers[1:]] == [16, 3]
    assert isinstance(model.layers[0], fastnn.layers.Normalization)
    np.testing.assert_array_equal(model.classes, [5, 6, 7])
    assert np.mean(model.predict_classes(X) == y) >= 0.95


def test_train_regression_csv(tmp_path, capsys):
    X, y = _linear()
    data = _write_csv(tmp_path / "linear.csv", X, y, ["a", "b", "c", "target"])
    out = tmp_path / "reg.safetensors"
    status, text, _ = _run(capsys, "train", "--data", data, "--label", "target", "--layers",
                           "16", "--epochs", "40", "--lr", "0.01", "--validation-split", "0",
                           "--out", out)
    assert status == 0
    assert "regression, 1 output(s) (inferred" in text and "mae" in text
    assert "final validation metrics" not in text
    model = fastnn.load_model(out)
    mse = np.mean((model.predict(X)[:, 0] - y) ** 2)
    assert mse < 0.05 * np.var(y)


def test_train_csv_classification_with_task_flag(tmp_path, capsys):
    X, y = _blobs(90)
    data = _write_csv(tmp_path / "blobs.csv", X, y, ["w", "x", "y", "z", "label"])
    out = tmp_path / "model.safetensors"
    status, text, _ = _run(capsys, "train", "--data", data, "--task", "classification",
                           "--layers", "8", "--epochs", "2", "--activation", "tanh",
                           "--out", out)
    assert status == 0 and "(from --task)" in text
    model = fastnn.load_model(out)
    assert model.layers[1].activation.kernel == "tanh" and model.output_dim == 3
    assert model.table["columns"] == ["w", "x", "y", "z"] and model.table["label"] == "label"


# -- predict --------------------------------------------------------------------------------
def test_predict_writes_outputs_to_npy_and_csv(classifier, tmp_path, capsys):
    model = fastnn.load_model(classifier["model"])
    expected = model.predict(classifier["X"])
    status, text, _ = _run(capsys, "predict", classifier["model"], "--data",
                           classifier["data"], "--out", tmp_path / "p.npy")
    assert status == 0 and "3 outputs for 150 samples" in text
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), expected)

    status, _, _ = _run(capsys, "predict", classifier["model"], "--data", classifier["data"],
                        "--out", tmp_path / "p.csv")
    assert status == 0
    with open(tmp_path / "p.csv") as f:
        assert f.readline().strip() == "class_0,class_1,class_2"
    np.testing.assert_allclose(np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1),
                               expected, rtol=1e-6)


def test_predict_labels_from_csv_and_npy_inputs(classifier, tmp_path, capsys):
    X, y = classifier["X"], classifier["y"]
    expected = np.argmax(fastnn.load_model(classifier["model"]).predict(X), axis=1)
    csv_in = _write_csv(tmp_path / "in.csv", X, y, ["a", "b", "c", "d", "label"])
    status, _, _ = _run(capsys, "predict", classifier["model"], "--data", csv_in, "--out",
                        tmp_path / "labels.csv", "--labels")
    assert status == 0
    labels = np.loadtxt(tmp_path / "labels.csv", delimiter=",", skiprows=1, dtype=np.int64)
    np.testing.assert_array_equal(labels, expected)
    assert np.mean(labels == y) >= 0.95

    np.save(tmp_path / "X.npy", X)
    status, _, _ = _run(capsys, "predict", classifier["model"], "--data", tmp_path / "X.npy",
                        "--out", tmp_path / "labels.npy", "--labels")
    assert status == 0
    np.testing.assert_array_equal(np.load(tmp_path / "labels.npy"), expected)


def test_predict_with_an_engine_file(classifier, tmp_path, capsys):
    model = fastnn.load_model(classifier["model"])
    engine_path = tmp_path / "engine.safetensors"
    deploy(model).save(engine_path)
    status, _, _ = _run(capsys, "predict", engine_path, "--data", classifier["data"],
                        "--out", tmp_path / "p.npy")
    assert status == 0
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), model.predict(classifier["X"]),
                               rtol=1e-4, atol=1e-6)


# -- prune ----------------------------------------------------------------------------------
def test_prune_to_a_sparsity(classifier, tmp_path, capsys):
    out = tmp_path / "pruned.safetensors"
    status, text, _ = _run(capsys, "prune", classifier["model"], "--data", classifier["data"],
                           "--sparsity", "0.6", "--epochs", "1", "--out", out)
    assert status == 0
    assert "bytes_deployed" in text and "after: sparsity 0.600" in text
    pruned = fastnn.load_model(out)
    assert sparsity(pruned) == pytest.approx(0.6, abs=0.005)


def test_prune_within_a_budget(classifier, tmp_path, capsys):
    out = tmp_path / "pruned.safetensors"
    status, text, _ = _run(capsys, "prune", classifier["model"], "--data", classifier["data"],
                           "--max-drop", "0.02", "--step", "0.3", "--epochs", "2", "--out", out)
    assert status == 0 and "kept" in text
    X, y = classifier["X"], classifier["y"]
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    before = fastnn.load_model(classifier["model"]).evaluate(X_val, y_val)["accuracy"]
    pruned = fastnn.load_model(out)
    assert sparsity(pruned) >= 0.3
    assert pruned.evaluate(X_val, y_val)["accuracy"] >= before - 0.02


def test_prune_neurons_removes_hidden_units(classifier, tmp_path, capsys):
    out = tmp_path / "pruned.safetensors"
    status, text, _ = _run(capsys, "prune", classifier["model"], "--data", classifier["data"],
                           "--neurons", "0.5", "--epochs", "0", "--max-drop", "1", "--out", out)
    assert status == 0 and "removed 50% of the hidden units" in text
    assert [l.units for l in fastnn.load_model(out).layers[1:]] == [16, 8, 3]


def test_prune_never_saves_over_budget_unless_forced(classifier, tmp_path, capsys):
    out = tmp_path / "pruned.safetensors"
    status, text, err = _run(capsys, "prune", classifier["model"], "--data", classifier["data"],
                             "--sparsity", "0.97", "--epochs", "0", "--out", out)
    assert status == 1 and not out.exists()
    assert "held-out 20%" not in err and "not saved: on the held-out rows the accuracy fell " \
        "from" in err and "--max-drop 0.01" in err and len(err.strip().splitlines()) == 1
    status, _, err = _run(capsys, "prune", classifier["model"], "--data", classifier["data"],
                          "--sparsity", "0.97", "--epochs", "0", "--force", "--out", out)
    assert status == 0 and out.exists() and "saved anyway (--force)" in err


# -- bench ----------------------------------------------------------------------------------
def _bench_rows(text):
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split()[:1] == ["batch"])
    return [line.split() for line in lines[start + 1:]]


@pytest.mark.parametrize("kind", ["model", "engine"])
def test_bench_reports_latency_per_batch(classifier, tmp_path, capsys, kind):
    path = classifier["model"]
    if kind == "engine":
        path = tmp_path / "engine.safetensors"
        deploy(fastnn.load_model(classifier["model"])).save(path)
    status, text, _ = _run(capsys, "bench", path, "--batch", "1,8", "--repeat", "5",
                           "--threads", "1")
    assert status == 0
    assert ("engine file" if kind == "engine" else "model, deployed") in text
    assert "threads: 1" in text
    rows = _bench_rows(text)
    assert [r[0] for r in rows] == ["1", "8"]
    for _, p50, p99, throughput in rows:
        assert 0 < float(p50) <= float(p99)
        assert float(throughput.replace(",", "")) > 0


# -- experiments ----------------------------------------------------------------------------
def _table(text, columns):
    """{first cell: {column: cell}} from a printed experiment table."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split() == list(columns))
    rows = {}
    for line in lines[start + 2:]:
        cells = line.split()
        if len(cells) != len(columns):
            break
        rows[cells[0]] = dict(zip(columns, cells))
    return rows


def test_experiment_init(capsys):
    status, text, _ = _run(capsys, "experiment", "init", "--quick")
    assert status == 0
    rows = _table(text, EXPERIMENTS["init"].columns)
    assert list(rows) == ["zeros", "normal(sd=10)", "he_normal"]
    assert float(rows["zeros"]["loss"]) == pytest.approx(np.log(2), abs=1e-4)
    assert float(rows["zeros"]["accuracy"]) == 0.5
    assert float(rows["he_normal"]["accuracy"]) >= 0.95


def test_experiment_activations(capsys):
    status, text, _ = _run(capsys, "experiment", "activations", "--quick")
    assert status == 0
    rows = _table(text, EXPERIMENTS["activations"].columns)
    assert list(rows) == ["sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu",
                          "swish", "softplus"]
    # Four sigmoid layers deep, SGD barely moves: the loss stays near ln 2.
    assert float(rows["sigmoid"]["loss"]) > 0.65
    assert float(rows["relu"]["loss"]) < float(rows["sigmoid"]["loss"])


def test_experiment_dropout(capsys):
    status, text, _ = _run(capsys, "experiment", "dropout", "--quick")
    assert status == 0
    rows = _table(text, EXPERIMENTS["dropout"].columns)
    assert list(rows) == ["0.0", "0.3", "0.6", "0.9"]
    assert float(rows["0.0"]["test_accuracy"]) > float(rows["0.9"]["test_accuracy"])


def test_experiment_pruning(capsys):
    status, text, _ = _run(capsys, "experiment", "pruning", "--quick")
    assert status == 0
    rows = list(_table(text, EXPERIMENTS["pruning"].columns).values())
    assert len(rows) == len(SPARSITIES)
    reached = [float(r["sparsity"]) for r in rows]
    np.testing.assert_allclose(reached, SPARSITIES, atol=0.005)
    sizes = [int(r["model_bytes"]) for r in rows]
    assert sizes[1:] == sorted(sizes[1:], reverse=True) and sizes[-1] < sizes[0] / 5
    assert float(rows[0]["accuracy"]) > 0.9


def _has_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(_has_matplotlib(), reason="matplotlib is installed")
def test_plot_without_matplotlib_is_one_line(capsys, tmp_path):
    status, out, err = _run(capsys, "experiment", "init", "--plot", tmp_path / "x.png")
    assert status == 2 and out == ""  # refused before the experiment runs
    assert err.strip() == "fastnn: error: plots need matplotlib: pip install 'fastnn[plot]'"


@pytest.mark.skipif(not _has_matplotlib(), reason="needs matplotlib")
def test_plot_writes_an_image(capsys, tmp_path):
    status, _, _ = _run(capsys, "experiment", "pruning", "--quick", "--plot",
                        tmp_path / "p.png")
    assert status == 0
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- demo -----------------------------------------------------------------------------------
def test_demo_trains_prunes_deploys_and_checks(tmp_path, capsys):
    out = tmp_path / "demo"
    status, text, _ = _run(capsys, "demo", "--out", out)
    assert status == 0
    assert "test accuracy:" in text and "kept sparsity" in text
    for row in ("nonzero parameters", "model file (bytes)", "FLOPs per sample",
                "test accuracy", "latency, batch 1 ", "latency, batch 32 ",
                "latency, batch 256 "):
        assert row in text
    assert "predictions match" in text and "FAILED" not in text
    model = fastnn.load_model(out / "model.safetensors")
    assert sparsity(model) > 0.5
    engine = load_engine(out / "engine.safetensors")
    X = np.random.default_rng(0).random((20, 64))
    np.testing.assert_allclose(engine.predict(X), model.predict(X), rtol=1e-4, atol=1e-6)
    assert fastnn.load_model(out / "dense-model.safetensors").count_params() == \
        model.count_params()


# -- errors a user can cause ----------------------------------------------------------------
@pytest.fixture
def files(classifier, tmp_path):
    X, y = _blobs(30)
    paths = {"model": classifier["model"], "data": classifier["data"]}
    paths["no_y"] = str(tmp_path / "no_y.npz")
    np.savez(paths["no_y"], X=X)
    paths["text_csv"] = str(tmp_path / "text.csv")
    with open(paths["text_csv"], "w") as f:
        f.write("a,b,label\n1,2,0\n3,oops,1\n")
    paths["csv"] = _write_csv(tmp_path / "blobs.csv", X, y, ["a", "b", "c", "d", "label"])
    paths["headless_csv"] = str(tmp_path / "headless.csv")
    with open(paths["headless_csv"], "w") as f:
        f.write("1,2,0\n3,4,1\n")
    paths["wide"] = str(tmp_path / "wide.npz")
    np.savez(paths["wide"], X=np.zeros((5, 7)), y=np.zeros(5, int))
    paths["garbage"] = str(tmp_path / "garbage.safetensors")
    with open(paths["garbage"], "wb") as f:
        f.write(b"this is not a model file at all")
    paths["truncated"] = str(tmp_path / "truncated.safetensors")
    with open(classifier["model"], "rb") as f:
        whole = f.read()
    with open(paths["truncated"], "wb") as f:
        f.write(whole[:len(whole) // 2])
    paths["txt"] = str(tmp_path / "data.txt")
    with open(paths["txt"], "w") as f:
        f.write("1 2 3\n")
    paths["regressor"] = str(tmp_path / "reg.safetensors")
    reg = fastnn.Sequential([fastnn.layers.Dense(1)], input_dim=4)
    reg.compile("adam", "mse")
    reg.save(paths["regressor"])
    paths["npy"] = str(tmp_path / "X.npy")
    np.save(paths["npy"], X)
    paths["nan"] = str(tmp_path / "nan.npz")
    np.savez(paths["nan"], X=np.where(X > 2.5, np.nan, X), y=y)
    paths["binary_csv"] = str(tmp_path / "binary.csv")
    with open(paths["binary_csv"], "wb") as f:
        f.write(b"\xff\xfe\x00a,b\n")
    paths["two"] = str(tmp_path / "two.npz")
    np.savez(paths["two"], X=X[:1], y=y[:1])
    paths["tmp"] = str(tmp_path)
    return paths


ERRORS = {
    "missing data file": (["train", "--data", "{tmp}/absent.npz", "--out", "{tmp}/m"],
                          "absent.npz: no such file"),
    "unknown data format": (["train", "--data", "{txt}", "--out", "{tmp}/m"],
                            "unsupported data format '.txt'"),
    "npz without y": (["train", "--data", "{no_y}", "--out", "{tmp}/m"], "no array 'y'"),
    "csv without the label column": (["train", "--data", "{csv}", "--label", "target",
                                      "--out", "{tmp}/m"], "no column 'target'"),
    "csv with text": (["train", "--data", "{text_csv}", "--out", "{tmp}/m"],
                      "row 3, column 2 ('b') holds the text 'oops', not a number; use "
                      "--drop-missing"),
    "csv without header": (["train", "--data", "{headless_csv}", "--out", "{tmp}/m"],
                           "expected a header row"),
    "npy to train": (["train", "--data", "{npy}", "--out", "{tmp}/m"],
                     "a .npy file holds no targets"),
    "unknown activation": (["train", "--data", "{data}", "--activation", "relux",
                            "--out", "{tmp}/m"], "unknown activation 'relux'"),
    "missing output folder": (["train", "--data", "{data}", "--out", "{tmp}/no/dir/m"],
                              "does not exist"),
    "bad epochs": (["train", "--data", "{data}", "--epochs", "0", "--out", "{tmp}/m"],
                   "argument --epochs"),
    "bad layers": (["train", "--data", "{data}", "--layers", "8,x", "--out", "{tmp}/m"],
                   "argument --layers"),
    "bad sparsity": (["prune", "{model}", "--data", "{data}", "--sparsity", "1.5",
                      "--out", "{tmp}/p"], "argument --sparsity: must be in [0, 1), got 1.5"),
    "prune with nothing to do": (["prune", "{model}", "--data", "{data}", "--out", "{tmp}/p"],
                                 "needs --sparsity, --max-drop or --neurons"),
    "labels out of range": (["prune", "{model}", "--data", "{wide}", "--sparsity", "0.5",
                             "--out", "{tmp}/p"], "does not fit"),
    "model too narrow for the data": (["predict", "{model}", "--data", "{wide}",
                                       "--out", "{tmp}/p.npy"],
                                      "expects inputs of shape (n, 4), but X has shape (5, 7)"),
    "missing model": (["predict", "{tmp}/absent.safetensors", "--data", "{data}",
                       "--out", "{tmp}/p.npy"], "absent.safetensors: no such file"),
    "garbage model": (["predict", "{garbage}", "--data", "{data}", "--out", "{tmp}/p.npy"],
                      "not a valid fastnn model or engine file"),
    "truncated model for prune": (["prune", "{truncated}", "--data", "{data}", "--sparsity",
                                   "0.5", "--out", "{tmp}/p"], "not a valid fastnn model file"),
    "truncated model for bench": (["bench", "{truncated}"], "not a valid fastnn model"),
    "unknown output format": (["predict", "{model}", "--data", "{data}", "--out",
                               "{tmp}/p.txt"], "unsupported output format '.txt'"),
    "labels from a regressor": (["predict", "{regressor}", "--data", "{data}", "--labels",
                                 "--out", "{tmp}/p.npy"], "--labels needs a classifier"),
    "bad batch list": (["bench", "{model}", "--batch", "1,,2"], "argument --batch"),
    "unknown experiment": (["experiment", "nope"], "invalid choice: 'nope'"),
    "NaN in the features": (["train", "--data", "{nan}", "--out", "{tmp}/m"],
                            "X contains NaN or infinite values"),
    "csv that is not text": (["train", "--data", "{binary_csv}", "--out", "{tmp}/m"],
                             "not a UTF-8 text file"),
    "too few samples to split": (["prune", "{model}", "--data", "{two}", "--sparsity", "0.5",
                                  "--out", "{tmp}/p"], "two.npz: "),
    "unknown command": (["frobnicate"], "invalid choice: 'frobnicate'"),
    "no command": ([], "required: command"),
}


@pytest.mark.parametrize("error", [KeyError("layers"), TypeError("bad operand"),
                                   ValueError("a bug, not the user's data")])
def test_a_bug_in_fastnn_is_not_reported_as_a_user_error(monkeypatch, error):
    def broken(args):
        raise error

    monkeypatch.setattr("fastnn.cli.info.run", broken)
    with pytest.raises(type(error)):
        cli.main(["info"])


def test_experiment_choices_come_from_the_experiments(capsys):
    status, _, err = _run(capsys, "experiment", "nope")
    assert status == 2 and ", ".join(f"'{name}'" for name in EXPERIMENTS) in err


@pytest.mark.parametrize("case", list(ERRORS))
def test_user_errors_are_one_line_and_exit_2(files, capsys, case):
    argv, message = ERRORS[case]
    status, _, err = _run(capsys, *[a.format(**files) for a in argv])
    assert status == 2
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastnn: error: ")
    assert message in lines[0]


# -- convert, and ONNX files given to predict, prune and bench -----------------------------
@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    """An ONNX classifier written by fastnn, and data it fits."""
    pytest.importorskip("onnx")
    folder = tmp_path_factory.mktemp("convert")
    rng = np.random.default_rng(0)
    y = np.arange(120) % 3
    X = np.eye(3, 5)[y] * 2 + 0.3 * rng.standard_normal((120, 5))
    np.savez(folder / "data.npz", X=X, y=y)
    model = fastnn.Sequential([fastnn.layers.Dense(16, activation="relu"),
                               fastnn.layers.Dense(3, activation="softmax")], input_dim=5,
                              seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=20, verbose=0)
    fastnn.to_onnx(model, folder / "model.onnx")
    return {"folder": folder, "data": folder / "data.npz", "onnx": folder / "model.onnx",
            "model": model, "X": X}


def test_convert_runs_from_its_module():
    pytest.importorskip("onnx")
    from fastnn.cli import convert
    args = cli.build_parser().parse_args(["convert", "a.onnx", "b.safetensors"])
    assert args.func is convert.run


def test_onnx_to_model_and_back(onnx_files, capsys):
    folder, model = onnx_files["folder"], onnx_files["model"]
    status, out, err = _run(capsys, "convert", onnx_files["onnx"], folder / "m.safetensors")
    assert status == 0, err
    assert "converted" in out
    loaded = fastnn.load_model(folder / "m.safetensors")
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert loaded.loss is not None  # compiled, ready for fastnn prune
    status, _, err = _run(capsys, "convert", folder / "m.safetensors", folder / "m.onnx",
                          "--matmul", "--opset", "18")
    assert status == 0, err
    again = fastnn.from_onnx(folder / "m.onnx")
    np.testing.assert_array_equal(again.predict(onnx_files["X"]), model.predict(onnx_files["X"]))


def test_predict_prune_and_bench_read_onnx(onnx_files, capsys):
    folder, X = onnx_files["folder"], onnx_files["X"]
    status, _, err = _run(capsys, "predict", onnx_files["onnx"], "--data", onnx_files["data"],
                          "--out", folder / "p.npy")
    assert status == 0, err
    np.testing.assert_allclose(np.load(folder / "p.npy"), onnx_files["model"].predict(X), rtol=1e-6)
    status, out, err = _run(capsys, "prune", onnx_files["onnx"], "--data", onnx_files["data"],
                            "--sparsity", "0.8", "--epochs", "2", "--max-drop", "1",  # any drop
                            "--out", folder / "pruned.safetensors")
    assert status == 0, err
    assert fastnn.pruning.sparsity(fastnn.load_model(folder / "pruned.safetensors")) >= 0.79
    status, out, err = _run(capsys, "bench", onnx_files["onnx"], "--batch", "1", "--repeat", "3")
    assert status == 0, err
    # a pruned model (and an engine) to a sparse ONNX file
    status, _, err = _run(capsys, "convert", folder / "pruned.safetensors",
                          folder / "pruned.onnx", "--sparse")
    assert status == 0, err
    pruned = fastnn.load_model(folder / "pruned.safetensors")
    np.testing.assert_allclose(fastnn.from_onnx(folder / "pruned.onnx").predict(X),
                               pruned.predict(X), rtol=1e-6)
    fastnn.deploy(pruned).save(folder / "engine.safetensors")
    status, _, err = _run(capsys, "convert", folder / "engine.safetensors",
                          folder / "engine.onnx")
    assert status == 0, err


def test_convert_mistakes_are_one_line(onnx_files, tmp_path, capsys):
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    cases = [
        (("convert", tmp_path / "missing.onnx", tmp_path / "m.safetensors"), "no such file"),
        (("convert", onnx_files["onnx"], tmp_path / "m.npy"), "unsupported output format"),
        (("convert", tmp_path / "bad.onnx", tmp_path / "m.safetensors"), "cannot read"),
        (("predict", tmp_path / "bad.onnx", "--data", onnx_files["data"], "--out",
          tmp_path / "p.npy"), "cannot read"),
    ]
    for argv, message in cases:
        status, _, err = _run(capsys, *argv)
        assert status == 2 and message in err and err.count("\n") == 1, err
    fastnn.Sequential([fastnn.layers.Dense(2)], input_dim=3).save(tmp_path / "m.safetensors")
    status, _, err = _run(capsys, "convert", tmp_path / "m.safetensors", tmp_path / "m.onnx",
                          "--opset", "5")
    assert status == 2 and "opset" in err
