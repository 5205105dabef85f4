"""The engine's packed float32 product (AVX-512F) against its numpy twin and against BLAS."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastnn._kernels import activations, dense
from fastnn._kernels.reference import dense as ref_dense
from fastnn.engine import InferenceEngine

needs_packed = pytest.mark.skipif(not dense.packed_path(),
                                  reason="the CPU has no AVX-512F: engines use BLAS")
ACTS = ["linear", "relu", "tanh", "softmax", "prelu", "gelu"]


def _layer(rng, n_in, n_out, act, bias=True):
    spec = {"kind": "dense", "activation": act,
            "W": (rng.standard_normal((n_in, n_out)) / np.sqrt(max(n_in, 1))).astype(np.float32),
            "b": (0.1 * rng.standard_normal(n_out)).astype(np.float32) if bias else None}
    if act == "prelu":
        spec["alpha"] = rng.uniform(0.05, 0.5, n_out)
    return spec


def _blas_engine(specs, **kwargs):
    dense.use_packed(False)
    try:
        return InferenceEngine(specs, layout="dense", **kwargs)
    finally:
        dense.use_packed(None)


def test_panels_hold_32_columns_each_zero_padded():
    W = np.arange(5 * 70, dtype=np.float32).reshape(5, 70)
    P = dense.pack_panels(W)
    assert P.shape == (3, 5, 32) and P.flags.c_contiguous
    for j in range(70):
        np.testing.assert_array_equal(P[j // 32, :, j % 32], W[:, j])
    assert not P[2, :, 70 - 64:].any()


@needs_packed
@settings(max_examples=40, deadline=None)
@given(n_in=st.integers(1, 80), n_out=st.integers(1, 70), batch=st.integers(16, 130),
       act=st.sampled_from(ACTS), bias=st.booleans(), seed=st.integers(0, 2**31))
def test_packed_layer_matches_twin_and_blas(n_in, n_out, batch, act, bias, seed):
    rng = np.random.default_rng(seed)
    spec = _layer(rng, n_in, n_out, act, bias)
    X = rng.standard_normal((batch, n_in)).astype(np.float32)
    Y = InferenceEngine([spec], layout="dense").predict(X)
    alpha = spec.get("alpha")
    ref, _ = ref_dense.forward(X.astype(np.float64), spec["W"].astype(np.float64), spec["b"],
                               act, alpha)
    tol = 1e-5 * max(np.abs(ref).max(), 1.0)
    np.testing.assert_allclose(Y, ref, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(Y, _blas_engine([spec]).predict(X), rtol=1e-5, atol=tol)


@needs_packed
def test_packed_network_is_bitwise_identical_for_any_thread_count_and_batch_split():
    rng = np.random.default_rng(2)
    specs = [_layer(rng, 300, 70, "relu"), _layer(rng, 70, 33, "tanh"),
             _layer(rng, 33, 10, "softmax")]
    X = rng.standard_normal((500, 300)).astype(np.float32)
    Ys = [InferenceEngine(specs, layout="dense", n_threads=n).predict(X) for n in (1, 2, 3)]
    for Y in Ys[1:]:
        np.testing.assert_array_equal(Y, Ys[0])
    # A row's result does not depend on the rows around it (from 16 rows up).
    np.testing.assert_array_equal(InferenceEngine(specs, layout="dense").predict(X[100:117]),
                                  Ys[0][100:117])


def test_without_the_packed_path_engines_use_blas():
    rng = np.random.default_rng(3)
    spec = _layer(rng, 50, 40, "relu")
    X = rng.standard_normal((64, 50)).astype(np.float32)
    Y = _blas_engine([spec]).predict(X)
    ref, _ = ref_dense.forward(X.astype(np.float64), spec["W"].astype(np.float64), spec["b"],
                               "relu")
    np.testing.assert_allclose(Y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())
    dense.use_packed(False)
    try:
        assert dense.packed_path() is False
    finally:
        dense.use_packed(None)


@needs_packed
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_batch_of_many_chunks_runs_blockwise_as_one_with_the_same_rows(n_threads):
    rng = np.random.default_rng(4)
    specs = [_layer(rng, 40, 50, "relu"), _layer(rng, 50, 7, "softmax")]
    X = rng.standard_normal((1030, 40)).astype(np.float32)
    whole = InferenceEngine(specs, layout="dense", n_threads=n_threads).predict(X)
    # Chunks of 100 rows: 1000 rows run blockwise, the last 30 as one chunk.
    small = InferenceEngine(specs, layout="dense", n_threads=n_threads, max_batch=100)
    assert small._plan.chunk == 100
    np.testing.assert_array_equal(small.predict(X), whole)
    np.testing.assert_array_equal(small.predict(X[:1000]), whole[:1000])
    ref = X.astype(np.float64)
    for spec in specs:
        ref, _ = ref_dense.forward(ref, spec["W"].astype(np.float64), spec["b"],
                                   spec["activation"])
    np.testing.assert_allclose(whole, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("batch", [40, 500, 1030])
def test_a_nan_or_infinity_in_any_block_or_chunk_raises(n_threads, batch):
    rng = np.random.default_rng(5)
    specs = [_layer(rng, 30, 40, "relu"), _layer(rng, 40, 3, "softmax")]
    engine = InferenceEngine(specs, layout="dense", n_threads=n_threads, max_batch=100)
    X = rng.standard_normal((batch, 30)).astype(np.float32)
    good = engine.predict(X)
    for row, value in ((0, np.nan), (batch // 2, np.inf), (batch - 1, -np.inf)):
        bad = X.copy()
        bad[row, 29] = value
        with pytest.raises(ValueError, match="NaN or infinite"):
            engine.predict(bad)
        with pytest.raises(ValueError, match="NaN or infinite"):
            engine.predict(bad, out=np.empty((batch, 3), np.float32))
    np.testing.assert_array_equal(engine.predict(X), good)  # the scratch is still sound


@pytest.mark.parametrize("first", ["dense", "affine"])
def test_a_nan_in_any_block_raises_whatever_the_first_layer(first):
    # A first dense layer finds a NaN or infinity of X from its sums; an affine one scans.
    rng = np.random.default_rng(7)
    specs = [_layer(rng, 30, 5, "softmax")]
    if first == "affine":
        specs.insert(0, {"kind": "affine", "scale": rng.uniform(0.5, 2, 30),
                         "shift": rng.standard_normal(30), "activation": "linear"})
    engine = InferenceEngine(specs, layout="dense", n_threads=2, max_batch=100)
    X = rng.standard_normal((300, 30)).astype(np.float32)
    for row in range(0, 300, 23):
        for value in (np.nan, np.inf, -np.inf):
            bad = X.copy()
            bad[row, row % 30] = value
            with pytest.raises(ValueError, match="NaN or infinite"):
                engine.predict(bad)


@needs_packed
@pytest.mark.parametrize("n_threads", [1, 2])
def test_finite_rows_whose_sums_overflow_run_as_blas_runs_them(n_threads):
    # The first layer's sums of the huge rows are infinite: the block is then scanned,
    # X is found finite and the run goes on.
    rng = np.random.default_rng(8)
    specs = [_layer(rng, 40, 20, "linear")]
    X = rng.standard_normal((400, 40)).astype(np.float32)
    X[[5, 200, 399]] = 3e38
    engine = InferenceEngine(specs, layout="dense", n_threads=n_threads, max_batch=200)
    Y = engine.predict(X)
    assert not np.isfinite(Y[[5, 200, 399]]).all(axis=1).any()  # each has an overflow
    # Whether a partial sum overflows depends on the order of the sum, which differs between
    # kernels (and between BLAS builds): only the sums that overflow, or stay finite, in
    # every order are held to it.
    terms = X.astype(np.float64)[:, :, None] * specs[0]["W"].astype(np.float64)[None]
    exact = np.abs(terms.sum(axis=1) + specs[0]["b"])
    bound = np.abs(terms).sum(axis=1) + np.abs(specs[0]["b"])
    big = float(np.finfo(np.float32).max)
    overflows, finite = exact > 1.01 * big, bound < 0.99 * big
    assert overflows[[5, 200, 399]].any(axis=1).all()
    for Z in (Y, _blas_engine(specs).predict(X)):
        assert not np.isfinite(Z[overflows]).any() and np.isfinite(Z[finite]).all()
    keep = np.setdiff1d(np.arange(400), [5, 200, 399])
    np.testing.assert_array_equal(Y[keep], engine.predict(X[keep]))


@needs_packed
@pytest.mark.parametrize("n_out", [1, 5, 8, 9, 16, 17, 40])
def test_a_narrow_last_panel_matches_the_twin_in_every_column(n_out):
    # Panels of at most 8 columns run in 8-float vectors, of at most 16 in 16-float ones.
    rng = np.random.default_rng(n_out)
    spec = _layer(rng, 37, n_out, "relu")
    X = rng.standard_normal((61, 37)).astype(np.float32)
    Y = InferenceEngine([spec], layout="dense").predict(X)
    ref, _ = ref_dense.forward(X.astype(np.float64), spec["W"].astype(np.float64), spec["b"],
                               "relu")
    np.testing.assert_allclose(Y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@needs_packed
@pytest.mark.parametrize("n_out", [1, 2, 5, 10, 16, 17])
@pytest.mark.parametrize("n_threads", [1, 2])
def test_a_narrow_softmax_matches_the_twin_row_by_row(n_out, n_threads):
    # Up to 16 units the softmax runs sixteen rows at a time, a column per vector; logits
    # far apart (exponentials that underflow) and a batch that is no multiple of 16.
    rng = np.random.default_rng(100 + n_out)
    spec = _layer(rng, 24, n_out, "softmax")
    spec["W"] *= 40
    X = rng.standard_normal((203, 24)).astype(np.float32)
    Y = InferenceEngine([spec], layout="dense", n_threads=n_threads).predict(X)
    ref, _ = ref_dense.forward(X.astype(np.float64), spec["W"].astype(np.float64), spec["b"],
                               "softmax")
    np.testing.assert_allclose(Y, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(Y.sum(axis=1), 1, rtol=1e-6)
    assert (Y >= 0).all()
    # A row's result does not depend on the rows around it.
    np.testing.assert_array_equal(
        InferenceEngine([spec], layout="dense", n_threads=n_threads).predict(X[37:90]),
        Y[37:90])


@needs_packed
@pytest.mark.parametrize("n_out", [32, 33, 47, 63, 100, 256])
@pytest.mark.parametrize("act", ["linear", "relu", "tanh"])
def test_a_few_rows_on_unpacked_weights_have_the_packed_bits(n_out, act):
    # 5 to 32 rows of `dense.forward_into` (Sequential.predict's layers) run on W itself,
    # the last panel shifted to end at the last column: each sum in the packed order.
    rng = np.random.default_rng(n_out)
    spec = _layer(rng, 70, n_out, act)
    engine = InferenceEngine([spec], layout="dense", n_threads=1)
    for m in (5, 12, 13, 32):
        X = rng.standard_normal((m, 70)).astype(np.float32)
        Y = np.empty((m, n_out), np.float32)
        Z = np.empty((m, n_out), np.float32)
        dense.forward_into(X, spec["W"], spec["b"], Y, Z, activations.CODES[act], None, 1)
        np.testing.assert_array_equal(Y, engine.predict(X))
        ref, _ = ref_dense.forward(X.astype(np.float64), spec["W"].astype(np.float64),
                                   spec["b"], act)
        np.testing.assert_allclose(Y, ref, rtol=1e-5, atol=1e-5 * np.abs(ref).max())


@needs_packed
@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 140), n_in=st.integers(1, 60), n_out=st.integers(32, 100),
       seed=st.integers(0, 2**31), data=st.data())
def test_weight_gradient_rows_match_twin_and_blas(batch, n_in, n_out, seed, data):
    # The training step's X.T @ dZ (dense_packed.h, `fastnn_weight_grad_rows`): any block
    # of rows has the bits of the whole, each element a sum over the batch in order.
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, n_in)).astype(np.float32)
    dZ = rng.standard_normal((batch, n_out)).astype(np.float32)
    dW = dense.packed_weight_grad(X, dZ)
    _, ref, _ = ref_dense.backward(dZ.astype(np.float64), X.astype(np.float64),
                                   np.zeros((n_in, n_out)), np.zeros((batch, n_out)), "linear")
    tol = 1e-5 * max(np.abs(ref).max(), 1.0)
    np.testing.assert_allclose(dW, ref, rtol=1e-5, atol=tol)
    np.testing.assert_allclose(dW, X.T @ dZ, rtol=1e-5, atol=tol)
    r0 = data.draw(st.integers(0, n_in))
    r1 = data.draw(st.integers(r0, n_in))
    np.testing.assert_array_equal(dense.packed_weight_grad(X, dZ, r0, r1), dW[r0:r1])
