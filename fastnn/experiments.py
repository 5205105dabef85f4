"""Small experiments on the bundled data: initialisation, activations, dropout, pruning,
augmentation.

Each experiment is a function that trains a few models and returns a list of rows (one
dict per setting), so that results can be checked in code as well as read. `EXPERIMENTS`
names them with their columns and a quick setting; `format_table` prints rows and `plot`
draws them (it needs matplotlib, the ``[plot]`` extra).

- `init_experiment`: a 2-10-5-3-1 ReLU network on two circles, full-batch SGD, with
  zero, large normal (standard deviation 10) and He initial weights. Zeros never break
  symmetry (the loss stays at ln 2 = 0.6931, accuracy 0.5); large weights start with a
  huge loss; He initialisation separates the circles.
- `activation_experiment`: the same network and training with each hidden activation.
- `dropout_experiment`: a 64-256-256-10 MLP on the digits with a dropout rate swept
  from 0 to 0.9, train and test accuracy.
- `pruning_experiment`: a 64-128-64-10 MLP on the digits pruned by magnitude (with a
  short fine-tune) to growing sparsity: accuracy, file sizes and latency at batch 1.
- `augmentation_experiment`: a 64-128-64-10 MLP on the digits trained with each
  augmentation of `AUGMENTATIONS`, scored on the test images as they are and moved
  (shifted by up to a pixel and turned by up to 10 degrees). Shifts and small rotations
  keep a digit a digit and make the network robust to moved digits; flips and half-turns
  (a 6 becomes a 9) do not, and the network underfits (lower training accuracy).
"""
import os
import tempfile
import time

import numpy as np

from fastnn import _table, callbacks, initializers, optimizers
from fastnn import layers as L
from fastnn.datasets import load_digits, make_circles, train_test_split
from fastnn.model import Sequential
from fastnn.pruning import prune_magnitude, report, sparsity

__all__ = ["init_experiment", "activation_experiment", "dropout_experiment",
           "pruning_experiment", "augmentation_experiment", "AUGMENTATIONS", "digits_split", "digits_mlp", "EXPERIMENTS", "format_table",
           "plot", "require_matplotlib", "PlotUnavailableError"]

ACTIVATIONS = ("sigmoid", "tanh", "relu", "leaky_relu", "elu", "selu", "gelu", "swish",
               "softplus")
DROPOUT_RATES = tuple(i / 10 for i in range(10))
SPARSITIES = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
TARGET_ACCURACY = 0.95


# -- data and models shared with the command line -----------------------------------------
def digits_split():
    """The digits scaled to [0, 1] and split 75/25, stratified, always the same way.

    Returns
    -------
    X_train : ndarray of shape (1347, 64)
    X_test : ndarray of shape (450, 64)
    y_train, y_test : int64 ndarrays of shape (1347,) and (450,)
    """
    X, y = load_digits()
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=True)


def digits_mlp(hidden=(128, 64), dropout=0.0, lr=2e-3, seed=0):
    """A compiled ReLU MLP for the digits: 64 inputs, `hidden` units, 10 softmax outputs.

    With ``dropout > 0`` a Dropout layer of that rate follows every hidden layer. Adam,
    sparse categorical cross-entropy, accuracy.
    """
    stack = []
    for units in hidden:
        stack.append(L.Dense(units, activation="relu", kernel_initializer="he_normal"))
        if dropout > 0:
            stack.append(L.Dropout(dropout))
    stack.append(L.Dense(10, activation="softmax"))
    model = Sequential(stack, input_dim=64, seed=seed)
    model.compile(optimizers.Adam(lr=lr), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


# -- two circles: initialisation and activations ------------------------------------------
class _FirstReach(callbacks.Callback):
    """Records the first epoch (1-based) whose training accuracy reaches `target`."""

    def __init__(self, target):
        self.target = target
        self.epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if self.epoch is None and logs.get("accuracy", 0.0) >= self.target:
            self.epoch = epoch + 1


def _circles():
    return make_circles(n_samples=300, noise=0.05, factor=0.5, random_state=1)


def _circles_run(X, y, activation, initializer, iterations, seed):
    """Train the 2-10-5-3-1 network full batch with SGD (lr 0.01); a result row."""
    model = Sequential(
        [L.Dense(units, activation=activation, kernel_initializer=initializer)
         for units in (10, 5, 3)]
        + [L.Dense(1, activation="sigmoid", kernel_initializer=initializer)],
        input_dim=2, dtype="float64", seed=seed)
    model.compile(optimizers.SGD(lr=0.01), "binary_crossentropy", metrics=["accuracy"])
    initial = model.evaluate(X, y)["loss"]
    reach = _FirstReach(TARGET_ACCURACY)
    start = time.perf_counter()
    model.fit(X, y, epochs=iterations, batch_size=len(X), shuffle=False, verbose=0,
              callbacks=[reach])
    final = model.evaluate(X, y)
    return {"initial_loss": initial, "loss": final["loss"], "accuracy": final["accuracy"],
            "iterations_to_95": reach.epoch, "seconds": time.perf_counter() - start}


def init_experiment(iterations=3000, seed=0):
    """Zero, large normal and He initial weights on two circles.

    Parameters
    ----------
    iterations : int
        Full-batch SGD steps (learning rate 0.01).
    seed : int

    Returns
    -------
    list of dict
        One row per initialisation: ``init``, ``initial_loss``, ``loss``, ``accuracy``
        (on the 300 training points), ``iterations_to_95`` (first step at which the
        training accuracy reached 95%, None if never) and ``seconds``.
    """
    X, y = _circles()
    inits = (("zeros", "zeros"), ("normal(sd=10)", initializers.RandomNormal(0.0, 10.0)),
             ("he_normal", "he_normal"))
    return [dict(init=name, **_circles_run(X, y, "relu", init, iterations, seed))
            for name, init in inits]


def activation_experiment(iterations=3000, activations=ACTIVATIONS, seed=0):
    """The network of `init_experiment` (He initialisation) with each hidden activation.

    Returns
    -------
    list of dict
        One row per activation: ``activation``, ``initial_loss``, ``loss``, ``accuracy``,
        ``iterations_to_95`` and ``seconds``.
    """
    X, y = _circles()
    return [dict(activation=name, **_circles_run(X, y, name, "he_normal", iterations, seed))
            for name in activations]


# -- digits: dropout and pruning ----------------------------------------------------------
def dropout_experiment(rates=DROPOUT_RATES, epochs=30, seed=0):
    """Train a 64-256-256-10 MLP on the digits with each dropout rate.

    Returns
    -------
    list of dict
        One row per rate: ``rate``, ``train_accuracy``, ``test_accuracy``, ``test_loss``
        and ``seconds``.
    """
    X_train, X_test, y_train, y_test = digits_split()
    rows = []
    for rate in rates:
        model = digits_mlp(hidden=(256, 256), dropout=rate, lr=1e-3, seed=seed)
        start = time.perf_counter()
        model.fit(X_train, y_train, epochs=epochs, batch_size=32, verbose=0)
        test = model.evaluate(X_test, y_test)
        rows.append({"rate": rate, "train_accuracy": model.evaluate(X_train, y_train)["accuracy"],
                     "test_accuracy": test["accuracy"], "test_loss": test["loss"],
                     "seconds": time.perf_counter() - start})
    return rows


def _file_bytes(save):
    """Size of what ``save(path)`` writes."""
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "file.safetensors")
        save(path)
        return os.path.getsize(path)


def pruning_experiment(sparsities=SPARSITIES, epochs=30, fine_tune_epochs=2, seed=0):
    """Magnitude pruning of a 64-128-64-10 digits MLP to each sparsity.

    One model is trained for `epochs`; each sparsity starts from a copy of it, prunes the
    smallest weights over all kernels and fine-tunes for `fine_tune_epochs`.

    Returns
    -------
    list of dict
        One row per sparsity: ``sparsity`` (reached), ``accuracy`` (test),
        ``model_bytes`` (`Sequential.save`), ``engine_bytes`` (`InferenceEngine.save`)
        and ``latency_us`` (median engine latency for one sample).
    """
    from fastnn.deployment import deploy

    X_train, X_test, y_train, y_test = digits_split()
    base = digits_mlp(seed=seed)
    base.fit(X_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    rows = []
    for target in sparsities:
        model = base.copy()
        if target > 0:
            prune_magnitude(model, target)
            if fine_tune_epochs:
                model.fit(X_train, y_train, epochs=fine_tune_epochs, batch_size=32, verbose=0)
        summary = report(model, X_test, y_test, batches=(1,)).extra
        rows.append({"sparsity": sparsity(model), "accuracy": summary["accuracy"],
                     "model_bytes": _file_bytes(model.save),
                     "engine_bytes": _file_bytes(deploy(model).save),
                     "latency_us": summary["latency_us_batch_1"]})
    return rows


def _augmentations():
    from fastnn import augment as A

    shape = (8, 8)
    return {
        "none": None,
        "shift 1px + rotate 10deg": [A.RandomShift(shape, 1.0), A.RandomRotation(shape, 10.0)],
        "zoom 10%": A.RandomZoom(shape, 0.1),
        "flip both ways (irrelevant)": A.RandomFlip(shape, horizontal=True, vertical=True),
        "rotate 180deg (irrelevant)": A.RandomRotation(shape, 180.0),
        "noise 0.5 (irrelevant)": A.GaussianNoise(0.5),
    }


AUGMENTATIONS = tuple(_augmentations())
"""The settings of `augmentation_experiment`, the relevant ones first."""


def augmentation_experiment(augmentations=AUGMENTATIONS, epochs=30, seed=0):
    """Train a 64-128-64-10 MLP on the digits (8 x 8 images) with each augmentation.

    Returns
    -------
    list of dict
        One row per setting: ``augmentation``, ``train_accuracy`` (on the training images
        as they are), ``test_accuracy``, ``moved_test_accuracy`` (the test images shifted
        by up to one pixel and rotated by up to 10 degrees, the same draw for every
        setting) and ``seconds``.
    """
    from fastnn import augment as A

    X_train, X_test, y_train, y_test = digits_split()
    moved = A.Compose([A.RandomShift((8, 8), 1.0), A.RandomRotation((8, 8), 10.0)])(
        X_test, np.random.default_rng(12345))
    table = _augmentations()
    rows = []
    for name in augmentations:
        model = digits_mlp(seed=seed)
        start = time.perf_counter()
        model.fit(X_train, y_train, epochs=epochs, batch_size=32, verbose=0,
                  augment=table[name])
        rows.append({"augmentation": name,
                     "train_accuracy": model.evaluate(X_train, y_train)["accuracy"],
                     "test_accuracy": model.evaluate(X_test, y_test)["accuracy"],
                     "moved_test_accuracy": model.evaluate(moved, y_test)["accuracy"],
                     "seconds": time.perf_counter() - start})
    return rows


class Experiment:
    """An experiment function with its columns, quick arguments and what to plot."""

    def __init__(self, run, title, columns, quick, x, y):
        self.run, self.title, self.columns, self.quick = run, title, columns, quick
        self.x, self.y = x, y


EXPERIMENTS = {
    "init": Experiment(
        init_experiment, "Initialisation: 2-10-5-3-1 ReLU network on two circles, SGD",
        ("init", "initial_loss", "loss", "accuracy", "iterations_to_95", "seconds"),
        {"iterations": 1000}, "init", ("loss", "accuracy")),
    "activations": Experiment(
        activation_experiment, "Activations: 2-10-5-3-1 network (He init) on two circles, SGD",
        ("activation", "initial_loss", "loss", "accuracy", "iterations_to_95", "seconds"),
        {"iterations": 1000}, "activation", ("loss", "accuracy")),
    "dropout": Experiment(
        dropout_experiment, "Dropout: 64-256-256-10 MLP on the digits",
        ("rate", "train_accuracy", "test_accuracy", "test_loss", "seconds"),
        {"rates": (0.0, 0.3, 0.6, 0.9), "epochs": 2}, "rate",
        ("train_accuracy", "test_accuracy")),
    "pruning": Experiment(
        pruning_experiment, "Magnitude pruning: 64-128-64-10 MLP on the digits",
        ("sparsity", "accuracy", "model_bytes", "engine_bytes", "latency_us"),
        {"epochs": 5, "fine_tune_epochs": 1}, "sparsity",
        ("accuracy", "model_bytes", "latency_us")),
    "augmentation": Experiment(
        augmentation_experiment, "Augmentation: 64-128-64-10 MLP on the digits (8 x 8 images)",
        ("augmentation", "train_accuracy", "test_accuracy", "moved_test_accuracy", "seconds"),
        {"augmentations": ("none", "shift 1px + rotate 10deg", "rotate 180deg (irrelevant)"),
         "epochs": 5}, "augmentation",
        ("train_accuracy", "test_accuracy", "moved_test_accuracy")),
}


# -- output -------------------------------------------------------------------------------
# How a column's numbers are printed; other floats get four decimals.
FORMATS = {"initial_loss": "{:.4g}", "rate": "{:.1f}", "sparsity": "{:.3f}",
           "seconds": "{:.2f}", "latency_us": "{:.2f}"}


def _cell(value, column):
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return FORMATS.get(column, "{:.4f}").format(value)
    return str(value)


def format_table(rows, columns):
    """Rows as an aligned text table: text columns to the left, numbers to the right."""
    cells = [list(columns)] + [[_cell(row[c], c) for c in columns] for row in rows]
    align = "".join("l" if not rows or isinstance(rows[0][c], str) else "r" for c in columns)
    return _table.format_table(cells, align, rule=True)


class PlotUnavailableError(RuntimeError):
    """matplotlib, needed to draw plots, is not installed."""


def require_matplotlib():
    """Import matplotlib's Figure; PlotUnavailableError with the install hint when missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise PlotUnavailableError("plots need matplotlib: pip install 'fastnn[plot]'") from None
    return Figure


def plot(rows, experiment, path):
    """Draw `rows` of `experiment` (an `Experiment`) to an image file, one panel per value.

    A numeric x column gives lines with markers; a text one (init, activation) bars.
    """
    Figure = require_matplotlib()
    fig = Figure(figsize=(4.2 * len(experiment.y), 3.6), layout="constrained")
    axes = fig.subplots(1, len(experiment.y), squeeze=False)[0]
    xs = [row[experiment.x] for row in rows]
    for ax, column in zip(axes, experiment.y):
        ys = [np.nan if row[column] is None else row[column] for row in rows]
        if isinstance(xs[0], str):
            ax.bar(range(len(xs)), ys)
            ax.set_xticks(range(len(xs)), xs, rotation=45, ha="right")
        else:
            ax.plot(xs, ys, marker="o")
            ax.set_xlabel(experiment.x)
        ax.set_title(column)
        ax.grid(alpha=0.3)
    fig.suptitle(experiment.title, fontsize="medium")
    fig.savefig(path, dpi=120)
    return path
