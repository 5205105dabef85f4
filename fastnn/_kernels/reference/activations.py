"""Numpy twins of the activation kernels, written for clarity and numerical safety."""
import numpy as np
from scipy.special import erf

from fastnn._kernels.activations import DEFAULT_ALPHA  # the parameters; the arithmetic is here

SELU_ALPHA = 1.6732632423543772
SELU_SCALE = 1.0507009873554805
GELU_C = np.sqrt(2.0 / np.pi)
GELU_K = 0.044715


def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def _expm1_neg(z):
    """expm1 on the negative part only, so large positive inputs never overflow."""
    return np.expm1(np.minimum(z, 0))


def forward(name, z, alpha=None):
    """act(z) for a 2-D z (softmax row-wise, prelu with one slope per column)."""
    z = np.asarray(z)
    alpha = DEFAULT_ALPHA.get(name) if alpha is None else alpha
    one = z.dtype.type(1)
    if name == "linear":
        return z.copy()
    if name in ("binary_step", "binary_step_ste"):
        return (z >= 0).astype(z.dtype)
    if name == "sigmoid":
        return sigmoid(z)
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0)
    if name in ("leaky_relu", "prelu"):
        return np.where(z > 0, z, alpha * z)
    if name == "elu":
        return np.where(z > 0, z, alpha * _expm1_neg(z))
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * _expm1_neg(z))
    if name == "gelu":
        return 0.5 * z * (one + erf(z / np.sqrt(2.0)))
    if name == "gelu_tanh":
        return 0.5 * z * (one + np.tanh(GELU_C * (z + GELU_K * z ** 3)))
    if name == "swish":
        return z * sigmoid(z)
    if name == "softplus":
        return np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z)))
    if name == "softmax":
        e = np.exp(z - z.max(axis=-1, keepdims=True))
        return e / e.sum(axis=-1, keepdims=True)
    raise ValueError(name)


def derivative(name, z, alpha=None):
    """act'(z) elementwise (not defined for softmax, whose Jacobian is not diagonal)."""
    z = np.asarray(z)
    alpha = DEFAULT_ALPHA.get(name) if alpha is None else alpha
    if name in ("linear", "binary_step_ste"):
        return np.ones_like(z)
    if name == "binary_step":
        return np.zeros_like(z)
    if name == "sigmoid":
        s = sigmoid(z)
        return s * (1 - s)
    if name == "tanh":
        return 1 - np.tanh(z) ** 2
    if name == "relu":
        return (z > 0).astype(z.dtype)
    if name in ("leaky_relu", "prelu"):
        return np.where(z > 0, 1, alpha * np.ones_like(z)).astype(z.dtype)
    if name == "elu":
        return np.where(z > 0, 1, alpha * np.exp(np.minimum(z, 0))).astype(z.dtype)
    if name == "selu":
        return SELU_SCALE * np.where(z > 0, 1, SELU_ALPHA * np.exp(np.minimum(z, 0)))
    if name == "gelu":
        return 0.5 * (1 + erf(z / np.sqrt(2.0))) + z * np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    if name == "gelu_tanh":
        t = np.tanh(GELU_C * (z + GELU_K * z ** 3))
        return 0.5 * (1 + t) + 0.5 * z * (1 - t * t) * GELU_C * (1 + 3 * GELU_K * z * z)
    if name == "swish":
        s = sigmoid(z)
        return s + z * s * (1 - s)
    if name == "softplus":
        return sigmoid(z)
    raise ValueError(name)


def backward(name, dy, z, alpha=None):
    """dz = dy * act'(z); softmax through its row Jacobian."""
    if name == "softmax":
        y = forward("softmax", z)
        return y * (dy - (dy * y).sum(axis=-1, keepdims=True))
    return (dy * derivative(name, z, alpha)).astype(dy.dtype)


def log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def prelu_alpha_grad(dy, z):
    return (dy * np.minimum(z, 0)).sum(axis=0)


def maxout_forward(z, pieces):
    g = z.reshape(z.shape[0], -1, pieces)
    idx = g.argmax(axis=-1)
    return np.take_along_axis(g, idx[..., None], axis=-1)[..., 0], idx


def maxout_backward(dy, idx, pieces):
    dz = np.zeros((dy.shape[0], dy.shape[1], pieces), dtype=dy.dtype)
    np.put_along_axis(dz, idx[..., None], dy[..., None], axis=-1)
    return dz.reshape(dy.shape[0], -1)


def argmax(x):
    return np.argmax(x, axis=1)
