"""class_weight and sample_weight are checked before training starts."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L


def _model(out=3, loss="sparse_categorical_crossentropy"):
    model = fn.Sequential([L.Dense(out, activation="softmax" if out > 1 else "sigmoid")],
                          input_dim=2, seed=0)
    model.compile(fn.optimizers.SGD(lr=0.1), loss)
    return model


def _data(k=3, n=30):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 2)), np.arange(n) % k


@pytest.mark.parametrize("key", [-1, 1.7, 99, "a", 3, True, None, (1,)])
def test_class_weight_keys_must_be_classes(key):
    X, y = _data()
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=f"class_weight key {key!r}".replace("(", r"\(")
                       .replace(")", r"\)")):
        model.fit(X, y, class_weight={0: 1.0, key: 5.0}, verbose=0)
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


def test_declared_classes_absent_from_y_are_accepted():
    X, y = _data(k=2)  # the output declares 3 classes; only 0 and 1 occur
    model = _model()
    model.fit(X, y, class_weight={0: 1.0, 1: 2.0, 2: 3.0}, verbose=0)
    model.fit(X, y, class_weight={np.int64(1): 2.0}, verbose=0)


def test_binary_and_one_hot_targets_declare_their_classes():
    X, y = _data(k=2)
    binary = _model(out=1, loss="binary_crossentropy")
    binary.fit(X, y, class_weight={0: 1.0, 1: 3.0}, verbose=0)
    with pytest.raises(ValueError, match="class_weight key 2"):
        binary.fit(X, y, class_weight={2: 1.0}, verbose=0)
    onehot = _model(loss="categorical_crossentropy")
    onehot.fit(X, np.eye(3)[y], class_weight={2: 0.5}, verbose=0)


@pytest.mark.parametrize("weight", [-1.0, float("nan"), float("inf"), "x", None])
def test_class_weight_values_must_be_finite_and_non_negative(weight):
    X, y = _data()
    with pytest.raises((TypeError, ValueError), match=r"class_weight\[1\]"):
        _model().fit(X, y, class_weight={1: weight}, verbose=0)


def test_class_weight_must_be_a_dict():
    X, y = _data()
    with pytest.raises(TypeError, match="class_weight"):
        _model().fit(X, y, class_weight=[1.0, 2.0, 3.0], verbose=0)


@pytest.mark.parametrize("weights", [np.zeros(30), np.r_[-1.0, np.ones(29)],
                                     np.r_[np.nan, np.ones(29)], np.r_[np.inf, np.ones(29)]])
def test_sample_weight_must_be_finite_non_negative_and_not_all_zero(weights):
    X, y = _data()
    model = _model()
    with pytest.raises(ValueError, match="sample_weight|all zero"):
        model.fit(X, y, sample_weight=weights, verbose=0)


def test_class_weights_that_zero_every_sample_are_refused():
    X, y = _data(k=2)
    with pytest.raises(ValueError, match="all zero"):
        _model().fit(X, y, class_weight={0: 0.0, 1: 0.0}, verbose=0)
    with pytest.raises(ValueError, match="all zero"):
        _model().fit(X, y, sample_weight=(y == 0).astype(float), class_weight={0: 0.0},
                     verbose=0)
