import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import DTYPES, assert_close, numeric_gradient
from fastnn._kernels import dense as K
from fastnn._kernels.activations import CODES
from fastnn._kernels.reference import dense as R

ACTIVATIONS = sorted(CODES)


def _problem(rng, batch, n_in, n_out, dt):
    X = rng.standard_normal((batch, n_in)).astype(dt)
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dt)
    b = rng.standard_normal(n_out).astype(dt)
    return X, W, b


def _alpha(name, n_out, rng):
    return rng.uniform(0.05, 0.5, n_out) if name == "prelu" else None


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 17), n_in=st.integers(1, 33), n_out=st.integers(1, 19),
       name=st.sampled_from(ACTIVATIONS), use_bias=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_forward_matches_twin(dt, batch, n_in, n_out, name, use_bias, seed):
    rng = np.random.default_rng(seed)
    X, W, b = _problem(rng, batch, n_in, n_out, dt)
    b = b if use_bias else None
    alpha = _alpha(name, n_out, rng)
    Z = np.empty((batch, n_out), dt)
    Y = K.dense_forward(X, W, b, name, alpha=alpha, preact=Z)
    Y_ref, Z_ref = R.forward(X.astype(np.float64), W.astype(np.float64),
                             None if b is None else b.astype(np.float64), name, alpha)
    assert Y.dtype == dt
    assert_close(Z, Z_ref, dt, scale=10)
    assert_close(Y, Y_ref, dt, scale=10)


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 17), n_in=st.integers(1, 33), n_out=st.integers(1, 19),
       name=st.sampled_from(ACTIVATIONS), need_dX=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_backward_matches_twin(dt, batch, n_in, n_out, name, need_dX, seed):
    rng = np.random.default_rng(seed)
    X, W, b = _problem(rng, batch, n_in, n_out, dt)
    alpha = _alpha(name, n_out, rng)
    Z = np.empty((batch, n_out), dt)
    Y = K.dense_forward(X, W, b, name, alpha=alpha, preact=Z)
    dY = rng.standard_normal((batch, n_out)).astype(dt)
    dX, dW, db = K.dense_backward(dY, X, W, Z, Y, name, alpha=alpha, need_dX=need_dX)
    f64 = [a.astype(np.float64) for a in (dY, X, W, Z)]
    dX_ref, dW_ref, db_ref = R.backward(*f64, name, alpha)
    assert_close(dW, dW_ref, dt, scale=100)
    assert_close(db, db_ref, dt, scale=100)
    if need_dX:
        assert_close(dX, dX_ref, dt, scale=100)
    else:
        assert dX is None


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("batch, n_in", [(200, 130), (130, 200), (300, 70)])
def test_products_in_chunks_match_twin(dt, batch, n_in):
    # 200 and 130 rows end in a short tail that joins the last chunk (64, 64, 72 and
    # 64, 66); 300 rows end in a full one (80, 80, 80, 60).
    rng = np.random.default_rng(batch)
    X, W, b = _problem(rng, batch, n_in, 420, dt)  # enough work to run in chunks
    for n_threads in (1, 2):
        Z = np.empty((batch, 420), dt)
        Y = K.dense_forward(X, W, b, "relu", preact=Z, n_threads=n_threads)
        Y_ref, Z_ref = R.forward(*(a.astype(np.float64) for a in (X, W, b)), "relu", None)
        assert_close(Z, Z_ref, dt, scale=10)
        assert_close(Y, Y_ref, dt, scale=10)
        dY = rng.standard_normal((batch, 420)).astype(dt)
        dX, dW, db = K.dense_backward(dY, X, W, Z, Y, "relu", n_threads=n_threads)
        refs = R.backward(*(a.astype(np.float64) for a in (dY, X, W, Z)), "relu", None)
        for got, ref in zip((dX, dW, db), refs):
            assert_close(got, ref, dt, scale=100)


@pytest.mark.parametrize("name", sorted(set(ACTIVATIONS) - {"binary_step", "binary_step_ste"}))
def test_backward_by_finite_differences(name):
    rng = np.random.default_rng(0)
    X, W, b = _problem(rng, 4, 5, 3, np.float64)
    alpha = _alpha(name, 3, rng)
    G = rng.standard_normal((4, 3))

    def loss(X, W, b):
        return float((G * K.dense_forward(X, W, b, name, alpha=alpha)).sum())

    Z = np.empty((4, 3))
    Y = K.dense_forward(X, W, b, name, alpha=alpha, preact=Z)
    # Keep the check away from kinks (relu, leaky_relu, prelu, elu, selu at 0).
    assert np.abs(Z).min() > 1e-4
    dX, dW, db = K.dense_backward(G, X, W, Z, Y, name, alpha=alpha)
    for param, grad in ((X, dX), (W, dW), (b, db)):
        numeric = numeric_gradient(lambda: loss(X, W, b), param, 1e-6)
        np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["relu", "softmax", "gelu", "prelu"])
def test_one_and_two_threads_are_bitwise_identical(name):
    rng = np.random.default_rng(1)
    # 1300 x 420 outputs: enough elementwise work for the fused pass to use two threads
    X, W, b = _problem(rng, 1300, 120, 420, np.float32)
    alpha = _alpha(name, 420, rng)
    Z1, Z2 = np.empty((1300, 420), np.float32), np.empty((1300, 420), np.float32)
    Y1 = K.dense_forward(X, W, b, name, alpha=alpha, preact=Z1, n_threads=1)
    Y2 = K.dense_forward(X, W, b, name, alpha=alpha, preact=Z2, n_threads=2)
    np.testing.assert_array_equal(Y1, Y2)
    np.testing.assert_array_equal(Z1, Z2)
    dY = rng.standard_normal(Y1.shape).astype(np.float32)
    g1 = K.dense_backward(dY, X, W, Z1, Y1, name, alpha=alpha, n_threads=1)
    g2 = K.dense_backward(dY, X, W, Z1, Y1, name, alpha=alpha, n_threads=2)
    for a, c in zip(g1, g2):
        np.testing.assert_array_equal(a, c)


def test_dZ_may_reuse_dY_and_outputs_are_filled():
    rng = np.random.default_rng(2)
    X, W, b = _problem(rng, 6, 4, 3, np.float64)
    Y = np.empty((6, 3))
    assert K.dense_forward(X, W, b, "tanh", out=Y) is Y
    dY = rng.standard_normal((6, 3))
    expected = R.backward(dY, X, W, X @ W + b, "tanh")
    dX, dW, db = K.dense_backward(dY.copy(), X, W, Y, Y, "tanh")
    work = dY.copy()
    dX2, dW2, db2 = K.dense_backward(work, X, W, Y, Y, "tanh", dZ=work)
    for got, ref in zip((dX, dW, db, dX2, dW2, db2), expected * 2):
        np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_empty_batch_and_zero_width():
    W = np.ones((3, 2))
    assert K.dense_forward(np.zeros((0, 3)), W).shape == (0, 2)
    Y = K.dense_forward(np.zeros((4, 0)), np.zeros((0, 2)), np.array([1.0, -1.0]), "relu")
    np.testing.assert_array_equal(Y, [[1.0, 0.0]] * 4)
    dX, dW, db = K.dense_backward(np.zeros((0, 2)), np.zeros((0, 3)), W, np.zeros((0, 2)),
                                  np.zeros((0, 2)))
    np.testing.assert_array_equal(dW, 0)
    np.testing.assert_array_equal(db, 0)


def test_bad_inputs_are_rejected_with_named_arguments():
    W = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=r"X has shape \(4, 5\) but W has shape \(3, 2\)"):
        K.dense_forward(np.zeros((4, 5), np.float32), W)
    with pytest.raises(TypeError, match="X has dtype float64, expected float32"):
        K.dense_forward(np.zeros((4, 3)), W)
    with pytest.raises(ValueError, match=r"b has shape \(3,\) but W has shape \(3, 2\)"):
        K.dense_forward(np.zeros((4, 3), np.float32), W, np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="X must be 2-D"):
        K.dense_forward(np.zeros(3, np.float32), W)
    with pytest.raises(TypeError, match="X has dtype object"):
        K.dense_forward(np.array([[None] * 3]), W)
    with pytest.raises(ValueError, match=r"dY has shape \(4, 3\) but X @ W has shape \(4, 2\)"):
        z = np.zeros((4, 2), np.float32)
        K.dense_backward(np.zeros((4, 3), np.float32), np.zeros((4, 3), np.float32), W, z, z)
    with pytest.raises(ValueError, match="unknown activation"):
        K.dense_forward(np.zeros((4, 3), np.float32), W, activation="sigmod")


def test_non_contiguous_fortran_and_integer_inputs_are_converted():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((10, 12))
    W = rng.standard_normal((6, 4))
    Xs = X[::2, ::2]
    expected = Xs @ W
    np.testing.assert_allclose(K.dense_forward(Xs, W), expected, rtol=1e-12)
    np.testing.assert_allclose(K.dense_forward(np.asfortranarray(Xs), np.asfortranarray(W)),
                               expected, rtol=1e-12)
    Xi = np.arange(12).reshape(2, 6)
    np.testing.assert_allclose(K.dense_forward(Xi, W), Xi @ W, rtol=1e-12)
