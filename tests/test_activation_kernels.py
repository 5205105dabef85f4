import warnings

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import DTYPES, assert_close, numeric_gradient
from fastnn._kernels import activations as K
from fastnn._kernels.reference import activations as R

ELEMENTWISE = sorted(set(K.CODES) - {"softmax", "prelu"})
ALL = sorted(K.CODES)



def _alpha(name, cols, rng):
    if name == "prelu":
        return rng.uniform(0.05, 0.5, cols)
    return R.DEFAULT_ALPHA.get(name)


shapes = st.tuples(st.integers(1, 9), st.integers(1, 37))


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_forward_matches_twin(name, dt, shape, seed):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal(shape) * 4).astype(dt)
    alpha = _alpha(name, shape[1], rng)
    y = K.activation_forward(z, name, alpha=None if alpha is None else np.asarray(alpha, dt))
    assert y.dtype == dt and y.shape == z.shape
    assert_close(y, R.forward(name, z.astype(np.float64), alpha), dt)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@settings(max_examples=15, deadline=None)
@given(shape=shapes, seed=st.integers(0, 2**31 - 1))
def test_backward_matches_twin(name, dt, shape, seed):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal(shape) * 4).astype(dt)
    dy = rng.standard_normal(shape).astype(dt)
    alpha = _alpha(name, shape[1], rng)
    a = None if alpha is None else np.asarray(alpha, dt)
    y = K.activation_forward(z, name, alpha=a)
    dz = K.activation_backward(dy, z, y, name, alpha=a)
    expected = R.backward(name, dy.astype(np.float64), z.astype(np.float64), alpha)
    assert_close(dz, expected, dt, scale=10)


def _away_from_kinks(rng, shape):
    z = rng.uniform(0.1, 3.0, shape) * rng.choice([-1.0, 1.0], shape)
    return z


@pytest.mark.parametrize("name", sorted(set(ALL) - {"binary_step", "binary_step_ste"}))
def test_gradient_by_finite_differences(name):
    rng = np.random.default_rng(0)
    z = _away_from_kinks(rng, (3, 5))
    w = rng.standard_normal(z.shape)
    alpha = _alpha(name, z.shape[1], rng)

    def loss(zz):
        return float((w * K.activation_forward(zz, name, alpha=alpha)).sum())

    y = K.activation_forward(z, name, alpha=alpha)
    analytic = K.activation_backward(w, z, y, name, alpha=alpha)
    numeric = numeric_gradient(lambda: loss(z), z, 1e-6)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


def test_binary_step_gradients():
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 2.0]])
    dy = np.full_like(z, 3.0)
    y = K.activation_forward(z, "binary_step")
    np.testing.assert_array_equal(y, [[0, 0, 1, 1, 1]])
    np.testing.assert_array_equal(K.activation_backward(dy, z, y, "binary_step"), 0 * dy)
    np.testing.assert_array_equal(K.activation_backward(dy, z, y, "binary_step_ste"), dy)


def test_prelu_alpha_gradient_by_finite_differences():
    rng = np.random.default_rng(1)
    z = _away_from_kinks(rng, (6, 4))
    w = rng.standard_normal(z.shape)
    alpha = rng.uniform(0.1, 0.4, 4)
    analytic = K.prelu_alpha_grad(w, z)
    np.testing.assert_allclose(analytic, R.prelu_alpha_grad(w, z), rtol=1e-12)
    numeric = numeric_gradient(
        lambda: (w * K.activation_forward(z, "prelu", alpha=alpha)).sum(), alpha, 1e-6)
    for j in range(4):
        assert analytic[j] == pytest.approx(numeric[j], rel=1e-6)


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_log_softmax_and_argmax(dt):
    rng = np.random.default_rng(2)
    z = (rng.standard_normal((7, 11)) * 5).astype(dt)
    assert_close(K.log_softmax(z), R.log_softmax(z.astype(np.float64)), dt, scale=10)
    np.testing.assert_array_equal(K.argmax(z), R.argmax(z))
    assert K.argmax(z).dtype == np.int64


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("pieces", [1, 2, 3])
def test_maxout_matches_twin(dt, pieces):
    rng = np.random.default_rng(3)
    z = rng.standard_normal((5, 4 * pieces)).astype(dt)
    y, idx = K.maxout_forward(z, pieces)
    y_ref, idx_ref = R.maxout_forward(z, pieces)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(idx, idx_ref)
    dy = rng.standard_normal(y.shape).astype(dt)
    np.testing.assert_array_equal(K.maxout_backward(dy, idx, pieces),
                                  R.maxout_backward(dy, idx_ref, pieces))


def test_maxout_gradient_by_finite_differences():
    rng = np.random.default_rng(4)
    z = rng.standard_normal((3, 6))
    w = rng.standard_normal((3, 2))
    y, idx = K.maxout_forward(z, 3)
    analytic = K.maxout_backward(w, idx, 3)
    numeric = numeric_gradient(lambda: (w * K.maxout_forward(z, 3)[0]).sum(), z, 1e-6)
    for i, j in np.ndindex(z.shape):
        assert analytic[i, j] == pytest.approx(numeric[i, j], abs=1e-7)


@pytest.mark.parametrize("name", ALL)
def test_one_and_two_threads_are_bitwise_identical(name):
    rng = np.random.default_rng(5)
    z = (rng.standard_normal((1000, 1001)) * 3).astype(np.float32)
    alpha = _alpha(name, z.shape[1], rng)
    a = None if alpha is None else np.asarray(alpha, np.float32)
    y1 = K.activation_forward(z, name, alpha=a, n_threads=1)
    y2 = K.activation_forward(z, name, alpha=a, n_threads=2)
    np.testing.assert_array_equal(y1, y2)
    d1 = K.activation_backward(z, z, y1, name, alpha=a, n_threads=1)
    d2 = K.activation_backward(z, z, y1, name, alpha=a, n_threads=2)
    np.testing.assert_array_equal(d1, d2)


@pytest.mark.parametrize("name", ["sigmoid", "softplus", "softmax", "elu", "selu", "tanh",
                                  "swish", "gelu", "gelu_tanh"])
def test_large_inputs_stay_finite_in_float32(name):
    z = np.array([[-1e4, -1e3, -80.0, 0.0, 80.0, 1e3, 1e4]], dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        y = K.activation_forward(z, name)
        y_ref = R.forward(name, z.astype(np.float64))
        dz = K.activation_backward(np.ones_like(z), z, y, name)
    assert np.all(np.isfinite(y)) and np.all(np.isfinite(dz))
    np.testing.assert_allclose(y, y_ref, rtol=1e-5, atol=1e-6)


def test_known_values_at_extremes():
    z = np.array([[-1e4, 1e4]], dtype=np.float32)
    np.testing.assert_array_equal(K.activation_forward(z, "sigmoid"), [[0.0, 1.0]])
    np.testing.assert_array_equal(K.activation_forward(z, "softplus"), [[0.0, 1e4]])
    np.testing.assert_allclose(K.activation_forward(z, "elu"), [[-1.0, 1e4]])
    np.testing.assert_allclose(K.activation_forward(z, "selu"),
                               [[-R.SELU_SCALE * R.SELU_ALPHA, R.SELU_SCALE * 1e4]], rtol=1e-6)
    np.testing.assert_array_equal(K.activation_forward(z, "softmax"), [[0.0, 1.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ls = K.log_softmax(z)
    np.testing.assert_array_equal(ls, [[-2e4, 0.0]])


def test_one_dimensional_input_and_in_place_output():
    x = np.linspace(-3, 3, 9)
    y = K.activation_forward(x, "tanh")
    np.testing.assert_allclose(y, np.tanh(x), rtol=1e-14)
    K.activation_forward(x, "tanh", out=x)
    np.testing.assert_array_equal(x, y)


def test_bad_inputs_are_rejected_with_named_arguments():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="unknown activation 'rleu'.*relu"):
        K.activation_forward(x, "rleu")
    with pytest.raises(TypeError, match="x has dtype <U1"):
        K.activation_forward(np.array([["a"]]), "relu")
    with pytest.raises(ValueError, match="x must be 1-D or 2-D"):
        K.activation_forward(np.zeros((2, 2, 2)), "relu")
    with pytest.raises(TypeError, match="out has dtype float32"):
        K.activation_forward(x, "relu", out=np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"out has shape \(3, 2\)"):
        K.activation_forward(x, "relu", out=np.zeros((3, 2)))
    with pytest.raises(ValueError, match="prelu needs alpha"):
        K.activation_forward(x, "prelu")
    with pytest.raises(ValueError, match="z has shape"):
        K.activation_backward(x, np.zeros((3, 2)), x, "relu")
    with pytest.raises(ValueError, match="n_threads"):
        K.activation_forward(x, "relu", n_threads=0)


def test_non_contiguous_fortran_and_integer_inputs_are_converted():
    rng = np.random.default_rng(6)
    base = rng.standard_normal((8, 10))
    expected = np.tanh(base[::2, ::3])
    np.testing.assert_allclose(K.activation_forward(base[::2, ::3], "tanh"), expected, rtol=1e-14)
    np.testing.assert_allclose(K.activation_forward(np.asfortranarray(base), "tanh"), np.tanh(base),
                               rtol=1e-14)
    ints = np.arange(-3, 3).reshape(2, 3)
    y = K.activation_forward(ints, "relu")
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, np.maximum(ints, 0))
