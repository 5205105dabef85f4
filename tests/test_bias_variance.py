"""bias_variance and learning_curve on the digits and on a regression table."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import diagnostics, layers as L
from fastnn.datasets import load_digits, train_test_split


def _digits():
    X, y = load_digits()
    return train_test_split(X / 16, y, test_size=0.3, random_state=0)


def _classifier(units, epochs, X, y, dropout=0.0):
    model = fn.Sequential([L.Dense(units, activation="relu"), L.Dropout(dropout),
                           L.Dense(10, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=epochs, batch_size=32, verbose=0)
    return model


def test_bias_variance_names_bias_for_a_tiny_undertrained_net_and_variance_for_a_big_one():
    X_train, X_val, y_train, y_val = _digits()
    small = _classifier(2, 3, X_train, y_train)
    d = diagnostics.bias_variance(small, X_train, y_train, X_val, y_val)
    assert d.problem == "bias" and "bigger network" in d.remedy
    assert d.avoidable_bias == pytest.approx(d.train_error) and d.train_error > 0.2
    # a big net on 60 samples fits them and fails elsewhere
    big = _classifier(256, 200, X_train[:60], y_train[:60])
    d = diagnostics.bias_variance(big, X_train[:60], y_train[:60], X_val, y_val,
                                  optimal_error=0.0)
    assert d.problem == "variance" and "more training data" in d.remedy
    assert d.train_error < 0.02 and d.variance > 0.1
    assert d.variance == pytest.approx(d.val_error - d.train_error)
    assert "mostly variance" in str(d)
    with pytest.raises(ValueError, match="optimal_error"):
        diagnostics.bias_variance(big, X_train, y_train, X_val, y_val, optimal_error=2)


def test_bias_variance_takes_original_labels_and_regression():
    X_train, X_val, y_train, y_val = _digits()
    names = np.array(list("abcdefghij"))
    model = _classifier(32, 10, X_train, names[y_train])
    d = diagnostics.bias_variance(model, X_train, names[y_train], X_val, names[y_val])
    assert d.val_error == pytest.approx(1 - np.mean(model.predict_classes(X_val) == names[y_val]))
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = X @ [1.0, 2.0, -1.0]
    reg = fn.Sequential([L.Dense(1)], seed=0)
    reg.compile("adam", "mse")
    reg.fit(X, y, epochs=2, verbose=0)
    d = diagnostics.bias_variance(reg, X[:150], y[:150], X[150:], y[150:])
    r2 = 1 - np.sum((reg.predict(X[:150])[:, 0] - y[:150]) ** 2) / np.sum(
        (y[:150] - y[:150].mean()) ** 2)
    assert d.train_error == pytest.approx(1 - r2, rel=1e-5)


def test_learning_curve_training_error_rises_and_validation_error_falls_with_data():
    X, y = load_digits()
    model = fn.Sequential([L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")],
                          input_dim=64, seed=0)
    model.compile("adam", "sparse_categorical_crossentropy")
    before = model.get_weights()
    curve = diagnostics.learning_curve(model, X / 16, y, [30, 0.5, 1.0], epochs=15)
    assert curve.sizes[0] == 30 and curve.sizes[-1] == int(round(0.8 * len(X)))
    assert curve.val_errors[-1] < curve.val_errors[0] - 0.1
    assert curve.train_errors[0] <= curve.val_errors[0]
    for a, b in zip(before, model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert "validation error" in str(curve)
    with pytest.raises(ValueError, match="sizes"):
        diagnostics.learning_curve(model, X / 16, y, [0])


def test_learning_curve_plot(tmp_path):
    pytest.importorskip("matplotlib")
    curve = diagnostics.LearningCurve([10, 20], [0.1, 0.2], [0.5, 0.3])
    path = curve.plot(tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 1000 and path == tmp_path / "curve.png"
