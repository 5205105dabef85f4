import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import DTYPES, assert_close
from fastnn._kernels import sparse as K
from fastnn._kernels.activations import CODES
from fastnn._kernels.reference import sparse as R

ACTIVATIONS = sorted(CODES)
INDEX_DTYPES = [np.uint16, np.int32]


def _pruned(rng, n_in, n_out, density, dt):
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(max(n_in, 1))).astype(dt)
    W[rng.random(W.shape) >= density] = 0
    return W


def _csr(W, index_dtype):
    indptr, indices, data = K.csr_from_dense(W)
    return indptr, indices.astype(index_dtype), data


def _alpha(name, n_out, rng):
    return rng.uniform(0.05, 0.5, n_out) if name == "prelu" else None


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=["uint16", "int32"])
@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 150), n_in=st.integers(1, 40), n_out=st.integers(1, 23),
       density=st.sampled_from([0.0, 0.05, 0.3, 1.0]), name=st.sampled_from(ACTIVATIONS),
       use_bias=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_forward_matches_twin(dt, index_dtype, batch, n_in, n_out, density, name, use_bias, seed):
    rng = np.random.default_rng(seed)
    W = _pruned(rng, n_in, n_out, density, dt)
    X = rng.standard_normal((batch, n_in)).astype(dt)
    b = rng.standard_normal(n_out).astype(dt) if use_bias else None
    alpha = _alpha(name, n_out, rng)
    indptr, indices, data = _csr(W, index_dtype)
    Y = K.sparse_forward(X, indptr, indices, data, b, name, alpha=alpha)
    f64 = data.astype(np.float64)
    Y_ref = R.forward(X.astype(np.float64), indptr, indices, f64,
                      None if b is None else b.astype(np.float64), name, alpha)
    assert Y.dtype == dt and Y.shape == (batch, n_out)
    assert_close(Y, Y_ref, dt, scale=10)


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES, ids=["uint16", "int32"])
@settings(max_examples=30, deadline=None)
@given(batch=st.integers(1, 200), n_in=st.integers(1, 40), n_out=st.integers(1, 23),
       density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       name=st.sampled_from(sorted(set(ACTIVATIONS) - {"softmax"})),
       use_bias=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_transposed_forward_matches_twin(dt, index_dtype, batch, n_in, n_out, density, name,
                                         use_bias, seed):
    rng = np.random.default_rng(seed)
    W = _pruned(rng, n_in, n_out, density, dt)
    XT = rng.standard_normal((n_in, batch)).astype(dt)
    b = rng.standard_normal(n_out).astype(dt) if use_bias else None
    alpha = _alpha(name, n_out, rng)
    indptr, indices, data = _csr(W, index_dtype)
    YT = K.sparse_forward_t(XT, indptr, indices, data, b, name, alpha=alpha)
    YT_ref = R.forward_t(XT.astype(np.float64), indptr, indices, data.astype(np.float64),
                         None if b is None else b.astype(np.float64), name, alpha)
    assert YT.shape == (n_out, batch)
    assert_close(YT, YT_ref, dt, scale=10)


@pytest.mark.parametrize("density", [0.0, 1.0])
def test_empty_rows_and_full_density(density):
    rng = np.random.default_rng(0)
    W = _pruned(rng, 9, 5, density, np.float32)
    W[:, 2] = 0  # one output unit with no incoming weights: only its bias
    b = np.arange(5, dtype=np.float32)
    X = rng.standard_normal((70, 9)).astype(np.float32)
    indptr, indices, data = K.csr_from_dense(W)
    assert indptr[3] == indptr[2]
    for rows in (X[:1], X):
        Y = K.sparse_forward(rows, indptr, indices, data, b, "linear")
        assert_close(Y, rows.astype(np.float64) @ W + b, np.float32, scale=10)
        np.testing.assert_array_equal(Y[:, 2], 2.0)


def test_csr_from_dense_matches_twin_and_picks_index_dtype():
    rng = np.random.default_rng(1)
    W = _pruned(rng, 30, 12, 0.3, np.float64)
    for got, ref in zip(K.csr_from_dense(W), R.csr_from_dense(W)):
        np.testing.assert_array_equal(got, ref)
    assert K.csr_from_dense(W)[1].dtype == np.uint16
    assert K.index_dtype(65536) == np.uint16
    assert K.index_dtype(65537) == np.int32


def test_int32_indices_beyond_uint16_range():
    rng = np.random.default_rng(2)
    n_in = 70000
    W = np.zeros((n_in, 3), np.float32)
    rows = rng.choice(n_in, 40, replace=False)
    W[rows, rng.integers(0, 3, 40)] = rng.standard_normal(40)
    W[n_in - 1, 0] = 1.5
    indptr, indices, data = K.csr_from_dense(W)
    assert indices.dtype == np.int32
    X = rng.standard_normal((33, n_in)).astype(np.float32)
    for rows_ in (X[:1], X):
        Y = K.sparse_forward(rows_, indptr, indices, data)
        assert_close(Y, rows_.astype(np.float64) @ W, np.float32, scale=10)


@pytest.mark.parametrize("batch", [1, 333])
@pytest.mark.parametrize("name", ["relu", "softmax", "prelu"])
def test_one_and_two_threads_are_bitwise_identical(batch, name):
    rng = np.random.default_rng(3)
    W = _pruned(rng, 1500, 1401, 0.5, np.float32)  # ~1e6 nonzeros: two threads for one row
    X = rng.standard_normal((batch, 1500)).astype(np.float32)
    b = rng.standard_normal(1401).astype(np.float32)
    alpha = _alpha(name, 1401, rng)
    csr = K.csr_from_dense(W)
    Y1 = K.sparse_forward(X, *csr, b, name, alpha=alpha, n_threads=1)
    Y2 = K.sparse_forward(X, *csr, b, name, alpha=alpha, n_threads=2)
    np.testing.assert_array_equal(Y1, Y2)


def test_invalid_csr_is_rejected():
    W = np.eye(4, 3, dtype=np.float32)
    indptr, indices, data = K.csr_from_dense(W)
    X = np.ones((2, 4), np.float32)
    bad = [
        (indptr.astype(np.int32), indices, data, "indptr has dtype int32"),
        (indptr + 1, indices, data, "indptr must start at 0"),
        (np.array([0, 2, 1, 3], np.int64), indices, data, "non-decreasing"),
        (np.array([0, 1, 2, 2], np.int64), indices, data, "indptr ends at 2"),
        (indptr, np.array([0, 1, 4], np.uint16), data, r"indices must lie in \[0, 4\)"),
        (indptr, np.array([0, -1, 2], np.int32), data, r"indices must lie in \[0, 4\)"),
        (indptr, indices.astype(np.int64), data, "indices has dtype int64"),
        (indptr, indices[:2], data, "indices has 2 entries but data has 3"),
    ]
    for ip, ix, d, message in bad:
        with pytest.raises(ValueError, match=message):
            K.sparse_forward(X, ip, ix, d)
    with pytest.raises(ValueError, match="softmax needs whole rows"):
        K.sparse_forward_t(X.T, indptr, indices, data, activation="softmax")
    with pytest.raises(TypeError, match="X has dtype float64, expected float32"):
        K.sparse_forward(X.astype(np.float64), indptr, indices, data)
