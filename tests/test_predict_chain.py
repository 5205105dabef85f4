"""`Sequential.predict` runs a model of Dense layers as one compiled chain
(`fastnn._kernels.dense.DenseChain`); its outputs are those of the per-layer path, bit
for bit, whatever was done to the weights."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L

DTYPES = ["float32", "float64"]


def _dense_model(dtype, seed=0):
    return fn.Sequential([L.Dense(16, activation="relu"), L.Dense(7, activation="elu"),
                          L.Dense(9, activation="leaky_relu", use_bias=False),
                          L.Dense(3, activation="softmax")],
                         input_dim=5, dtype=dtype, seed=seed)


def _data(n, dtype, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 5)).astype(dtype), rng.integers(0, 3, n)


def _assert_chain_is_layer_path(model, X):
    """predict takes the chain, and its outputs equal the per-layer forward bitwise."""
    assert model._chain is not None and model._chained(X) is not None
    per_layer = model._forward(X, training=False)
    Y = model.predict(X)
    assert Y.dtype == model.dtype and Y.shape == per_layer.shape
    np.testing.assert_array_equal(Y, per_layer)
    return Y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 37, 300])
def test_chain_equals_the_per_layer_path(dtype, n):
    model = _dense_model(dtype)
    X, _ = _data(n, dtype)
    _assert_chain_is_layer_path(model, X)


@pytest.mark.parametrize("dtype", DTYPES)
def test_chain_sees_set_weights_fit_steps_pruning_and_edits(dtype):
    model = _dense_model(dtype)
    X, y = _data(64, dtype)
    before = _assert_chain_is_layer_path(model, X[:1]).copy()

    model.set_weights([w * 0.5 for w in model.get_weights()])
    after = _assert_chain_is_layer_path(model, X[:1])
    assert not np.array_equal(after, before)

    model.compile(fn.optimizers.Adam(lr=0.05), "sparse_categorical_crossentropy")
    trained = model.predict(X)
    model.fit(X, y, epochs=1, batch_size=16, verbose=0)
    assert not np.array_equal(_assert_chain_is_layer_path(model, X), trained)

    fn.pruning.prune_magnitude(model, sparsity=0.5)
    _assert_chain_is_layer_path(model, X)

    model.layers[0].kernel[:] = 0
    model.layers[0].bias[:] = 1
    Y = _assert_chain_is_layer_path(model, X)
    np.testing.assert_array_equal(Y, np.broadcast_to(Y[0], Y.shape))  # every row the same


@pytest.mark.parametrize("dtype", DTYPES)
def test_inputs_not_ready_take_the_checked_path(dtype):
    model = _dense_model(dtype)
    X, _ = _data(20, dtype)
    expected = model._forward(X, training=False)
    other = "float64" if dtype == "float32" else "float32"
    assert model._chained(X.astype(other)) is None
    np.testing.assert_array_equal(model.predict(X.astype(other)), model._forward(
        X.astype(other).astype(dtype), training=False))
    Xf = np.asfortranarray(X)
    assert model._chained(Xf) is None
    np.testing.assert_array_equal(model.predict(Xf), expected)
    np.testing.assert_array_equal(model.predict(X.tolist()), expected)
    np.testing.assert_array_equal(model.predict(X, batch_size=6), expected)
    assert model.predict(X[:0]).shape == (0, 3)
    bad = X.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.predict(bad)
    with pytest.raises(ValueError, match=r"expects inputs of shape \(n, 5\)"):
        model.predict(X[:, :4].copy())
    with pytest.raises(ValueError, match="2-D"):
        model.predict(X[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_a_model_with_other_layers_keeps_the_layer_path(dtype):
    model = fn.Sequential([L.Dense(8, activation="relu"), L.Activation("tanh"),
                           L.Dense(3, activation="softmax")], input_dim=5, dtype=dtype, seed=0)
    X, _ = _data(10, dtype)
    assert model._chain is None and model._chained(X) is None
    Y = model.predict(X)
    hidden = np.tanh(np.maximum(X @ model.layers[0].kernel + model.layers[0].bias, 0))
    Z = hidden @ model.layers[2].kernel + model.layers[2].bias
    E = np.exp(Z - Z.max(1, keepdims=True))
    tol = 1e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(Y, E / E.sum(1, keepdims=True), rtol=tol, atol=tol)


def test_layers_changed_behind_the_model_take_the_layer_path():
    model = _dense_model("float64")
    X, _ = _data(4, "float64")
    model.layers.pop()
    assert model._chained(X) is None
    np.testing.assert_array_equal(model.predict(X), model._forward(X, training=False))
    assert model.predict(X).shape == (4, 9)


def test_chain_with_threads_equals_the_per_layer_path():
    fn.set_num_threads(2)
    try:
        model = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(10)], input_dim=64,
                              dtype="float32", seed=0)  # products of many chunks
        X = np.random.default_rng(2).standard_normal((2000, 64)).astype(np.float32)
        _assert_chain_is_layer_path(model, X)
    finally:
        fn.set_num_threads(None)
