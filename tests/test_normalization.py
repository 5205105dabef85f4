"""The Normalization layer: adapt, zero-variance features, saving, and folding by deploy."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn import pruning
from fastnn.datasets import load_digits


def _table(n=400, seed=0):
    """Columns: shifted, scaled, shifted and scaled, constant, small, and a 0/1 category."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.normal(50.0, 1.0, n), rng.normal(0.0, 200.0, n),
                         rng.normal(-30.0, 15.0, n), np.full(n, 7.0),
                         rng.normal(0.0, 0.01, n), rng.integers(0, 2, n)])
    z = (X[:, 0] - 50) + X[:, 1] / 200 - (X[:, 2] + 30) / 15 + 100 * X[:, 4] + X[:, 5]
    return X, (z > np.median(z)).astype(int)


def test_adapt_standardizes_and_leaves_constant_features_unscaled():
    X, _ = _table()
    layer = L.Normalization()
    layer.adapt(X)
    model = fn.Sequential([layer], input_dim=X.shape[1], dtype="float64")
    Y = model.predict(X)
    keep = [0, 1, 2, 4, 5]
    np.testing.assert_allclose(Y[:, keep].mean(axis=0), 0, atol=1e-10)
    np.testing.assert_allclose(Y[:, keep].std(axis=0), 1, rtol=1e-10)
    np.testing.assert_array_equal(Y[:, 3], 0.0)  # centred, not divided by zero
    np.testing.assert_array_equal(model.predict(X[:1] + [0, 0, 0, 2.0, 0, 0])[0, 3], 2.0)
    np.testing.assert_allclose(layer.mean, X.mean(axis=0))
    np.testing.assert_allclose(layer.variance, X.var(axis=0))


def test_fixed_statistics_and_argument_checks():
    layer = L.Normalization(mean=[1.0, 2.0], variance=[4.0, 0.0])
    model = fn.Sequential([layer], input_dim=2, dtype="float64")
    np.testing.assert_allclose(model.predict([[3.0, 5.0]]), [[1.0, 3.0]])
    scalar = fn.Sequential([L.Normalization(mean=1.0, variance=4.0)], input_dim=3)
    np.testing.assert_allclose(scalar.predict(np.full((1, 3), 3.0)), [[1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="both mean and variance"):
        L.Normalization(mean=[0.0])
    with pytest.raises(ValueError, match="non-negative"):
        L.Normalization(mean=[0.0], variance=[-1.0])
    with pytest.raises(ValueError, match="axis=-1"):
        L.Normalization(axis=0)
    with pytest.raises(ValueError, match="statistics for 2 features, but the input has 3"):
        fn.Sequential([L.Normalization(mean=[0.0, 0.0], variance=[1.0, 1.0])], input_dim=3)
    bare = fn.Sequential([L.Normalization(), L.Dense(1)], input_dim=2)
    with pytest.raises(RuntimeError, match="adapt"):
        bare.predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="variance must be non-negative"):
        layer.set_weights([[9.0, 9.0], [1.0, -1.0]])
    np.testing.assert_array_equal(layer.mean, [1.0, 2.0])  # nothing changed
    np.testing.assert_array_equal(layer.variance, [4.0, 0.0])
    np.testing.assert_allclose(model.predict([[3.0, 5.0]]), [[1.0, 3.0]])


def _trained(X, y, dtype="float64", width=32):
    norm = L.Normalization()
    norm.adapt(X)
    model = fn.Sequential([norm, L.Dense(width, activation="relu"),
                           L.Dense(1, activation="sigmoid")], dtype=dtype, seed=0)
    model.compile("adam", "binary_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=40, batch_size=32, verbose=0)
    return model


def test_standardized_model_learns_raw_table_and_saves(tmp_path):
    X, y = _table()
    model = _trained(X, y)
    assert model.evaluate(X, y)["accuracy"] > 0.9
    model.save(tmp_path / "m.safetensors")
    loaded = fn.load_model(tmp_path / "m.safetensors")
    assert loaded.layers[0].adapted
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    np.testing.assert_array_equal(model.copy().predict(X), model.predict(X))


@pytest.mark.parametrize("layout", ["dense", "sparse", "auto"])
@pytest.mark.parametrize("prune", [False, True])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_deploy_folds_normalization_into_the_first_dense(layout, prune, dtype):
    X, y = _table()
    model = _trained(X, y, dtype)
    if prune:
        pruning.prune_magnitude(model, 0.8)
    engine = fn.deploy(model, layout=layout)
    assert len(engine.layout()) == 2 and engine.layout()[0]["kind"] == "dense"
    np.testing.assert_allclose(engine.predict(X), model.predict(X), rtol=1e-5,
                               atol=1e-6 if dtype == "float32" else 1e-12)
    if prune:
        # folding scales rows: pruned weights stay zero
        assert engine.layout()[0]["density"] == pytest.approx(
            np.count_nonzero(model.layers[1].kernel) / model.layers[1].kernel.size)


def test_folded_digits_float32_matches_model():
    X, y = load_digits()
    norm = L.Normalization()
    norm.adapt(X)
    model = fn.Sequential([norm, L.Dense(64, activation="relu"),
                           L.Dense(10, activation="softmax")], seed=0)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, y, epochs=15, batch_size=64, verbose=0)
    assert model.evaluate(X, y)["accuracy"] > 0.95
    for layout in ("dense", "sparse"):
        engine = fn.deploy(model, layout=layout)
        np.testing.assert_allclose(engine.predict(X), model.predict(X), rtol=1e-5, atol=1e-6)


def test_normalization_between_layers_and_its_gradient():
    X, y = _table(60)
    norm = L.Normalization(mean=np.linspace(-1, 1, 8), variance=np.linspace(0.5, 2, 8))
    model = fn.Sequential([L.Dense(8, activation="tanh"), norm, L.Dense(1, activation="sigmoid")],
                          input_dim=X.shape[1], dtype="float64", seed=0)
    model.compile("sgd", "binary_crossentropy")
    Xs = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1)
    model.fit(Xs, y, epochs=1, verbose=0)  # backward runs through the layer
    first = model.layers[0]
    w = first.kernel
    i, j, eps = 1, 2, 1e-6
    loss = lambda: model.evaluate(Xs, y)["loss"]  # noqa: E731
    out = model._forward(Xs, training=True)
    _, grad = model._loss_and_grad(model._check_y(y, len(y)), out, None)
    model._backward(grad)
    analytic = first.grads[0][i, j]
    w[i, j] += eps
    up = loss()
    w[i, j] -= 2 * eps
    down = loss()
    w[i, j] += eps
    assert analytic == pytest.approx((up - down) / (2 * eps), rel=1e-5)
    engine = fn.deploy(model)
    np.testing.assert_allclose(engine.predict(Xs), model.predict(Xs), rtol=1e-5)
