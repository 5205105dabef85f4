"""The block-sparse kernel against its numpy twin, its format, threads and bad input."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import DTYPES, assert_close
from fastnn._kernels import blocksparse as K
from fastnn._kernels.activations import CODES
from fastnn._kernels.reference import blocksparse as R

ACTIVATIONS = sorted(CODES)


def _block_pruned(rng, n_in, n_out, block, density, dt):
    """W with whole blocks of `block` outputs zeroed, a fraction `density` kept."""
    W = (rng.standard_normal((n_in, n_out)) / np.sqrt(max(n_in, 1))).astype(dt)
    keep = rng.random((n_in, -(-n_out // block))) < density
    return W * np.repeat(keep, block, axis=1)[:, :n_out]


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 41), n_in=st.integers(1, 40), n_out=st.integers(1, 37),
       block=st.sampled_from(K.BLOCKS), density=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       name=st.sampled_from(ACTIVATIONS), use_bias=st.booleans(),
       index_dtype=st.sampled_from([np.uint16, np.int32]), seed=st.integers(0, 2**31 - 1))
def test_forward_matches_twin(dt, batch, n_in, n_out, block, density, name, use_bias,
                              index_dtype, seed):
    rng = np.random.default_rng(seed)
    W = _block_pruned(rng, n_in, n_out, block, density, dt)
    X = rng.standard_normal((batch, n_in)).astype(dt)
    b = rng.standard_normal(n_out).astype(dt) if use_bias else None
    alpha = rng.uniform(0.05, 0.5, n_out) if name == "prelu" else None
    indptr, indices, values = K.bsr_from_dense(W, block)
    indices = indices.astype(index_dtype)
    Y = K.bsr_forward(X, indptr, indices, values, n_out, b, name, alpha=alpha)
    Y_ref = R.forward(X.astype(np.float64), indptr, indices, values.astype(np.float64), n_out,
                      None if b is None else b.astype(np.float64), name, alpha)
    assert Y.dtype == dt and Y.shape == (batch, n_out)
    assert_close(Y, Y_ref, dt, scale=10)


@settings(max_examples=40, deadline=None)
@given(n_in=st.integers(1, 30), n_out=st.integers(1, 40), block=st.sampled_from(K.BLOCKS),
       density=st.sampled_from([0.0, 0.2, 1.0]), seed=st.integers(0, 2**31 - 1))
def test_format_matches_twin_and_round_trips(n_in, n_out, block, density, seed):
    rng = np.random.default_rng(seed)
    W = _block_pruned(rng, n_in, n_out, block, density, np.float64)
    W[rng.random(W.shape) < 0.2] = 0  # zeros inside kept blocks are stored
    indptr, indices, values = K.bsr_from_dense(W, block)
    ref = R.bsr_from_dense(W, block)
    np.testing.assert_array_equal(indptr, ref[0])
    np.testing.assert_array_equal(indices, ref[1])
    np.testing.assert_array_equal(values, ref[2])
    K.check_bsr(indptr, indices, values, n_in, n_out)
    np.testing.assert_array_equal(K.dense_from_bsr(indptr, indices, values, n_in, n_out), W)
    assert K.block_density(W, block) == pytest.approx(len(indices) / (n_in * (len(indptr) - 1)))


@pytest.mark.parametrize("batch", [1, 7, 333])
@pytest.mark.parametrize("block", K.BLOCKS)
def test_thread_counts_give_bitwise_identical_results(batch, block):
    rng = np.random.default_rng(3)
    W = _block_pruned(rng, 1500, 1403, block, 0.5, np.float32)  # enough work for 4 threads
    X = rng.standard_normal((batch, 1500)).astype(np.float32)
    b = rng.standard_normal(1403).astype(np.float32)
    bsr = K.bsr_from_dense(W, block)
    Y1 = K.bsr_forward(X, *bsr, 1403, b, "relu", n_threads=1)
    for n in (2, 4):
        np.testing.assert_array_equal(K.bsr_forward(X, *bsr, 1403, b, "relu", n_threads=n), Y1)


def test_invalid_arrays_are_rejected():
    W = np.ones((4, 6), np.float32)
    indptr, indices, values = K.bsr_from_dense(W, 4)  # two block columns, the last partial
    X = np.ones((2, 4), np.float32)
    padded = values.copy()
    padded[-1, -1] = 1
    bad = [
        (indptr.astype(np.int32), indices, values, "indptr has dtype int32"),
        (indptr + 1, indices, values, "indptr must start at 0"),
        (np.array([0, 5, 4], np.int64), indices, values, "non-decreasing"),
        (np.array([0, 4, 7], np.int64), indices, values, "indptr ends at 7"),
        (indptr, np.where(indices == 3, 4, indices).astype(np.uint16), values,
         r"indices must lie in \[0, 4\)"),
        (indptr, indices[::-1].copy(), values, "strictly increase"),
        (indptr, indices.astype(np.int64), values, "indices has dtype int64"),
        (indptr, indices, values[:, :3].copy(), "blocks of 3"),
        (indptr, indices, values[:7], "values has 7 blocks"),
        (indptr, indices, padded, "padding"),
        (indptr[:2], indices[:4], values[:4], "indptr has 2 entries"),
    ]
    for ip, ix, v, message in bad:
        with pytest.raises(ValueError, match=message):
            K.bsr_forward(X, ip, ix, v, 6)
    with pytest.raises(ValueError, match="block must be one of"):
        K.bsr_from_dense(W, 5)
    with pytest.raises(TypeError, match="X has dtype float64, expected float32"):
        K.bsr_forward(X.astype(np.float64), indptr, indices, values, 6)
