"""Diagnostics of a `Sequential` model: the gradient health of each layer."""
import numpy as np

from fastnn._table import format_table

__all__ = ["gradient_report", "GradientReport"]

# Gradient-health thresholds (see `gradient_report`).
VANISHING_RATIO = 1e-5
EXPLODING_RATIO = 10.0
DEAD_FRACTION = 0.5
SATURATED_FRACTION = 0.5


def gradient_report(model, X, y):
    """Gradient health per layer on (X, y), without changing the model.

    For every layer with weights: the gradient norm ``|g|``, the weight norm ``|w|``,
    the update-to-weight ratio ``lr * |g| / |w|``, and for activation layers the
    fraction of dead ReLU units (never positive on X) and of saturated sigmoid/tanh
    outputs (sigmoid < 0.01 or > 0.99, |tanh| > 0.99). A layer is flagged
    ``vanishing`` when ``|g| / |w| < 1e-5``, ``exploding`` when it exceeds 10 or is not
    finite, ``dead`` or ``saturated`` when more than half its units are.
    """
    model._require_compiled("gradient_report")
    X = model._check_X(X)
    if not model.built:
        model.build(X.shape[1])
    y = model._check_y(y, X.shape[0])
    saved = model.get_weights()
    random_state = model._rng.bit_generator.state
    try:
        out = model._forward(X, training=True)
        _, grad = model._loss_and_grad(y, out, None)
        model._backward(grad)
        lr = model.optimizer.learning_rate
        rows = [_health_row(layer, lr) for layer in model.layers if layer.params]
    finally:
        model.set_weights(saved)
        model._rng.bit_generator.state = random_state
    return GradientReport(rows)


def _health_row(layer, lr):
    """One layer's row of the report, from the gradients and outputs of the last pass."""
    g = float(np.sqrt(sum(float(np.sum(np.square(g, dtype=np.float64))) for g in layer.grads)))
    wn = float(np.sqrt(sum(float(np.sum(np.square(p, dtype=np.float64)))
                           for p in layer.params)))
    ratio = g / wn if wn > 0 else float("inf")
    dead = saturated = 0.0
    act = getattr(getattr(layer, "activation", None), "kernel", None)
    Y = getattr(layer, "_Y", None)
    if Y is not None and act == "relu":
        dead = float(np.mean(np.all(Y <= 0, axis=0)))
    elif Y is not None and act == "sigmoid":
        saturated = float(np.mean((Y < 0.01) | (Y > 0.99)))
    elif Y is not None and act == "tanh":
        saturated = float(np.mean(np.abs(Y) > 0.99))
    flags = []
    if not np.isfinite(ratio) or ratio > EXPLODING_RATIO:
        flags.append("exploding")
    elif ratio < VANISHING_RATIO:
        flags.append("vanishing")
    if dead > DEAD_FRACTION:
        flags.append("dead")
    if saturated > SATURATED_FRACTION:
        flags.append("saturated")
    return {"layer": layer.name, "grad_norm": g, "weight_norm": wn,
            "update_ratio": lr * ratio if np.isfinite(ratio) else ratio,
            "dead_fraction": dead, "saturated_fraction": saturated,
            "flag": ",".join(flags)}


class GradientReport:
    """Rows of `gradient_report`, printable as a table; ``to_dict()`` for data."""

    COLUMNS = ("layer", "grad_norm", "weight_norm", "update_ratio", "dead_fraction",
               "saturated_fraction", "flag")

    def __init__(self, rows):
        self.rows = rows

    def to_dict(self):
        return {row["layer"]: {k: row[k] for k in self.COLUMNS[1:]} for row in self.rows}

    def __str__(self):
        def fmt(v):
            return f"{v:.3g}" if isinstance(v, float) else str(v)
        table = [self.COLUMNS] + [tuple(fmt(r[c]) for c in self.COLUMNS) for r in self.rows]
        return format_table(table)

    __repr__ = __str__
