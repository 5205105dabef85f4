"""Each activation on 1,000,000 float32 elements: fastnn (1 and 2 threads) beside numpy.

Run: python -m pytest bench/bench_activations.py --benchmark-only
"""
import numpy as np
import pytest
from scipy.special import erf

from fastnn._kernels import activations

N = 1_000_000


def _softmax(x):
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# The plain numpy expression a user would write for each activation.
NUMPY = {
    "linear": lambda x: x.copy(),
    "binary_step": lambda x: (x >= 0).astype(x.dtype),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0),
    "leaky_relu": lambda x: np.where(x > 0, x, 0.01 * x),
    "prelu": lambda x, a=np.float32(0.25): np.where(x > 0, x, a * x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: 1.0507 * np.where(x > 0, x, 1.6733 * np.expm1(np.minimum(x, 0))),
    "gelu": lambda x: 0.5 * x * (1 + erf(x * np.float32(0.7071067811865476))),
    "gelu_tanh": lambda x: 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3))),
    "swish": lambda x: x / (1 + np.exp(-x)),
    "softplus": lambda x: np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x))),
    "softmax": _softmax,
}
NAMES = sorted(NUMPY)


def _input(name):
    rng = np.random.default_rng(0)
    shape = (1000, 1000) if name in ("softmax", "prelu") else (1, N)
    return (rng.standard_normal(shape) * 3).astype(np.float32)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", NAMES)
def test_fastnn(benchmark, name, threads):
    benchmark.group = f"activation {name}"
    x = _input(name)
    alpha = np.full(x.shape[1], 0.25, np.float32) if name == "prelu" else None
    benchmark(activations.activation_forward, x, name, alpha=alpha, n_threads=threads)


@pytest.mark.parametrize("name", NAMES)
def test_numpy(benchmark, name):
    benchmark.group = f"activation {name}"
    x = _input(name)
    with np.errstate(over="ignore"):
        benchmark(NUMPY[name], x)
