"""Dense forward and backward, 784 -> 256 ReLU, float32: fastnn kernels beside numpy.

Run: python -m pytest bench/bench_dense.py --benchmark-only
"""
import numpy as np
import pytest

from fastnn._kernels import dense

N_IN, N_OUT = 784, 256
BATCHES = [1, 32, 256]


def _problem(batch):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((batch, N_IN)).astype(np.float32)
    W = (rng.standard_normal((N_IN, N_OUT)) * np.sqrt(2 / N_IN)).astype(np.float32)
    b = rng.standard_normal(N_OUT).astype(np.float32)
    return X, W, b


@pytest.mark.parametrize("batch", BATCHES)
def test_forward_fastnn(benchmark, batch):
    benchmark.group = f"dense forward batch={batch}"
    X, W, b = _problem(batch)
    Y = np.empty((batch, N_OUT), np.float32)
    benchmark(dense.dense_forward, X, W, b, "relu", out=Y)


@pytest.mark.parametrize("batch", BATCHES)
def test_forward_numpy(benchmark, batch):
    benchmark.group = f"dense forward batch={batch}"
    X, W, b = _problem(batch)
    benchmark(lambda: np.maximum(X @ W + b, 0))


@pytest.mark.parametrize("batch", BATCHES)
def test_backward_fastnn(benchmark, batch):
    benchmark.group = f"dense backward batch={batch}"
    X, W, b = _problem(batch)
    Y = dense.dense_forward(X, W, b, "relu")
    dY = np.ones_like(Y)
    bufs = dict(dZ=np.empty_like(Y), dW=np.empty_like(W), db=np.empty_like(b),
                dX=np.empty_like(X))
    benchmark(dense.dense_backward, dY, X, W, Y, Y, "relu", **bufs)


@pytest.mark.parametrize("batch", BATCHES)
def test_backward_numpy(benchmark, batch):
    benchmark.group = f"dense backward batch={batch}"
    X, W, b = _problem(batch)
    Y = np.maximum(X @ W + b, 0)
    dY = np.ones_like(Y)

    def backward():
        dZ = dY * (Y > 0)
        return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)

    benchmark(backward)
