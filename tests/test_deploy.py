import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn import pruning
from fastnn.deployment import deploy, engine_layers
from fastnn.engine import load_engine

ARCHITECTURES = {
    "bn after linear dense": lambda: [L.Dense(24), L.BatchNormalization(), L.Activation("relu"),
                                      L.Dense(5, activation="softmax")],
    "bn after activation": lambda: [L.Dense(24, activation="tanh"), L.BatchNormalization(),
                                    L.Dropout(0.3), L.Dense(5, activation="softmax")],
    "bn then prelu": lambda: [L.Dense(24, activation="elu"), L.BatchNormalization(), L.PReLU(),
                              L.GaussianNoise(0.2), L.Dense(5, activation="sigmoid")],
    "maxout and bn last": lambda: [L.Maxout(12, pieces=3), L.Activation("gelu"),
                                   L.Dense(6, activation="swish"), L.BatchNormalization()],
    "activation first": lambda: [L.Activation("softplus"), L.Dense(7, activation="selu"),
                                 L.Dense(4)],
}


def _trained(arch, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((300, 9))
    model = fn.Sequential(ARCHITECTURES[arch](), input_dim=9, dtype=dtype, seed=seed)
    out = model.output_dim
    y = rng.standard_normal((300, out))
    model.compile("adam", "mse")
    model.fit(X, y, epochs=2, batch_size=32, verbose=0)  # moves the BatchNorm statistics
    return model, X


@pytest.mark.parametrize("arch", sorted(ARCHITECTURES))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_engine_matches_model_predict(arch, dtype):
    model, X = _trained(arch, dtype)
    engine = deploy(model)
    rtol = 1e-5 if dtype == "float32" else 1e-11
    for batch in (1, 7, 300):
        np.testing.assert_allclose(engine.predict(X[:batch]), model.predict(X[:batch]),
                                   rtol=rtol, atol=rtol)


def test_batchnorm_is_folded_where_exact():
    model, _ = _trained("bn after linear dense", "float64")
    kinds = [spec["kind"] for spec in engine_layers(model)]
    assert kinds == ["dense", "dense"]
    model, _ = _trained("bn after activation", "float64")
    assert [spec["kind"] for spec in engine_layers(model)] == ["dense", "dense"]
    model, _ = _trained("maxout and bn last", "float64")
    assert [spec["kind"] for spec in engine_layers(model)] == ["dense", "dense", "affine"]


def test_pruned_model_deploys_sparse_and_smaller(tmp_path):
    rng = np.random.default_rng(1)
    model = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                           L.Dense(10, activation="softmax")], input_dim=784, seed=0)
    X = rng.standard_normal((64, 784)).astype(np.float32)
    dense_engine = deploy(model)
    pruning.prune_magnitude(model, 0.95)
    engine = deploy(model)
    storages = [entry["storage"] for entry in engine.layout()]
    assert "csr" in storages[0]
    np.testing.assert_allclose(engine.predict(X), model.predict(X), rtol=1e-5, atol=1e-6)
    dense_path, sparse_path = tmp_path / "dense.fne", tmp_path / "sparse.fne"
    dense_engine.save(dense_path)
    engine.save(sparse_path)
    assert sparse_path.stat().st_size < 0.2 * dense_path.stat().st_size
    loaded = load_engine(sparse_path)
    np.testing.assert_array_equal(loaded.predict(X), engine.predict(X))
    model_path = tmp_path / "pruned.fnn"
    model.save(model_path)
    assert model_path.stat().st_size < 0.2 * dense_path.stat().st_size


def test_structured_pruning_gives_a_smaller_engine():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((50, 20)).astype(np.float32)
    model = fn.Sequential([L.Dense(64, activation="relu"), L.Dense(32, activation="relu"),
                           L.Dense(3, activation="softmax")], input_dim=20, seed=0)
    small = pruning.prune_neurons(model, 0.5)
    engine = deploy(small)
    assert [entry["shape"] for entry in engine.layout()] == [(20, 32), (32, 16), (16, 3)]
    np.testing.assert_allclose(engine.predict(X), small.predict(X), rtol=1e-5, atol=1e-6)
