"""Diagnostics of a `Sequential` model: the gradient health of each layer, bias against
variance, and learning curves."""
import numpy as np

from fastnn._table import format_table

__all__ = ["gradient_report", "GradientReport", "bias_variance", "BiasVariance",
           "learning_curve", "LearningCurve"]

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
    model.require_compiled("gradient_report")
    X = model.check_input(X)
    if not model.built:
        model.build(X.shape[1])
    y = model._check_y(y, X.shape[0])
    # A training pass may change weights (BatchNormalization's running statistics): they
    # are restored layer by layer, not by `Sequential.set_weights`, which would also
    # drop the optimizer's record of its last step (the undo that fit relies on).
    saved = [layer.get_weights() for layer in model.layers]
    random_state = model._rng.bit_generator.state
    try:
        out = model._forward(X, training=True)
        _, grad = model._loss_and_grad(y, out, None)
        model._backward(grad)
        lr = model.optimizer.learning_rate
        rows = [_health_row(layer, lr) for layer in model.layers if layer.params]
    finally:
        for layer, weights in zip(model.layers, saved):
            layer.set_weights(weights)
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


# -- bias and variance --------------------------------------------------------------------
REMEDIES = {
    "bias": "a bigger network (more units or layers), longer training, or a better "
            "learning rate",
    "variance": "regularisation (L2, dropout), more training data, or data augmentation",
    "neither": "both are below 0.01",
}
"""What helps against each problem."""
NEGLIGIBLE = 0.01
"""Avoidable bias and variance both below this: neither is a problem."""


def model_error(model, X, y):
    """The model's error on (X, y): ``1 - accuracy`` for a classifier, ``1 - r2`` (the
    fraction of the targets' variance left unexplained) otherwise."""
    from fastnn import losses

    model.require_compiled("an error measure")
    model.require_built("an error measure")
    X = model.check_input(X)
    y = model._check_y(y, X.shape[0])
    out = model._predict(X, None)
    metric = losses.accuracy if model.loss.label_form is not None else losses.r2
    return 1.0 - metric(y, out)


class BiasVariance:
    """`bias_variance`'s result: errors, the avoidable bias and the variance, the larger
    problem (``"bias"`` or ``"variance"``) and what helps; printable."""

    def __init__(self, train_error, val_error, optimal_error, kind):
        self.train_error = train_error
        self.val_error = val_error
        self.optimal_error = optimal_error
        self.avoidable_bias = train_error - optimal_error
        self.variance = val_error - train_error
        self.kind = kind
        self.problem = "bias" if self.avoidable_bias >= self.variance else "variance"
        if max(self.avoidable_bias, self.variance) < NEGLIGIBLE:
            self.problem = "neither"
        self.remedy = REMEDIES[self.problem]

    def to_dict(self):
        return {k: getattr(self, k) for k in ("train_error", "val_error", "optimal_error",
                                               "avoidable_bias", "variance", "problem",
                                               "remedy")}

    def __str__(self):
        measure = "1 - accuracy" if self.kind == "classification" else "1 - r2"
        return (f"training error {self.train_error:.4f}, validation error {self.val_error:.4f} "
                f"({measure}; optimal {self.optimal_error:.4f})\n"
                f"avoidable bias {self.avoidable_bias:.4f}, variance {self.variance:.4f}: "
                + (f"mostly {self.problem}; try {self.remedy}" if self.problem != "neither"
                   else f"neither is a problem ({self.remedy})"))

    __repr__ = __str__


def bias_variance(model, X_train, y_train, X_val, y_val, optimal_error=0.0):
    """Bias against variance for a trained model.

    The error is ``1 - accuracy`` for a classifier and ``1 - r2`` otherwise. Avoidable
    bias is the training error minus `optimal_error` (the best error reachable, e.g. the
    human or Bayes error); variance is the validation error minus the training error.
    The larger one names the problem to work on: for bias a bigger network or longer
    training, for variance regularisation, dropout, more data or augmentation
    (``"neither"`` when both are below 0.01).

    Returns
    -------
    BiasVariance
    """
    from fastnn._validation import check_real

    optimal_error = check_real(optimal_error, "optimal_error", 0.0, 1.0)
    kind = "classification" if model.loss is not None and model.loss.label_form is not None \
        else "regression"
    return BiasVariance(model_error(model, X_train, y_train), model_error(model, X_val, y_val),
                        optimal_error, kind)


# -- learning curves ----------------------------------------------------------------------
class LearningCurve:
    """`learning_curve`'s result: ``sizes``, ``train_errors`` and ``val_errors`` (lists);
    ``plot(path)`` draws it (needs matplotlib, the ``[plot]`` extra)."""

    def __init__(self, sizes, train_errors, val_errors):
        self.sizes, self.train_errors, self.val_errors = sizes, train_errors, val_errors

    def __str__(self):
        rows = [("samples", "train error", "validation error")] + [
            (str(n), f"{t:.4f}", f"{v:.4f}")
            for n, t, v in zip(self.sizes, self.train_errors, self.val_errors)]
        return format_table(rows, "r", rule=True)

    __repr__ = __str__

    def plot(self, path):
        """Draw both curves against the training-set size into an image file."""
        from fastnn.experiments import require_matplotlib

        Figure = require_matplotlib()
        fig = Figure(figsize=(5, 3.6), layout="constrained")
        ax = fig.subplots()
        ax.plot(self.sizes, self.train_errors, marker="o", label="training")
        ax.plot(self.sizes, self.val_errors, marker="o", label="validation")
        ax.set_xlabel("training samples")
        ax.set_ylabel("error")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.savefig(path, dpi=120)
        return path


def learning_curve(model, X, y, sizes, *, validation_split=0.2, epochs=20, batch_size=32,
                   seed=0):
    """Training and validation error of the model's architecture against the amount of
    training data.

    The last `validation_split` of the samples (after one shuffle by `seed`) are held out;
    for each size n, a fresh copy of `model` (same layers and compile settings, new
    initial weights; Normalization statistics kept) is trained on the first n of the
    others for `epochs` epochs. A training error that stays high says bias; a gap that
    narrows as n grows says more data will help (variance).

    Parameters
    ----------
    model : Sequential
        Compiled and built; left unchanged.
    sizes : sequence of int or float
        Training-set sizes: counts, or fractions (0, 1] of the training part.

    Returns
    -------
    LearningCurve
    """
    from fastnn import layers as layers_mod, losses, optimizers
    from fastnn.model import Sequential

    model.require_compiled("learning_curve")
    model.require_built("learning_curve")
    X = model.check_input(X)
    y = np.asarray(y)
    if y.shape[:1] != X.shape[:1]:
        raise ValueError(f"X has {X.shape[0]} samples but y has shape {y.shape}")
    order = np.random.default_rng(seed).permutation(X.shape[0])
    n_val = int(round(X.shape[0] * validation_split))
    if not 1 <= n_val < X.shape[0]:
        raise ValueError(f"validation_split={validation_split} leaves no samples for "
                         f"{'validation' if n_val < 1 else 'training'}")
    train, val = order[:-n_val], order[-n_val:]
    counts = []
    for size in sizes:
        n = int(round(size * len(train))) if isinstance(size, float) and size <= 1 else size
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(train):
            raise ValueError(f"sizes must be counts in [1, {len(train)}] or fractions in (0, 1]"
                             f", got {size!r}")
        counts.append(int(n))
    curve = LearningCurve([], [], [])
    for n in counts:
        fresh = Sequential([layers_mod.get({"class_name": type(l).__name__,
                                            "config": l.get_config()}) for l in model.layers],
                           input_dim=model.input_dim, dtype=model.dtype, seed=seed,
                           name=model.name)
        for src, dst in zip(model.layers, fresh.layers):
            if isinstance(src, layers_mod.Normalization):
                dst.set_weights(src.get_weights())
        fresh.classes = model.classes
        fresh.compile(optimizers.get(optimizers.serialize(model.optimizer)),
                      losses.get(losses.serialize(model.loss)))
        part = train[:n]
        fresh.fit(X[part], y[part], epochs=epochs, batch_size=batch_size, verbose=0)
        curve.sizes.append(n)
        curve.train_errors.append(model_error(fresh, X[part], y[part]))
        curve.val_errors.append(model_error(fresh, X[val], y[val]))
    return curve
