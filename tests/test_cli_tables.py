"""The command line on real-looking tables: shifted, scaled, constant and categorical
columns, named labels, missing cells; standardisation, labels and budgets end to end."""
import csv
import json

import numpy as np
import pytest

import fastnn
from fastnn import cli, io, tables


def _run(capsys, *argv):
    status = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return status, out, err


def _table(n=240, seed=0):
    """Columns: age (shifted), income (scaled up), const, colour (categorical), noise;
    label: one of 'low', 'mid', 'high' from age, income and colour."""
    rng = np.random.default_rng(seed)
    age = rng.normal(45, 3, n)
    income = rng.normal(0, 1, n) * 5e4
    colour = rng.choice(["red", "green", "blue"], n)
    score = (age - 45) / 3 + income / 5e4 + np.where(colour == "red", 2.0, 0.0)
    label = np.where(score < -0.3, "low", np.where(score < 1.2, "mid", "high"))
    rows = [{"age": f"{a:.4f}", "income": f"{b:.2f}", "const": "7", "colour": c,
             "noise": f"{v:.4f}", "label": l}
            for a, b, c, v, l in zip(age, income, colour, rng.normal(0, 1, n), label)]
    return rows, label


def _write(path, rows, columns=None):
    columns = columns or list(rows[0])
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    rows, label = _table()
    data = _write(folder / "people.csv", rows)
    model = folder / "m.safetensors"
    status = cli.main(["train", "--data", str(data), "--categorical", "colour", "--layers",
                       "32", "--epochs", "40", "--lr", "0.01", "--out", str(model)])
    assert status == 0
    return {"folder": folder, "rows": rows, "label": label, "data": data, "model": model}


def test_train_standardises_keeps_names_and_predict_writes_them(trained, capsys):
    model = fastnn.load_model(trained["model"])
    assert isinstance(model.layers[0], fastnn.layers.Normalization)
    np.testing.assert_array_equal(model.classes, ["high", "low", "mid"])
    assert model.table["columns"] == ["age", "income", "const", "colour", "noise"]
    assert model.table["categorical"] == {"colour": ["blue", "green", "red"]}
    assert tables.feature_names(model.table)[3:6] == ["colour=blue", "colour=green",
                                                      "colour=red"]
    out = trained["folder"] / "labels.csv"
    # the training CSV as it is: the label column is dropped by name
    status, text, err = _run(capsys, "predict", trained["model"], "--data", trained["data"],
                             "--labels", "--out", out)
    assert status == 0, err
    with open(out) as f:
        written = [line.strip() for line in f][1:]
    assert set(written) <= {"low", "mid", "high"}
    assert np.mean(np.array(written) == trained["label"]) > 0.9
    # labels round-trip through the engine as well
    engine = fastnn.deploy(model)
    np.testing.assert_array_equal(engine.classes, model.classes)


def test_without_standardisation_the_raw_table_trains_worse(trained, capsys, tmp_path):
    status, text, _ = _run(capsys, "train", "--data", trained["data"], "--categorical",
                           "colour", "--layers", "32", "--epochs", "40", "--lr", "0.01",
                           "--no-standardize", "--out", tmp_path / "raw.safetensors")
    assert status == 0 and "standardising" not in text
    raw = fastnn.load_model(tmp_path / "raw.safetensors")
    assert not any(isinstance(l, fastnn.layers.Normalization) for l in raw.layers)
    std = fastnn.load_model(trained["model"])
    X, y, _ = tables.read_csv(trained["data"], schema=std.table)
    assert np.mean(std.predict_classes(X) == y) > np.mean(raw.predict_classes(X) == y) + 0.1


def test_predict_refuses_other_columns_naming_them(trained, capsys):
    rows = trained["rows"]
    bad = _write(trained["folder"] / "bad.csv", rows, ["age", "income", "colour", "extra"])
    status, _, err = _run(capsys, "predict", trained["model"], "--data", bad, "--out",
                          trained["folder"] / "p.npy")
    assert status == 2
    assert "the columns do not match the model's (missing const, noise; unexpected extra)" in err
    # without the label column, in the same order: accepted
    good = _write(trained["folder"] / "nolabel.csv", rows,
                  ["age", "income", "const", "colour", "noise"])
    status, _, err = _run(capsys, "predict", trained["model"], "--data", good, "--out",
                          trained["folder"] / "p.npy")
    assert status == 0, err
    assert np.load(trained["folder"] / "p.npy").shape == (len(rows), 3)


@pytest.mark.parametrize("cell, what", [("", "an empty cell"), ("NA", "the missing value 'NA'"),
                                        ("NaN", "the missing value 'NaN'"),
                                        ("twelve", "the text 'twelve', not a number")])
def test_a_bad_cell_is_named_by_row_and_column_with_advice(tmp_path, capsys, cell, what):
    rows, _ = _table(40)
    rows[4] = dict(rows[4], income=cell)
    data = _write(tmp_path / "t.csv", rows)
    status, _, err = _run(capsys, "train", "--data", data, "--categorical", "colour",
                          "--epochs", "1", "--out", tmp_path / "m.safetensors")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert f"row 6, column 2 ('income') holds {what}" in err
    assert "--drop-missing" in err and "--impute mean" in err and "--categorical income" in err
    # a category column given as numbers
    status, _, err = _run(capsys, "train", "--data", _write(tmp_path / "u.csv", _table(40)[0]),
                          "--epochs", "1", "--out", tmp_path / "m.safetensors")
    assert status == 2 and "column 4 ('colour') holds the text" in err


def test_drop_missing_and_impute_mean(tmp_path, capsys):
    rows, _ = _table(60)
    rows[2] = dict(rows[2], age="")
    rows[5] = dict(rows[5], noise="NA")
    data = _write(tmp_path / "t.csv", rows)
    X, y, schema = tables.read_csv(data, missing="drop", categorical=["colour"])
    assert X.shape == (58, 7) and y.shape == (58,) and schema["impute"] is None
    X, y, schema = tables.read_csv(data, missing="mean", categorical=["colour"])
    ages = [float(r["age"]) for i, r in enumerate(rows) if i != 2]
    assert X.shape == (60, 7) and X[2, 0] == pytest.approx(np.mean(ages))
    assert schema["impute"]["age"] == pytest.approx(np.mean(ages))
    status, _, err = _run(capsys, "train", "--data", data, "--categorical", "colour",
                          "--impute", "mean", "--epochs", "1", "--out", tmp_path / "m.fnn")
    assert status == 0, err
    model = fastnn.load_model(tmp_path / "m.fnn")
    assert model.table["impute"]["age"] == pytest.approx(np.mean(ages))
    # predict fills the gaps with the training means
    status, _, err = _run(capsys, "predict", tmp_path / "m.fnn", "--data", data, "--out",
                          tmp_path / "p.npy")
    assert status == 0, err and np.load(tmp_path / "p.npy").shape == (60, 3)


def test_unknown_category_at_predict_is_named(trained, capsys):
    rows = [dict(r) for r in trained["rows"][:5]]
    rows[1]["colour"] = "purple"
    data = _write(trained["folder"] / "purple.csv", rows)
    status, _, err = _run(capsys, "predict", trained["model"], "--data", data, "--out",
                          trained["folder"] / "p.npy")
    assert status == 2 and "row 3, column 4 ('colour') holds the category 'purple'" in err


def test_bad_table_schema_in_a_file_is_a_format_error(trained, tmp_path):
    tensors, meta = io.load_tensors(trained["model"])
    schema = json.loads(meta["table"])
    for bad in (dict(schema, columns=["age"]), dict(schema, impute={"age": "x"}),
                dict(schema, categorical={"nope": ["a"]}), [1, 2]):
        meta["table"] = json.dumps(bad)
        io.save_tensors(tmp_path / "m.safetensors", tensors, meta)
        with pytest.raises(fastnn.ModelFormatError, match="table schema"):
            fastnn.load_model(tmp_path / "m.safetensors")


def _regression_csv(path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal([100.0, 0.0, 5.0], [10.0, 1000.0, 0.1], (n, 3))
    y = (X[:, 0] - 100) / 10 + X[:, 1] / 1000 - (X[:, 2] - 5) * 10 + rng.normal(0, 0.5, n)
    np.savetxt(path, np.column_stack([X, y]), delimiter=",", header="a,b,c,target",
               comments="")
    return path


def test_prune_of_a_regressor_keeps_the_relative_budget(tmp_path, capsys):
    data = _regression_csv(tmp_path / "r.csv")
    status, text, err = _run(capsys, "train", "--data", data, "--label", "target", "--layers",
                             "64", "--epochs", "60", "--lr", "0.01", "--out", tmp_path / "r.fnn")
    assert status == 0, err
    assert "r2" in text and "diagnosis: training error" in text and "1 - r2" in text
    status, text, err = _run(capsys, "prune", tmp_path / "r.fnn", "--data", data,
                             "--sparsity", "auto", "--max-drop", "0.3", "--out",
                             tmp_path / "p.fnn")
    assert status == 0, err
    assert "a rise of the loss by at most 30%" in text and "held out with seed 0" in text
    X, y, _ = tables.read_csv(data, label="target")
    from fastnn.datasets import train_test_split
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.2, random_state=0)
    before = fastnn.load_model(tmp_path / "r.fnn").evaluate(X_val, y_val)["loss"]
    after = fastnn.load_model(tmp_path / "p.fnn").evaluate(X_val, y_val)["loss"]
    assert after <= before * 1.3 + 1e-12
    assert fastnn.pruning.sparsity(fastnn.load_model(tmp_path / "p.fnn")) > 0
    status, _, err = _run(capsys, "prune", tmp_path / "r.fnn", "--data", data, "--sparsity",
                          "0.95", "--epochs", "0", "--out", tmp_path / "q.fnn")
    assert status == 1 and "the loss rose from" in err and "--max-drop 0.05" in err
    assert not (tmp_path / "q.fnn").exists()


def test_prune_reads_the_training_csv_with_named_labels(trained, capsys):
    out = trained["folder"] / "pruned.safetensors"
    status, text, err = _run(capsys, "prune", trained["model"], "--data", trained["data"],
                             "--sparsity", "auto", "--out", out)
    assert status == 0, err
    assert "budget: a fall of the accuracy by at most 0.01" in text
    pruned = fastnn.load_model(out)
    np.testing.assert_array_equal(pruned.classes, ["high", "low", "mid"])
    assert pruned.table == fastnn.load_model(trained["model"]).table
