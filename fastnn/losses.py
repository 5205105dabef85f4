"""Losses and metrics.

A loss is the mean over samples of a per-sample loss (the mean over outputs for
mse, mae and binary cross-entropy), weighted by per-sample weights when given:
``sum_i w_i * l_i / n``. Each returns the value and the gradient with respect to the
predictions. The cross-entropies also work from the logits of a matching output
activation (softmax for the categorical ones, sigmoid for binary): there the gradient
is ``p - y`` with respect to the logits, and saturated outputs never give inf or NaN.
"""
import numpy as np

from fastnn import _registry
from fastnn._kernels import activations as act_kernels

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "get", "METRICS",
           "get_metric"]

# Probabilities are clipped to [EPS, 1 - EPS] where a loss must take their log.
EPS = 1e-7


def _weighted_mean(per_sample, weights):
    n = per_sample.shape[0]
    if weights is None:
        return float(per_sample.sum() / n)
    return float((per_sample * weights).sum() / n)


def _scale_rows(grad, weights, n):
    """grad / n, each row times its sample weight."""
    if weights is None:
        grad *= 1.0 / n
    else:
        grad *= (weights / n).astype(grad.dtype)[:, None]
    return grad


class Loss:
    """Base class: ``loss(y_true, y_pred, weights) -> (value, d value / d y_pred)``."""

    #: the output activation whose logits this loss can take directly, if any
    logits_activation = None
    #: how class labels become targets (see `fastnn.labels.as_targets`); None: no labels
    label_form = None

    def __call__(self, y_true, y_pred, weights=None):
        raise NotImplementedError

    def from_logits(self, y_true, logits, probs, weights=None):
        """(value, d value / d logits), with probs = activation(logits) from the forward pass."""
        raise NotImplementedError

    def check_targets(self, y, output_dim):
        """Targets as the array the loss reads; ValueError when they cannot fit the output."""
        y = np.asarray(y)
        if y.ndim == 1:
            y = y[:, None]
        if y.ndim != 2 or y.shape[1] != output_dim:
            raise ValueError(f"targets of shape {np.shape(y)} do not fit an output of width "
                             f"{output_dim}")
        return y

    def get_config(self):
        return {}


class MeanSquaredError(Loss):
    """mean over outputs of (y_pred - y_true) ** 2."""

    def __call__(self, y_true, y_pred, weights=None):
        diff = y_pred - y_true
        k = diff.shape[1]
        value = _weighted_mean((diff * diff).sum(axis=1) / k, weights)
        return value, _scale_rows(diff * (2.0 / k), weights, diff.shape[0])


class MeanAbsoluteError(Loss):
    """mean over outputs of |y_pred - y_true|."""

    def __call__(self, y_true, y_pred, weights=None):
        diff = y_pred - y_true
        k = diff.shape[1]
        value = _weighted_mean(np.abs(diff).sum(axis=1) / k, weights)
        return value, _scale_rows(np.sign(diff) / k, weights, diff.shape[0])


class BinaryCrossentropy(Loss):
    """mean over outputs of -(y log p + (1 - y) log(1 - p)); targets in [0, 1]."""

    logits_activation = "sigmoid"
    label_form = "binary"  # for one output unit: labels (negative, positive)

    def check_targets(self, y, output_dim):
        y = super().check_targets(y, output_dim)
        if y.size and (np.min(y) < 0 or np.max(y) > 1):
            raise ValueError("binary cross-entropy needs targets in [0, 1]")
        return y

    def __call__(self, y_true, y_pred, weights=None):
        p = np.clip(y_pred, EPS, 1 - EPS)
        k = p.shape[1]
        per = -(y_true * np.log(p) + (1 - y_true) * np.log1p(-p)).sum(axis=1) / k
        grad = (p - y_true) / (p * (1 - p) * k)
        return _weighted_mean(per, weights), _scale_rows(grad.astype(y_pred.dtype), weights,
                                                          p.shape[0])

    def from_logits(self, y_true, logits, probs, weights=None):
        z = logits
        k = z.shape[1]
        # log(1 + exp(-|z|)) + max(z, 0) - z * y, stable for any z
        per = (np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))).sum(axis=1) / k
        grad = (probs - y_true) / k
        return _weighted_mean(per, weights), _scale_rows(grad.astype(z.dtype), weights, z.shape[0])


class CategoricalCrossentropy(Loss):
    """-sum_j y_j log p_j per sample, for one-hot (or soft) targets."""

    logits_activation = "softmax"
    label_form = "onehot"

    def __call__(self, y_true, y_pred, weights=None):
        p = np.clip(y_pred, EPS, 1.0)
        per = -(y_true * np.log(p)).sum(axis=1)
        grad = -y_true / p
        return _weighted_mean(per, weights), _scale_rows(grad.astype(y_pred.dtype), weights,
                                                          p.shape[0])

    def from_logits(self, y_true, logits, probs, weights=None):
        per = -(y_true * act_kernels.log_softmax(logits)).sum(axis=1)
        grad = probs * y_true.sum(axis=1, keepdims=True) - y_true
        return _weighted_mean(per, weights), _scale_rows(grad.astype(logits.dtype), weights,
                                                          logits.shape[0])


class SparseCategoricalCrossentropy(Loss):
    """-log p[label] per sample, for integer labels."""

    logits_activation = "softmax"
    label_form = "index"

    def check_targets(self, y, output_dim):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise ValueError(f"sparse categorical targets must be integer labels of shape (n,), "
                             f"got shape {y.shape}")
        if y.dtype.kind == "f":
            if not np.all(np.equal(np.mod(y, 1), 0)):
                raise ValueError("sparse categorical targets must be whole numbers")
        elif y.dtype.kind not in "iub":
            raise ValueError(f"sparse categorical targets must be integers, got dtype {y.dtype}")
        y = y.astype(np.int64)
        if y.size and (y.min() < 0 or y.max() >= output_dim):
            raise ValueError(f"labels must lie in [0, {output_dim - 1}] for an output of width "
                             f"{output_dim}; got labels from {y.min()} to {y.max()}")
        return y

    def __call__(self, y_true, y_pred, weights=None):
        rows = np.arange(y_pred.shape[0])
        p = np.clip(y_pred[rows, y_true], EPS, 1.0)
        grad = np.zeros_like(y_pred)
        grad[rows, y_true] = -1.0 / p
        return _weighted_mean(-np.log(p), weights), _scale_rows(grad, weights, y_pred.shape[0])

    def from_logits(self, y_true, logits, probs, weights=None):
        rows = np.arange(logits.shape[0])
        per = -act_kernels.log_softmax(logits)[rows, y_true]
        grad = probs.copy()
        grad[rows, y_true] -= 1
        return _weighted_mean(per, weights), _scale_rows(grad, weights, logits.shape[0])


_TABLE = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "binary_crossentropy": BinaryCrossentropy,
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
}
_TABLE.update({cls.__name__.lower(): cls for cls in set(_TABLE.values())})


def get(identifier):
    """A `Loss` from a name, an instance or a config dict; unknown names list the valid ones."""
    return _registry.get(identifier, _TABLE, "loss", Loss)


def serialize(loss):
    return _registry.serialize(loss)


# -- metrics: fn(y_true, y_pred) -> float, with y_true as the loss prepared it ------------
def accuracy(y_true, y_pred):
    """Fraction of correct predictions: argmax for several outputs, p > 0.5 for one."""
    if y_pred.shape[1] == 1:
        return float(np.mean((y_pred[:, 0] > 0.5) == (np.reshape(y_true, -1) > 0.5)))
    pred = act_kernels.argmax(y_pred)
    true = y_true if y_true.ndim == 1 else np.argmax(y_true, axis=1)
    return float(np.mean(pred == true))


def mse(y_true, y_pred):
    return float(np.mean((y_pred - np.reshape(y_true, y_pred.shape)) ** 2))


def mae(y_true, y_pred):
    return float(np.mean(np.abs(y_pred - np.reshape(y_true, y_pred.shape))))


METRICS = {"accuracy": accuracy, "acc": accuracy, "mse": mse, "mae": mae}
"""Metrics by name; each is the mean over samples, reported per epoch."""


def get_metric(name):
    if callable(name):
        return getattr(name, "__name__", "metric"), name
    try:
        return name, METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name!r}; valid names: "
                         f"{', '.join(sorted(METRICS))}") from None
