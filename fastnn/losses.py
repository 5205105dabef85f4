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
from fastnn._kernels import losses as loss_kernels

__all__ = ["Loss", "MeanSquaredError", "MeanAbsoluteError", "BinaryCrossentropy",
           "CategoricalCrossentropy", "SparseCategoricalCrossentropy", "get", "Metric", "METRICS",
           "get_metric", "higher_is_better"]

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
        return loss_kernels.softmax_cross_entropy(logits, probs, targets=y_true,
                                                  weights=weights)


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
        return loss_kernels.softmax_cross_entropy(logits, probs, labels=y_true,
                                                  weights=weights)


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


# -- metrics ---------------------------------------------------------------------------------
# A metric is read from sums over samples (`Metric.stats`), which add up over batches, so the
# epoch value is the value on the whole epoch, also for rmse and r2 that are not batch means.
class Metric:
    """A named metric: ``stats(y_true, y_pred)`` gives sums that add up over batches, and
    ``result(stats)`` the value; ``metric(y_true, y_pred)`` is both at once. `y_true` is
    as the loss reads it (class indices, one-hot rows or values)."""

    def __init__(self, name, stats, result, higher_is_better):
        self.name = name
        self.stats = stats
        self.result = result
        self.higher_is_better = higher_is_better

    def __call__(self, y_true, y_pred):
        return self.result(self.stats(y_true, y_pred))

    def __repr__(self):
        return f"Metric({self.name!r})"


def _correct(y_true, y_pred):
    """[correct predictions, samples]: argmax for several outputs, p > 0.5 for one."""
    if y_pred.shape[1] == 1:
        hits = (y_pred[:, 0] > 0.5) == (np.reshape(y_true, -1) > 0.5)
    else:
        true = y_true if y_true.ndim == 1 else np.argmax(y_true, axis=1)
        hits = act_kernels.argmax(y_pred) == true
    return np.array([np.count_nonzero(hits), hits.shape[0]], dtype=np.float64)


def _errors(y_true, y_pred):
    """[sum of squared errors, sum of absolute errors, number of values]."""
    diff = y_pred.astype(np.float64) - np.reshape(y_true, y_pred.shape)
    return np.array([np.dot(diff.ravel(), diff.ravel()), np.abs(diff).sum(), diff.size])


def _r2_stats(y_true, y_pred):
    """Per output: samples, sum of y, sum of y ** 2, sum of squared errors."""
    y = np.reshape(y_true, y_pred.shape).astype(np.float64)
    diff = y_pred - y
    return np.stack([np.full(y.shape[1], y.shape[0], dtype=np.float64), y.sum(axis=0),
                     (y * y).sum(axis=0), (diff * diff).sum(axis=0)])


def _r2(stats):
    """1 - SSE / SST per output, averaged over outputs (scikit-learn's r2_score: an output
    with constant targets scores 1 when predicted exactly, else 0)."""
    n, s, ss, sse = stats
    sst = np.maximum(ss - s * s / n, 0.0)
    flat = sst <= 1e-12 * np.maximum(ss, 1e-300)
    score = np.where(flat, np.where(sse <= 1e-12 * np.maximum(ss, 1e-300), 1.0, 0.0),
                     1.0 - sse / np.where(flat, 1.0, sst))
    return float(np.mean(score))


_ACCURACY = Metric("accuracy", _correct, lambda s: float(s[0] / s[1]), True)
METRICS = {
    "accuracy": _ACCURACY, "acc": _ACCURACY,
    "mse": Metric("mse", _errors, lambda s: float(s[0] / s[2]), False),
    "mae": Metric("mae", _errors, lambda s: float(s[1] / s[2]), False),
    "rmse": Metric("rmse", _errors, lambda s: float(np.sqrt(s[0] / s[2])), False),
    "r2": Metric("r2", _r2_stats, _r2, True),
}
"""Metrics by name: accuracy, mse, mae, rmse (lower is better) and r2 (the coefficient of
determination, as scikit-learn's r2_score; higher is better)."""

accuracy, mse, mae, rmse, r2 = (METRICS[k] for k in ("accuracy", "mse", "mae", "rmse", "r2"))


def get_metric(name):
    """(name, `Metric`) from a name of `METRICS`, or from a function ``fn(y_true, y_pred)``
    (taken as a mean over samples, higher is better)."""
    if isinstance(name, Metric):
        return name.name, name
    if callable(name):
        fn = name
        label = getattr(fn, "__name__", "metric")
        return label, Metric(label, lambda t, p: np.array([fn(t, p) * p.shape[0], p.shape[0]]),
                             lambda s: float(s[0] / s[1]), True)
    try:
        return name, METRICS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown metric {name!r}; valid names: "
                         f"{', '.join(sorted(METRICS))}") from None


def higher_is_better(name):
    """True unless `name` is the loss or a metric that is better lower (mse, mae, rmse)."""
    return name != "loss" and get_metric(name)[1].higher_is_better
