"""One input rule (fastnn._kernels._checks.as_input) for the model and the engine alike."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn._kernels._checks import as_input


@pytest.fixture(scope="module")
def pair():
    model = fn.Sequential([L.Dense(5, activation="relu"), L.Dense(3, activation="softmax")],
                          input_dim=4, seed=0)
    return model, fn.deploy(model)


def test_as_input_converts_and_refuses():
    X = as_input([[1, 2], [3, 4]], np.float32)
    assert X.dtype == np.float32 and X.flags.c_contiguous and X.shape == (2, 2)
    assert as_input(np.zeros((0, 3)), np.float64).shape == (0, 3)
    with pytest.raises(ValueError, match="X is empty"):
        as_input(np.zeros((0, 3)), np.float64, allow_empty=False)
    with pytest.raises(ValueError, match=r"reshape\(1, -1\) for one sample.*"
                                         r"reshape\(-1, 1\) for one feature"):
        as_input(np.zeros(3), np.float64)
    with pytest.raises(TypeError, match="dtype"):
        as_input(np.array([["a"]]), np.float64)
    with pytest.raises(ValueError, match="NaN or infinite"):
        as_input(np.array([[1.0, np.inf]]), np.float32)


@pytest.mark.parametrize("X, error, message", [
    (np.ones(4), ValueError, "reshape"),
    (np.ones((2, 2, 4)), ValueError, "2-D"),
    (np.array([[1.0, np.nan, 0.0, 0.0]]), ValueError, "NaN or infinite"),
    (np.array([[1.0, -np.inf, 0.0, 0.0]], np.float32), ValueError, "NaN or infinite"),
    (np.full((3, 4), 1e39), ValueError, "NaN or infinite"),  # inf once in float32
    (np.array([["a"] * 4]), TypeError, "dtype"),
    (np.ones((2, 5)), ValueError, "shape"),
])
def test_model_and_engine_refuse_the_same_inputs(pair, X, error, message):
    model, engine = pair
    with pytest.raises(error, match=message):
        model.predict(X)
    with pytest.raises(error, match=message):
        engine.predict(X)


@pytest.mark.parametrize("X", [np.ones((3, 4), np.float32), np.ones((3, 4)),
                               np.ones((3, 4), int), np.ones((3, 4), bool),
                               np.asfortranarray(np.ones((3, 4), np.float32)),
                               [[0.5, 1, 2, 3]], np.zeros((0, 4), np.float32)])
def test_model_and_engine_accept_the_same_inputs(pair, X):
    model, engine = pair
    np.testing.assert_allclose(engine.predict(X), model.predict(X), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_checks_finiteness_on_its_fast_path(dtype):
    engine = fn.deploy(fn.Sequential([L.Dense(3)], input_dim=4, dtype=dtype, seed=0))
    X = np.ones((9, 4), dtype)  # ready to run as is: no conversion on the way
    for value in (np.nan, -np.nan, np.inf, -np.inf):
        for i in range(X.size):
            bad = X.copy()
            bad.flat[i] = value
            with pytest.raises(ValueError, match="NaN or infinite"):
                engine.predict(bad)
    info = np.finfo(dtype)
    edge = np.array([[info.max, -info.max, info.tiny, -0.0]] * 2, dtype)  # all finite
    edge[1, 2] = info.smallest_subnormal
    assert engine.predict(edge).shape == (2, 3)
