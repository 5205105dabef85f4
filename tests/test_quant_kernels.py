"""The quantized kernels against their numpy twin, on every path this CPU can run."""
import contextlib

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fastnn._kernels import quant as K
from fastnn._kernels.activations import CODES
from fastnn._kernels.reference import quant as R


def _int8_paths():
    paths = ["portable"]
    if K.cpu_paths()["int8"] != "portable":
        paths.append(K.cpu_paths()["int8"])
    if K.cpu_paths()["int8"] == "avx512-vnni":
        paths.append("avx-vnni")  # the 256-bit tile, in its EVEX encoding
    return paths


def _bf16_paths():
    return sorted({"portable", K.cpu_paths()["bf16"]})


@contextlib.contextmanager
def _paths(**chosen):
    old = K.use_paths(**chosen)
    try:
        yield
    finally:
        K.use_paths(**old)


@pytest.fixture
def restore_paths():
    with _paths():
        yield


def _weights(rng, n_in, n_out):
    return (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)


@pytest.mark.parametrize("path", _int8_paths())
@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 40), n_in=st.integers(1, 70), n_out=st.integers(1, 90),
       signed=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_int8_products_are_exact(path, batch, n_in, n_out, signed, seed):
    with _paths(int8=path):
        _check_int8_product(batch, n_in, n_out, signed, seed)


def _check_int8_product(batch, n_in, n_out, signed, seed):
    rng = np.random.default_rng(seed)
    Wq, _ = K.quantize_weights(_weights(rng, n_in, n_out))
    Wq[0, :] = 127
    Wq[-1, :] = -127
    if signed:
        Xq = rng.integers(-128, 128, (batch, n_in)).astype(np.int8)
    else:
        Xq = rng.integers(0, 256, (batch, n_in)).astype(np.uint8)
    Xq[0] = -128 if signed else 255   # extreme rows reach the largest sums
    layer = K.QuantDense("int8", Wq, np.ones(n_out, np.float32), 0.0, signed)
    C = layer.matmul(Xq)
    assert C.dtype == np.int32
    np.testing.assert_array_equal(C, R.q8_matmul(Xq, Wq))


@pytest.mark.parametrize("path", _int8_paths())
@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 70), n_in=st.integers(1, 50), n_out=st.integers(1, 70),
       signed=st.booleans(), static=st.booleans(),
       name=st.sampled_from(sorted(set(CODES) - {"prelu"})), seed=st.integers(0, 2**31 - 1))
def test_int8_forward_matches_twin(path, batch, n_in, n_out, signed, static, name,
                                   seed):
    with _paths(int8=path):
        _check_int8_forward(batch, n_in, n_out, signed, static, name, seed)


def _check_int8_forward(batch, n_in, n_out, signed, static, name, seed):
    rng = np.random.default_rng(seed)
    W = _weights(rng, n_in, n_out)
    X = rng.standard_normal((batch, n_in)).astype(np.float32)
    if not signed:
        X = np.abs(X)
    X[0] = 0  # a row of zeros: scale 1 when quantized per row
    b = rng.standard_normal(n_out).astype(np.float32)
    Wq, w_scale = K.quantize_weights(W)
    Wq_ref, w_scale_ref = R.quantize_weights(W)
    np.testing.assert_array_equal(Wq, Wq_ref)
    np.testing.assert_array_equal(w_scale, w_scale_ref)
    x_scale = float(np.abs(X).max() / (127 if signed else 255)) if static else 0.0
    layer = K.QuantDense("int8", Wq, w_scale, x_scale, signed)
    Y = layer.forward(X, b, name)
    Y_ref = R.q8_forward(X, Wq, w_scale, b, name, x_scale, signed)
    np.testing.assert_allclose(Y, Y_ref, rtol=1e-6, atol=1e-6)


def _block_pruned(rng, n_in, n_out, block, keep):
    """int8 weights with about `keep` of their 1x`block` blocks nonzero, the extremes
    (+-127) in some of them."""
    Wq, _ = K.quantize_weights(_weights(rng, n_in, n_out))
    mask = np.repeat(rng.random((n_in, -(-n_out // block))) < keep, block, axis=1)[:, :n_out]
    Wq[0] = 127
    Wq[-1] = -127
    return np.where(mask, Wq, 0).astype(np.int8)


@pytest.mark.parametrize("path", _int8_paths())
@pytest.mark.parametrize("block", K.BLOCKS)
@settings(max_examples=20, deadline=None)
@given(batch=st.integers(1, 21), n_in=st.integers(1, 70), n_out=st.integers(1, 70),
       keep=st.sampled_from([0.0, 0.1, 0.4, 1.0]), signed=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_int8_block_products_are_exact(path, block, batch, n_in, n_out, keep, signed, seed):
    rng = np.random.default_rng(seed)
    Wq = _block_pruned(rng, n_in, n_out, block, keep)
    packed = K.pack_blocks(Wq, block)
    twin = R.q8_blocks(Wq, block)
    for got, want in zip(packed, twin):
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    if signed:
        Xq = rng.integers(-128, 128, (batch, n_in)).astype(np.int8)
    else:
        Xq = rng.integers(0, 256, (batch, n_in)).astype(np.uint8)
    Xq[0] = -128 if signed else 255
    ones = np.ones(n_out, np.float32)
    with _paths(int8=path):
        C = K.QuantDense("int8", Wq, ones, 0.0, signed, block=block).matmul(Xq)
        dense = K.QuantDense("int8", Wq, ones, 0.0, signed).matmul(Xq)
    np.testing.assert_array_equal(C, dense)
    np.testing.assert_array_equal(C, R.q8_block_matmul(Xq, *twin, n_out))
    np.testing.assert_array_equal(C, R.q8_matmul(Xq, Wq))


@pytest.mark.parametrize("path", _int8_paths())
@pytest.mark.parametrize("block", K.BLOCKS)
@pytest.mark.parametrize("signed, static", [(False, True), (True, False), (True, True)])
def test_int8_block_forward_is_dense_int8(path, block, signed, static):
    rng = np.random.default_rng(block)
    Wq = _block_pruned(rng, 203, 45, block, 0.12)
    w_scale = rng.uniform(0.001, 0.01, 45).astype(np.float32)
    b = rng.standard_normal(45).astype(np.float32)
    X = rng.standard_normal((37, 203)).astype(np.float32)
    if not signed:
        X = np.abs(X)
    x_scale = float(np.abs(X).max() / 127) if static else 0.0
    with _paths(int8=path):
        blocked = K.QuantDense("int8", Wq, w_scale, x_scale, signed, block=block)
        dense = K.QuantDense("int8", Wq, w_scale, x_scale, signed)
        assert blocked.block == block and dense.block == 0
        for rows in (1, 2, 3, 5, 16, 37):
            for threads in (1, 2, 7):
                Y = blocked.forward(X[:rows], b, "relu", n_threads=threads)
                np.testing.assert_array_equal(Y, dense.forward(X[:rows], b, "relu"))
        np.testing.assert_allclose(Y, R.q8_forward(X, Wq, w_scale, b, "relu", x_scale, signed),
                                   rtol=1e-6, atol=1e-6)


def test_int8_blocks_of_an_empty_layer_give_the_bias():
    layer = K.QuantDense("int8", np.zeros((9, 20), np.int8), np.ones(20, np.float32), 0.0,
                         False, block=8)
    assert layer.packed.size == 0
    b = np.arange(20, dtype=np.float32)
    np.testing.assert_array_equal(layer.forward(np.ones((3, 9), np.float32), b), np.tile(b, (3, 1)))


@pytest.mark.parametrize("path", _bf16_paths())
@settings(max_examples=25, deadline=None)
@given(batch=st.integers(1, 40), n_in=st.integers(1, 70), n_out=st.integers(1, 90),
       name=st.sampled_from(["linear", "relu", "tanh", "softmax"]), seed=st.integers(0, 2**31 - 1))
def test_bf16_forward_matches_twin(path, batch, n_in, n_out, name, seed):
    with _paths(bf16=path):
        _check_bf16_forward(batch, n_in, n_out, name, seed)


def _check_bf16_forward(batch, n_in, n_out, name, seed):
    rng = np.random.default_rng(seed)
    W = _weights(rng, n_in, n_out)
    X = rng.standard_normal((batch, n_in)).astype(np.float32)
    b = rng.standard_normal(n_out).astype(np.float32)
    Wh = K.to_bf16(W)
    np.testing.assert_array_equal(Wh, R.to_bf16(W))
    layer = K.QuantDense("bf16", Wh)
    np.testing.assert_array_equal(layer.forward(X, None, "linear"),
                                  R.bf16_matmul(R.to_bf16(X), Wh))  # same sums, same order
    np.testing.assert_allclose(layer.forward(X, b, name), R.bf16_forward(X, Wh, b, name),
                               rtol=1e-6, atol=1e-6)


def test_bf16_rounds_to_nearest_even():
    x = np.array([1.0, 1 + 2**-8, 1 + 3 * 2**-8, -2.5, np.inf, 1e-40], np.float32)
    np.testing.assert_array_equal(R.from_bf16(K.to_bf16(x)),
                                  np.array([1.0, 1.0, 1 + 4 * 2**-8, -2.5, np.inf,
                                            R.from_bf16(R.to_bf16(x[-1:]))[0]], np.float32))
    assert np.isnan(R.from_bf16(K.to_bf16(np.array([np.nan], np.float32)))).all()


@pytest.mark.parametrize("precision", ["int8", "bf16"])
@pytest.mark.parametrize("threads", [1, 2, 7])
def test_threads_give_identical_results(precision, threads):
    rng = np.random.default_rng(3)
    W = _weights(rng, 300, 200)
    X = np.abs(rng.standard_normal((517, 300))).astype(np.float32)
    if precision == "int8":
        layer = K.QuantDense("int8", *K.quantize_weights(W), 0.0, False)
    else:
        layer = K.QuantDense("bf16", K.to_bf16(W))
    one = layer.forward(X, None, "relu", n_threads=1)
    np.testing.assert_array_equal(layer.forward(X, None, "relu", n_threads=threads), one)


def test_unsigned_inputs_clip_negative_values():
    W = np.eye(3, dtype=np.float32)
    layer = K.QuantDense("int8", *K.quantize_weights(W), 0.0, False)
    np.testing.assert_array_equal(layer.forward(np.array([[-1.0, 0.0, 2.0]], np.float32)),
                                  [[0.0, 0.0, 2.0]])


def test_paths_report_and_refuse(restore_paths):
    assert set(K.paths()) == {"int8", "bf16"}
    K.use_paths(int8="portable", bf16="portable")
    assert K.paths() == {"int8": "portable", "bf16": "portable"}
    with pytest.raises(ValueError, match="valid"):
        K.use_paths(int8="sse9")
    if K.cpu_paths()["bf16"] == "portable":
        with pytest.raises(ValueError, match="cannot run"):
            K.use_paths(bf16="avx512-bf16")
    K.use_paths(int8="auto", bf16="auto")
    assert K.paths() == K.cpu_paths()


def test_portable_environment_switch(tmp_path):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "from fastnn._kernels import quant; "
                          "print(quant.paths())"], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "FASTNN_QUANT_PORTABLE": "1"})
    assert "'int8': 'portable'" in out.stdout and "'bf16': 'portable'" in out.stdout


@pytest.mark.parametrize("bad", [
    dict(precision="int4"),
    dict(weights=np.zeros((3, 2), np.float32)),
    dict(weights=np.full((3, 2), -128, np.int8)),
    dict(w_scale=np.zeros(2, np.float32)),
    dict(x_scale=-1.0),
    dict(block=5),
    dict(weights=np.ones((65537, 2), np.int8), block=8),  # more inputs than uint16 rows
    dict(precision="bf16", weights=np.ones((3, 2), np.uint16), block=8),
])
def test_layer_validates(bad):
    args = dict(precision="int8", weights=np.ones((3, 2), np.int8),
                w_scale=np.ones(2, np.float32), x_scale=0.0, block=0)
    args.update(bad)
    with pytest.raises(ValueError):
        K.QuantDense(args["precision"], args["weights"], args["w_scale"], args["x_scale"],
                     block=args["block"])
