"""Weights on huge pages (fastnn/_kernels/_memory.py): the same values, in one block."""
import mmap

import numpy as np
import pytest

from fastnn._kernels import _memory
from fastnn.engine import InferenceEngine

HUGE = hasattr(mmap, "MADV_HUGEPAGE")


def test_gather_copies_into_one_aligned_block():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((300, 257)).astype(np.float32), np.arange(7, dtype=np.int64),
              np.zeros(0, np.float32), rng.integers(0, 9, (40, 3)).astype(np.uint16)]
    copies = _memory.gather(arrays)
    for a, c in zip(arrays, copies):
        assert c.dtype == a.dtype and c.shape == a.shape and c.flags.c_contiguous
        np.testing.assert_array_equal(c, a)
        assert c.ctypes.data % _memory.ALIGN == 0
    if HUGE:
        assert copies[0].ctypes.data % _memory.HUGE_PAGE == 0
        assert all(np.shares_memory(copies[0].base, c.base) for c in copies if c.size)
        assert not any(np.shares_memory(a, c) for a, c in zip(arrays, copies) if a.size)


def test_small_arrays_stay_where_they_are():
    arrays = [np.ones((10, 10), np.float32)]
    assert _memory.gather(arrays)[0] is arrays[0]


@pytest.mark.skipif(not HUGE, reason="no transparent huge pages here")
def test_an_engine_keeps_its_weights_in_one_block():
    rng = np.random.default_rng(1)
    specs = [{"kind": "dense", "W": rng.standard_normal((784, 256)).astype(np.float32),
              "b": np.zeros(256, np.float32), "activation": "relu"},
             {"kind": "dense", "W": rng.standard_normal((256, 10)).astype(np.float32),
              "activation": "softmax"}]
    engine = InferenceEngine(specs)
    weights = [a for layer in engine._layers for a in layer.arrays.values()
               if isinstance(a, np.ndarray)]
    assert weights[0].ctypes.data % _memory.HUGE_PAGE == 0
    assert all(np.shares_memory(weights[0].base, w.base) for w in weights)
    X = rng.standard_normal((3, 784)).astype(np.float32)
    z = np.maximum(X @ specs[0]["W"], 0) @ specs[1]["W"]
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    np.testing.assert_allclose(engine.predict(X), expected / expected.sum(axis=1, keepdims=True),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not HUGE, reason="no transparent huge pages here")
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_a_quantized_engine_reads_its_weights_from_the_block(precision):
    import fastnn as fn
    from fastnn import layers as L
    model = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(10, activation="softmax")],
                          input_dim=784, seed=0)
    X = np.random.default_rng(2).random((64, 784)).astype(np.float32)
    engine = fn.deploy(model, precision=precision, calibration=X if precision == "int8" else None)
    first = engine._layers[0].quant
    bias = engine._layers[0].arrays["b"]  # the block's first array
    assert bias.ctypes.data % _memory.HUGE_PAGE == 0
    assert isinstance(bias.base, np.ndarray) and first.packed.base is bias.base
    expected = fn.deploy(model).predict(X)
    np.testing.assert_allclose(engine.predict(X), expected, atol=0.05)
    with pytest.raises(ValueError, match="copies"):
        first.use_arrays(first.kernel_arrays()[1:] + [np.zeros(3)])
