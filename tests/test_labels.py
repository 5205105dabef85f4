"""Class labels: fit on any labels, predict_classes, evaluate, save/load, deploy, engine files."""
import json

import numpy as np
import pytest

import fastnn as fn
from fastnn import io, labels
from fastnn import layers as L
from fastnn.datasets import load_digits, train_test_split


def _blobs(n=150, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    centers = rng.standard_normal((k, d)) * 4
    return centers[y] + rng.standard_normal((n, d)), y


def _classifier(out, act, loss, d=4, seed=0):
    model = fn.Sequential([L.Dense(16, activation="relu"), L.Dense(out, activation=act)],
                          seed=seed)
    model.compile("adam", loss, metrics=["accuracy"])
    return model


KINDS = {
    "ints": np.array([10, 20, 30]),
    "negative": np.array([-7, 0, 3]),
    "strings": np.array(["setosa", "versicolor", "virginica"]),
    "floats": np.array([0.5, 1.5, 2.25]),
}


@pytest.mark.parametrize("loss", ["sparse_categorical_crossentropy", "categorical_crossentropy"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_fit_on_any_labels_predicts_the_original_ones(kind, loss):
    X, index = _blobs()
    names = KINDS[kind]
    y = names[index]
    model = _classifier(3, "softmax", loss)
    model.fit(X, y, epochs=30, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model.classes, np.sort(names))
    assert model.classes.dtype.kind == names.dtype.kind
    pred = model.predict_classes(X)
    assert pred.dtype.kind == names.dtype.kind
    assert np.mean(pred == y) > 0.95
    # evaluate takes the original labels, and its accuracy is predict_classes' accuracy
    assert model.evaluate(X, y)["accuracy"] == pytest.approx(np.mean(pred == y))
    # validation data in original labels too
    history = model.fit(X, y, epochs=1, verbose=0, validation_data=(X, y))
    assert history.history["val_accuracy"][-1] > 0.95


def test_binary_labels_strings_and_booleans():
    X, index = _blobs(k=2)
    for names in (np.array(["no", "yes"]), np.array([False, True])):
        model = _classifier(1, "sigmoid", "binary_crossentropy")
        model.fit(X, names[index], epochs=30, batch_size=16, verbose=0)
        np.testing.assert_array_equal(model.classes, names)
        pred = model.predict_classes(X)
        assert np.mean(pred == names[index]) > 0.95
        assert model.evaluate(X, names[index])["accuracy"] == pytest.approx(
            np.mean(pred == names[index]))


def test_binary_soft_targets_stay_probabilities():
    X, index = _blobs(k=2)
    model = _classifier(1, "sigmoid", "binary_crossentropy")
    model.fit(X, np.where(index == 1, 0.9, 0.1), epochs=2, verbose=0)
    assert model.classes is None
    assert set(np.unique(model.predict_classes(X))) <= {0, 1}


def test_indices_keep_their_meaning_and_classes_are_the_range():
    X, index = _blobs(k=3)
    model = _classifier(5, "softmax", "sparse_categorical_crossentropy")
    model.fit(X, index, epochs=1, verbose=0)  # labels 0..2 of a 5-unit output
    np.testing.assert_array_equal(model.classes, np.arange(5))


def test_set_classes_fixes_the_order_and_is_validated():
    X, index = _blobs()
    model = _classifier(3, "softmax", "sparse_categorical_crossentropy")
    model.classes = ["c", "b", "a"]
    model.fit(X, np.array(["c", "b", "a"])[index], epochs=30, batch_size=16, verbose=0)
    np.testing.assert_array_equal(model.classes, ["c", "b", "a"])
    # unit i is label classes[i]
    assert np.mean(np.argmax(model.predict(X), axis=1) == index) > 0.95
    with pytest.raises(ValueError, match="unique"):
        model.classes = ["a", "a", "b"]
    with pytest.raises(ValueError, match="takes 3"):
        model.classes = ["a", "b"]
    with pytest.raises(ValueError, match="must all be strings, all booleans or all numbers"):
        model.classes = [1, "a", 2]
    with pytest.raises(ValueError, match="finite"):
        model.classes = [1.0, np.nan, 2.0]
    with pytest.raises(ValueError, match=r"not among the model's classes.*'d'"):
        model.evaluate(X[:3], ["a", "b", "d"])
    with pytest.raises(ValueError, match="holds numbers but the model's classes are strings"):
        model.evaluate(X[:3], [0, 1, 2])
    model.classes = None
    assert model.classes is None


def test_too_many_labels_for_the_output():
    X, index = _blobs(k=3)
    model = _classifier(2, "softmax", "sparse_categorical_crossentropy")
    with pytest.raises(ValueError, match="3 distinct labels but the output of 2 units takes 2"):
        model.fit(X, np.array(["a", "b", "c"])[index], verbose=0)
    assert model.classes is None


def test_class_weight_takes_original_labels():
    X, index = _blobs(k=2)
    y = np.array(["neg", "pos"])[index]
    a = _classifier(1, "sigmoid", "binary_crossentropy", seed=3)
    a.fit(X, y, epochs=2, shuffle=False, verbose=0, class_weight={"neg": 1.0, "pos": 3.0})
    b = _classifier(1, "sigmoid", "binary_crossentropy", seed=3)
    b.fit(X, y, epochs=2, shuffle=False, verbose=0, sample_weight=np.where(index == 1, 3.0, 1.0))
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(wa, wb, rtol=1e-6)


def _digits_with_names():
    X, y = load_digits()
    names = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
                      "nine"])
    X_train, X_test, y_train, y_test = train_test_split(X, names[y], test_size=0.25, random_state=0)
    model = fn.Sequential([L.Dense(32, activation="relu"), L.Dense(10, activation="softmax")],
                          seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=10, batch_size=64, verbose=0)
    return model, X_test, y_test


def test_labels_round_trip_through_save_load_deploy_and_engine_files(tmp_path):
    model, X, y = _digits_with_names()
    pred = model.predict_classes(X)
    assert np.mean(pred == y) > 0.85
    model.save(tmp_path / "m.safetensors")
    loaded = fn.load_model(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(loaded.classes, model.classes)
    np.testing.assert_array_equal(loaded.predict_classes(X), pred)
    assert loaded.evaluate(X, y)["accuracy"] == pytest.approx(np.mean(pred == y))
    engine = fn.deploy(loaded)
    np.testing.assert_array_equal(engine.classes, model.classes)
    np.testing.assert_array_equal(engine.predict_classes(X), pred)
    engine.save(tmp_path / "e.safetensors")
    again = fn.load_engine(tmp_path / "e.safetensors")
    np.testing.assert_array_equal(again.predict_classes(X), pred)
    # a model without classes still saves and loads
    bare = fn.Sequential([L.Dense(2)], input_dim=3)
    bare.save(tmp_path / "b.safetensors")
    assert fn.load_model(tmp_path / "b.safetensors").classes is None
    assert fn.deploy(bare).classes is None


@pytest.mark.parametrize("bad", [["a", "a"], [1, "x"], {"a": 1}, "ab", [1.5, None], ["a"]])
def test_bad_classes_in_files_raise_model_format_error(tmp_path, bad):
    model = fn.Sequential([L.Dense(1, activation="sigmoid")], input_dim=3)
    model.classes = ["neg", "pos"]
    for kind, save, load in (("model", model.save, fn.load_model),
                             ("engine", fn.deploy(model).save, fn.load_engine)):
        path = tmp_path / f"{kind}.safetensors"
        save(path)
        tensors, meta = io.load_tensors(path)
        meta["classes"] = json.dumps(bad)
        io.save_tensors(path, tensors, meta)
        with pytest.raises(fn.ModelFormatError, match="classes"):
            load(path)


def test_engine_classes_are_validated():
    W = np.ones((3, 2))
    engine = fn.InferenceEngine([{"kind": "dense", "W": W, "activation": "softmax"}],
                                classes=["x", "y"])
    assert engine.predict_classes(np.zeros((4, 3))).tolist() == ["x"] * 4
    with pytest.raises(ValueError, match="takes 2"):
        fn.InferenceEngine([{"kind": "dense", "W": W}], classes=["x", "y", "z"])


def test_check_classes_and_encode_helpers():
    c = labels.check_classes([3, 1, 2])
    assert c.dtype == np.int64 and not c.flags.writeable
    np.testing.assert_array_equal(labels.encode([2, 3, 1, 3], c), [2, 0, 1, 0])
    np.testing.assert_array_equal(labels.encode(np.array(["b", "a"], dtype=object),
                                                labels.check_classes(["a", "b"])), [1, 0])
    with pytest.raises(ValueError, match="one kind"):
        labels.encode(np.array(["a", 1], dtype=object), labels.check_classes(["a", "b"]))
    assert labels.check_classes([1, 2.5]).dtype == np.float64
    assert labels.check_classes([True, False]).dtype == bool
