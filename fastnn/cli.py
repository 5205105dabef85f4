"""The ``fastnn`` command: demo, train, prune, predict, bench, experiment and info.

Each subcommand is a function ``cmd_<name>(args)`` returning an exit status. `main`
parses the arguments and turns every error a user can cause (a missing or malformed
file, a model that does not fit the data, a bad value) into one line
``fastnn: error: ...`` on stderr and exit status 2.

Data files
----------
``.npz``
    Arrays ``X`` (samples, features) and, for training and pruning, ``y``.
``.csv``
    A header row naming the columns; the label column (``--label``, default ``label``)
    holds the targets and every other column is a feature. Numbers only.
``.npy``
    Features only (for ``predict``).

Class labels
------------
``fastnn train`` numbers the distinct class values in increasing order, 0 to k-1, and
the model predicts these indices; the model file does not keep the original values (the
command prints the correspondence when it is not the identity). Labels given to
``fastnn prune`` must be these indices.
"""
import argparse
import os
import sys
import time
import zipfile

import numpy as np

import fastnn
from fastnn import activations, layers as L, optimizers
from fastnn.datasets import train_test_split
from fastnn.errors import ModelFormatError
from fastnn.model import Sequential
from fastnn.saving import load_model
from fastnn.pruning import prune_magnitude, prune_neurons, prune_until, report, sparsity

__all__ = ["main", "build_parser", "read_data", "infer_task"]

MAX_INFERRED_CLASSES = 20
"""``--task auto`` takes integer targets with at most this many distinct values as classes."""

DEMO_EPOCHS = 30
DEMO_MAX_DROP = 0.01
DEMO_STEP = 0.2
DEMO_FINE_TUNE_EPOCHS = 3

# Initial weights suited to each hidden activation (He for the ReLU family, LeCun for
# SELU, Glorot otherwise).
_INITIALIZER = {"relu": "he_normal", "leaky_relu": "he_normal", "elu": "he_normal",
                "gelu": "he_normal", "gelu_tanh": "he_normal", "swish": "he_normal",
                "silu": "he_normal", "selu": "lecun_normal"}


class UsageError(Exception):
    """A problem with the user's input, reported as one line."""


# -- argument types -----------------------------------------------------------------------
def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _non_negative_int(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return value


def _int_list(allow_empty):
    def parse(text):
        parts = [p.strip() for p in text.split(",")]
        if parts == [""] and allow_empty:
            return []
        try:
            return [_positive_int(p) for p in parts]
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated positive integers, got {text!r}") from None
    return parse


def _fraction(low_open=False, high_open=True):
    """A float in [0, 1), or (0, 1), [0, 1], (0, 1], from the command line."""
    interval = f"{'(' if low_open else '['}0, 1{')' if high_open else ']'}"

    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        above = value > 0 if low_open else value >= 0
        below = value < 1 if high_open else value <= 1
        if not (above and below):
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {text}")
        return value
    return parse


def _positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (value > 0 and np.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


# -- data ---------------------------------------------------------------------------------
def read_data(path, label="label", need_y=True):
    """Features and targets from a .npz, .csv or .npy file.

    Parameters
    ----------
    path : str
    label : str
        The target column of a CSV file.
    need_y : bool
        Require targets. Without it, a CSV label column is dropped when present and the
        targets returned are None.

    Returns
    -------
    X : ndarray of shape (n, features)
    y : ndarray of shape (n,) or (n, outputs), or None
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv", ".npy"):
        raise UsageError(f"{path}: unsupported data format {ext or '(no extension)'!r}; use "
                         f".npz (arrays X and y), .csv (a header row and a label column) or "
                         f".npy (features only)")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    if ext == ".npz":
        X, y = _read_npz(path, need_y)
    elif ext == ".csv":
        X, y = _read_csv(path, label, need_y)
    else:
        if need_y:
            raise UsageError(f"{path}: a .npy file holds no targets; use .npz (X and y) or "
                             f".csv (with a label column)")
        X, y = _read_npy(path), None
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise UsageError(f"{path}: X has dtype {X.dtype}; expected numbers")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise UsageError(f"{path}: X must be a non-empty 2-D array (samples, features), got "
                         f"shape {X.shape}")
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise UsageError(f"{path}: y has dtype {y.dtype}; expected numbers")
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise UsageError(f"{path}: X has {X.shape[0]} samples but y has shape {y.shape}")
    return X, y


def _read_npz(path, need_y):
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UsageError(f"{path}: a single .npy array, not an .npz archive of X and y")
    with archive:
        names = list(archive.files)
        wanted = ("X", "y") if need_y else ("X",)
        for name in wanted:
            if name not in names:
                raise UsageError(f"{path}: no array {name!r} (arrays in the file: "
                                 f"{', '.join(names) or 'none'})")
        try:
            return archive["X"], (archive["y"] if need_y else None)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise UsageError(f"{path}: cannot read its arrays ({exc})") from None


def _read_npy(path):
    try:
        X = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(X, np.ndarray):
        raise UsageError(f"{path}: an .npz archive, not a single .npy array")
    return X


def _read_csv(path, label, need_y):
    import warnings

    with open(path, newline="", encoding="utf-8") as f:
        header = f.readline()
    names = [name.strip().strip("\"'") for name in header.strip().split(",")]
    if names == [""]:
        raise UsageError(f"{path}: empty file; expected a header row naming the columns")
    if all(_is_number(name) for name in names):
        raise UsageError(f"{path}: the first row holds numbers; expected a header row "
                         f"naming the columns")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64,
                               encoding="utf-8")
    except ValueError as exc:
        raise UsageError(f"{path}: not a numeric table ({exc})") from None
    if table.shape[0] == 0:
        raise UsageError(f"{path}: no data rows below the header")
    if table.shape[1] != len(names):
        raise UsageError(f"{path}: the header names {len(names)} columns but the rows have "
                         f"{table.shape[1]}")
    if label in names:
        k = names.index(label)
        return np.delete(table, k, axis=1), (table[:, k] if need_y else None)
    if need_y:
        raise UsageError(f"{path}: no column {label!r} (columns: {', '.join(names)}); name "
                         f"the target column with --label")
    return table, None


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def infer_task(y):
    """"classification" for integer-valued targets with few distinct values, else
    "regression"."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        return "regression"
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            return "regression"
    distinct = np.unique(y).size
    few = distinct <= MAX_INFERRED_CLASSES and 2 * distinct <= y.size
    return "classification" if few else "regression"


def _class_indices(y, path):
    """(classes, indices): the sorted distinct labels and each sample's index among them."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UsageError(f"{path}: classification needs one label per sample; y has shape "
                         f"{y.shape}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise UsageError(f"{path}: y contains NaN or infinite values")
    classes, index = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise UsageError(f"{path}: y holds a single class ({classes[0]!r}); classification "
                         f"needs at least two")
    return classes, index.astype(np.int64)


def _label_text(value):
    value = value.item() if hasattr(value, "item") else value
    return str(int(value)) if float(value).is_integer() else repr(value)


def _check_out(path, extensions=None):
    """UsageError unless `path` can be written: its folder exists (and its extension fits)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder; expected a file name")
    ext = os.path.splitext(path)[1].lower()
    if extensions is not None and ext not in extensions:
        raise UsageError(f"{path}: unsupported output format {ext or '(no extension)'!r}; "
                         f"use {' or '.join(extensions)}")


# -- models and engines -------------------------------------------------------------------
def _load_model(path):
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    try:
        return load_model(path)
    except ModelFormatError as exc:
        raise UsageError(f"{path}: not a valid fastnn model file ({exc})") from None


def _load_model_or_engine(path):
    """(model, None) for a model file, (None, engine) for an engine file."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    try:
        return load_model(path), None
    except ModelFormatError as as_model:
        from fastnn.engine import load_engine

        try:
            return None, load_engine(path)
        except ModelFormatError as as_engine:
            # Name the problem of the kind of file it claims to be.
            cause = as_engine if "fastnn-engine" in str(as_model) else as_model
            raise UsageError(f"{path}: not a valid fastnn model or engine file ({cause})") \
                from None


def _output_activation(model, engine):
    if model is not None:
        return getattr(getattr(model.layers[-1], "activation", None), "kernel", "linear")
    return engine.layout()[-1]["activation"]


def _accuracy_metric(model):
    """The compiled accuracy metric's name, else "loss"."""
    names = [name for name, _ in model.metrics]
    return next((n for n in names if n in ("accuracy", "acc")), "loss")


def _evaluate_line(result):
    return "  ".join(f"{k} {v:.4f}" for k, v in result.items())


# -- commands -----------------------------------------------------------------------------
def cmd_info(args):
    fastnn.show_config()
    return 0


def cmd_train(args):
    if args.activation not in activations.NAMES:
        raise UsageError(f"unknown activation {args.activation!r}; valid names: "
                         f"{', '.join(activations.NAMES)}")
    _check_out(args.out)
    X, y = read_data(args.data, args.label)
    print(f"data: {X.shape[0]} samples x {X.shape[1]} features from {args.data}")
    task = infer_task(y) if args.task == "auto" else args.task
    how = "inferred; set --task to override" if args.task == "auto" else "from --task"
    hidden = [L.Dense(units, activation=args.activation,
                      kernel_initializer=_INITIALIZER.get(args.activation, "glorot_uniform"))
              for units in args.layers]
    if task == "classification":
        classes, y = _class_indices(y, args.data)
        print(f"task: classification, {classes.size} classes ({how})")
        if not np.array_equal(classes, np.arange(classes.size)):
            shown = ", ".join(f"{i} = {_label_text(c)}" for i, c in enumerate(classes[:20]))
            more = ", ..." if classes.size > 20 else ""
            print(f"class indices: {shown}{more}\n  the model predicts the indices 0.."
                  f"{classes.size - 1}; the original values are not stored in the model")
        output = L.Dense(int(classes.size), activation="softmax")
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        y = np.asarray(y, dtype=np.float64)
        print(f"task: regression, {1 if y.ndim == 1 else y.shape[1]} output(s) ({how})")
        output = L.Dense(1 if y.ndim == 1 else y.shape[1])
        loss, metrics = "mse", ["mae"]
    model = Sequential(hidden + [output], input_dim=X.shape[1], seed=args.seed)
    model.compile(optimizers.Adam(lr=args.lr), loss, metrics=metrics)
    model.summary()
    order = np.random.default_rng(args.seed).permutation(X.shape[0])
    X, y = X[order], y[order]
    model.fit(X, y, epochs=args.epochs, batch_size=args.batch_size,
              validation_split=args.validation_split, verbose=1)
    n_val = int(round(X.shape[0] * args.validation_split))
    cut = X.shape[0] - n_val
    print(f"final training metrics: {_evaluate_line(model.evaluate(X[:cut], y[:cut]))}")
    if n_val:
        print(f"final validation metrics: {_evaluate_line(model.evaluate(X[cut:], y[cut:]))}")
    model.save(args.out)
    print(f"saved the model to {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0


def cmd_prune(args):
    if args.sparsity is None and args.max_drop is None and args.neurons is None:
        raise UsageError("prune needs --sparsity, --max-drop or --neurons")
    _check_out(args.out)
    model = _load_model(args.model)
    if model.loss is None:
        raise UsageError(f"{args.model}: the model has no training configuration (loss), "
                         f"which fine-tuning needs")
    X, y = read_data(args.data, args.label)
    X_train, X_val, y_train, y_val = train_test_split(
        X, y, test_size=args.validation_split, random_state=args.seed)
    print(f"data: {len(X_train)} samples to fine-tune on, {len(X_val)} to score "
          f"(--validation-split {args.validation_split})")
    metric = _accuracy_metric(model)
    try:
        before = model.evaluate(X_val, y_val)
    except ValueError as exc:
        hint = ("; class labels must be the indices 0..k-1 the model predicts"
                if "labels must lie" in str(exc) else "")
        raise UsageError(f"{args.data} does not fit {args.model}: {exc}{hint}") from None
    print(f"before: sparsity {sparsity(model):.3f}, {model.count_params()} parameters, "
          f"{_evaluate_line(before)}")

    def fine_tune(m):
        if args.epochs:
            m.fit(X_train, y_train, epochs=args.epochs, batch_size=args.batch_size, verbose=0)

    def drop(result):
        if metric == "loss":
            return result["loss"] - before["loss"]
        return before[metric] - result[metric]

    if args.neurons:
        needs_data = args.criterion != "l2"
        model = prune_neurons(model, args.neurons, criterion=args.criterion,
                              X=X_train if needs_data else None)
        fine_tune(model)
        print(f"removed {args.neurons:.0%} of the hidden units ({args.criterion}): "
              f"{model.count_params()} parameters, "
              f"{_evaluate_line(model.evaluate(X_val, y_val))}")
    if args.sparsity is not None:
        prune_magnitude(model, args.sparsity)
        fine_tune(model)
    elif args.max_drop is not None:
        budget = args.max_drop - drop(model.evaluate(X_val, y_val))
        if budget < 0:
            print(f"no budget left for weight pruning: the {metric} already fell by more "
                  f"than {args.max_drop}")
        else:
            print(f"pruning by magnitude in steps of {args.step:.0%} while the {metric} "
                  f"stays within {args.max_drop} of the start:")
            model, _ = prune_until(model, X_val, y_val, max_metric_drop=budget, metric=metric,
                                   step=args.step, X_train=X_train, y_train=y_train,
                                   fine_tune_epochs=args.epochs, batch_size=args.batch_size,
                                   verbose=1)
    after = model.evaluate(X_val, y_val)
    print(f"after: sparsity {sparsity(model):.3f}, {model.count_params()} parameters, "
          f"{_evaluate_line(after)}")
    print(report(model, X_val, y_val))
    model.save(args.out)
    print(f"saved the pruned model to {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0


def cmd_predict(args):
    _check_out(args.out, (".npy", ".csv"))
    ext = os.path.splitext(args.out)[1].lower()
    model, engine = _load_model_or_engine(args.model)
    X, _ = read_data(args.data, args.label, need_y=False)
    try:
        Y = model.predict(X) if model is not None else engine.predict(X)
    except ValueError as exc:
        raise UsageError(f"{args.data} does not fit {args.model}: {exc}") from None
    act = _output_activation(model, engine)
    if args.labels:
        if act == "softmax":
            Y = np.argmax(Y, axis=1).astype(np.int64)
        elif act == "sigmoid":
            Y = (Y > 0.5).astype(np.int64)
            Y = Y[:, 0] if Y.shape[1] == 1 else Y
        else:
            raise UsageError(f"{args.model}: --labels needs a classifier (softmax or sigmoid "
                             f"output); this model's output activation is {act}")
    if ext == ".npy":
        np.save(args.out, Y)
    else:
        if args.labels:
            names = ["label"] if Y.ndim == 1 else [f"label_{i}" for i in range(Y.shape[1])]
            fmt = "%d"
        else:
            prefix = "class" if act == "softmax" else "output"
            names = [f"{prefix}_{i}" for i in range(Y.shape[1])]
            fmt = "%.9g" if Y.dtype == np.float32 else "%.17g"
        np.savetxt(args.out, Y, fmt=fmt, delimiter=",", header=",".join(names), comments="")
    what = "labels" if args.labels else f"{Y.shape[1]} outputs"
    print(f"wrote {what} for {Y.shape[0]} samples to {args.out}")
    return 0


def _latencies(engine, X, repeat):
    """Seconds per call of ``engine.predict(X)``, after a short warm-up."""
    out = engine.predict(X)
    for _ in range(3):
        engine.predict(X, out=out)
    times = np.empty(repeat)
    for i in range(repeat):
        start = time.perf_counter()
        engine.predict(X, out=out)
        times[i] = time.perf_counter() - start
    return times


def cmd_bench(args):
    from fastnn.deployment import deploy

    model, engine = _load_model_or_engine(args.model)
    source = "engine file"
    if model is not None:
        engine, source = deploy(model), "model, deployed"
    print(f"{engine!r} ({source})")
    for i, entry in enumerate(engine.layout()):
        storage = entry.get("storage", entry["kind"])
        density = f", density {entry['density']:.3f}" if "density" in entry else ""
        print(f"  layer {i}: {entry['shape'][0]} -> {entry['shape'][1]} "
              f"{entry['activation']}, {storage}{density}")
    rng = np.random.default_rng(0)
    if args.threads is not None:
        fastnn.set_num_threads(args.threads)
    try:
        print(f"threads: {fastnn.get_num_threads()}, {args.repeat} calls per batch size")
        rows = [("batch", "p50 (us)", "p99 (us)", "samples/s")]
        for batch in args.batch:
            X = rng.standard_normal((batch, engine.n_in)).astype(engine.dtype)
            times = _latencies(engine, X, args.repeat)
            p50, p99 = np.percentile(times, [50, 99]) * 1e6
            rows.append((str(batch), f"{p50:.1f}", f"{p99:.1f}",
                         f"{batch * args.repeat / times.sum():,.0f}"))
    finally:
        if args.threads is not None:
            fastnn.set_num_threads(None)
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.rjust(w) for c, w in zip(r, widths)))
    return 0


def cmd_experiment(args):
    from fastnn import experiments

    experiment = experiments.EXPERIMENTS[args.name]
    if args.plot:
        experiments.require_matplotlib()  # fail before the experiment, not after
    print(experiment.title + (" (quick)" if args.quick else ""))
    start = time.perf_counter()
    rows = experiment.run(**(experiment.quick if args.quick else {}))
    print(experiments.format_table(rows, experiment.columns))
    print(f"{time.perf_counter() - start:.1f} s")
    if args.plot:
        experiments.plot(rows, experiment, args.plot)
        print(f"plot written to {args.plot}")
    return 0


def _comparison(dense, pruned, dense_bytes, pruned_bytes):
    """Dense beside pruned: size, nonzeros, FLOPs, accuracy and latency."""
    d, p = dense.to_dict(), pruned.to_dict()

    def ratio(a, b):
        return f"{a / b:.2f}x" if b else "-"

    rows = [("", "dense", "pruned", "dense/pruned")]
    rows.append(("sparsity", f"{d['total']['sparsity']:.1%}", f"{p['total']['sparsity']:.1%}",
                 ""))
    for key, name in (("nonzeros", "nonzero parameters"),
                      ("bytes_deployed", "size as deployed (bytes)"),
                      ("flops_effective", "FLOPs per sample")):
        a, b = d["total"][key], p["total"][key]
        rows.append((name, f"{a:,}", f"{b:,}", ratio(a, b)))
    rows.append(("model file (bytes)", f"{dense_bytes:,}", f"{pruned_bytes:,}",
                 ratio(dense_bytes, pruned_bytes)))
    rows.append(("test accuracy", f"{d['accuracy']:.2%}", f"{p['accuracy']:.2%}",
                 f"{(p['accuracy'] - d['accuracy']) * 100:+.2f} pt"))
    for key in d:
        if key.startswith("latency_us_batch_"):
            batch = key.rsplit("_", 1)[1]
            rows.append((f"latency, batch {batch} (us)", f"{d[key]:.1f}", f"{p[key]:.1f}",
                         ratio(d[key], p[key])))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join([r[0].ljust(widths[0])]
                               + [c.rjust(w) for c, w in zip(r[1:], widths[1:])])
                     for r in rows)


def cmd_demo(args):
    from fastnn import experiments
    from fastnn.deployment import deploy
    from fastnn.engine import load_engine

    start = time.perf_counter()
    os.makedirs(args.out, exist_ok=True)
    X_train, X_test, y_train, y_test = experiments.digits_split()
    X_fit, X_val, y_fit, y_val = train_test_split(X_train, y_train, test_size=0.25,
                                                  random_state=1, stratify=True)
    print(f"digits: 8x8 images of 0-9, {len(X_fit)} to train, {len(X_val)} to validate the "
          f"pruning, {len(X_test)} to test")

    print("\n[1/5] train")
    model = experiments.digits_mlp(seed=args.seed)
    model.summary()
    model.fit(X_fit, y_fit, epochs=DEMO_EPOCHS, batch_size=32, verbose=1)
    print(f"test accuracy: {model.evaluate(X_test, y_test)['accuracy']:.2%}")

    print(f"\n[2/5] prune by magnitude, {DEMO_STEP:.0%} of the remaining weights per step, "
          f"{DEMO_FINE_TUNE_EPOCHS} epochs of fine-tuning each, while the validation "
          f"accuracy stays within {DEMO_MAX_DROP * 100:g} point of the dense model's")
    pruned, _ = prune_until(model, X_val, y_val, max_metric_drop=DEMO_MAX_DROP, step=DEMO_STEP,
                            X_train=X_fit, y_train=y_fit,
                            fine_tune_epochs=DEMO_FINE_TUNE_EPOCHS, verbose=1)
    print(f"kept sparsity {sparsity(pruned):.1%}")

    print("\n[3/5] deploy and compare")
    engine = deploy(pruned)
    print("the pruned model, layer by layer:")
    print(report(pruned))
    paths = {name: os.path.join(args.out, name) for name in
             ("dense-model.safetensors", "model.safetensors", "engine.safetensors")}
    model.save(paths["dense-model.safetensors"])
    pruned.save(paths["model.safetensors"])
    engine.save(paths["engine.safetensors"])
    sizes = {name: os.path.getsize(path) for name, path in paths.items()}
    print("\ndense beside pruned, on the test images:")
    print(_comparison(report(model, X_test, y_test), report(pruned, X_test, y_test),
                      sizes["dense-model.safetensors"], sizes["model.safetensors"]))

    print(f"\n[4/5] saved to {args.out}")
    for name, path in paths.items():
        print(f"  {path}  {sizes[name]:,} bytes")

    print("\n[5/5] reload the engine and check its predictions")
    loaded = load_engine(paths["engine.safetensors"])
    from_file, in_memory = loaded.predict(X_test), engine.predict(X_test)
    from_model = pruned.predict(X_test)
    exact = np.array_equal(from_file, in_memory)
    agree = float(np.mean(np.argmax(in_memory, axis=1) == np.argmax(from_model, axis=1)))
    close = np.allclose(in_memory, from_model, rtol=1e-4, atol=1e-6)
    gap = float(np.max(np.abs(in_memory.astype(np.float64) - from_model)))
    print(f"  engine file vs engine in memory: {'identical' if exact else 'DIFFERENT'}")
    print(f"  engine vs model: argmax agreement {agree:.2%}, largest difference {gap:.2g}, "
          f"allclose(rtol=1e-4, atol=1e-6) {'yes' if close else 'NO'}")
    ok = exact and agree == 1.0 and close
    print(f"  {'predictions match' if ok else 'FAILED: predictions differ'}")
    print(f"\ndone in {time.perf_counter() - start:.1f} s")
    return 0 if ok else 1


# -- parser -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line: ``fastnn: error: ...``."""

    def error(self, message):
        command = self.prog.split(" ", 1)
        where = f"{command[1]}: " if len(command) > 1 else ""
        self.exit(2, f"fastnn: error: {where}{message} (see '{self.prog} --help')\n")


def build_parser():
    parser = _Parser(prog="fastnn", description="Train, prune, deploy and benchmark dense "
                     "neural networks on the CPU.")
    parser.add_argument("--version", action="version", version=f"fastnn {fastnn.__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    demo = commands.add_parser(
        "demo", help="train, prune, deploy and check an MLP on the bundled digits",
        description="Train an MLP on the bundled digits, prune it within a 1-point accuracy "
                    "budget, deploy it, print the compression report, save the model and "
                    "engine, and check that the saved engine predicts as the model does.")
    demo.add_argument("--out", default="fastnn-demo",
                      help="folder for the saved files (default: ./fastnn-demo)")
    demo.add_argument("--seed", type=int, default=0, help="seed of the weights (default 0)")
    demo.set_defaults(func=cmd_demo)

    train = commands.add_parser(
        "train", help="train an MLP on a .npz or .csv file",
        description="Train an MLP on X and y from a .npz file (arrays X, y) or a .csv file "
                    "(header row; the --label column is the target). Class labels are "
                    "numbered 0..k-1 in increasing order of their values, and the model "
                    "predicts those indices.")
    train.add_argument("--data", required=True, help=".npz or .csv file")
    train.add_argument("--layers", type=_int_list(allow_empty=True), default=[256, 128],
                       help="hidden layer widths, comma-separated (default 256,128)")
    train.add_argument("--activation", default="relu",
                       help="hidden activation (default relu): "
                            + ", ".join(n for n in activations.NAMES if n != "softmax"))
    train.add_argument("--epochs", type=_positive_int, default=20, help="default 20")
    train.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    train.add_argument("--lr", type=_positive_float, default=1e-3,
                       help="Adam learning rate (default 1e-3)")
    train.add_argument("--task", choices=("auto", "classification", "regression"),
                       default="auto", help="default auto: classification for integer "
                       f"targets with at most {MAX_INFERRED_CLASSES} distinct values")
    train.add_argument("--label", default="label", help="target column of a CSV (default label)")
    train.add_argument("--validation-split", type=_fraction(), default=0.1,
                       help="fraction held out to report validation metrics (default 0.1)")
    train.add_argument("--seed", type=int, default=0, help="default 0")
    train.add_argument("--out", required=True, help="model file to write")
    train.set_defaults(func=cmd_train)

    prune = commands.add_parser(
        "prune", help="prune a model by magnitude and/or hidden units, with fine-tuning",
        description="Prune a model: --sparsity zeroes that fraction of the weights (smallest "
                    "magnitudes first) and fine-tunes; --max-drop prunes step by step while "
                    "the validation accuracy (or loss) stays within the budget; --neurons "
                    "first removes that fraction of every hidden layer's units. Classification "
                    "labels must be the indices 0..k-1 the model predicts.")
    prune.add_argument("model", help="model file")
    prune.add_argument("--data", required=True, help=".npz or .csv file with X and y")
    how = prune.add_mutually_exclusive_group()
    how.add_argument("--sparsity", type=_fraction(),
                     help="fraction of weights to zero, in [0, 1)")
    how.add_argument("--max-drop", type=_fraction(high_open=False),
                     help="largest allowed fall of the validation accuracy (rise of the loss "
                          "for regression)")
    prune.add_argument("--neurons", type=_fraction(),
                       help="fraction of each hidden layer's units to remove")
    prune.add_argument("--criterion", choices=("l2", "activation", "redundancy"), default="l2",
                       help="which units --neurons removes (default l2)")
    prune.add_argument("--step", type=_fraction(low_open=True), default=0.2,
                       help="with --max-drop: fraction of the remaining weights pruned per "
                            "step (default 0.2)")
    prune.add_argument("--epochs", type=_non_negative_int, default=2,
                       help="fine-tuning epochs after each pruning (default 2)")
    prune.add_argument("--batch-size", type=_positive_int, default=32, help="default 32")
    prune.add_argument("--label", default="label", help="target column of a CSV (default label)")
    prune.add_argument("--validation-split", type=_fraction(low_open=True), default=0.2,
                       help="fraction held out to score the pruning (default 0.2)")
    prune.add_argument("--seed", type=int, default=0, help="seed of the split (default 0)")
    prune.add_argument("--out", required=True, help="model file to write")
    prune.set_defaults(func=cmd_prune)

    predict = commands.add_parser(
        "predict", help="write a model's outputs for X",
        description="Write the outputs of a model (or engine) file for the features of a "
                    ".npz (X), .csv (a label column, if present, is ignored) or .npy file.")
    predict.add_argument("model", help="model or engine file")
    predict.add_argument("--data", required=True, help=".npz, .csv or .npy file")
    predict.add_argument("--out", required=True, help=".npy or .csv file to write")
    predict.add_argument("--labels", action="store_true",
                         help="write class labels (argmax, or p > 0.5 for sigmoid outputs) "
                              "instead of the outputs")
    predict.add_argument("--label", default="label",
                         help="CSV column to ignore as the target (default label)")
    predict.set_defaults(func=cmd_predict)

    bench = commands.add_parser(
        "bench", help="latency and throughput of the deployed model",
        description="Deploy a model (or load an engine file) and time predict on random "
                    "inputs: median and 99th-percentile latency and throughput per batch "
                    "size.")
    bench.add_argument("model", help="model or engine file")
    bench.add_argument("--batch", type=_int_list(allow_empty=False), default=[1, 32, 256],
                       help="batch sizes, comma-separated (default 1,32,256)")
    bench.add_argument("--threads", type=_positive_int,
                       help="kernel threads (default: fastnn's setting; BLAS keeps its own)")
    bench.add_argument("--repeat", type=_positive_int, default=100,
                       help="timed calls per batch size (default 100)")
    bench.set_defaults(func=cmd_bench)

    experiment = commands.add_parser(
        "experiment", help="initialisation, activation, dropout and pruning experiments",
        description="Run one of the bundled experiments and print its table.")
    experiment.add_argument("name", choices=("init", "activations", "dropout", "pruning"))
    experiment.add_argument("--plot", metavar="FILE.png",
                            help="also draw the table (needs matplotlib: fastnn[plot])")
    experiment.add_argument("--quick", action="store_true",
                            help="fewer iterations and settings, for a fast look")
    experiment.set_defaults(func=cmd_experiment)

    info = commands.add_parser("info", help="versions, OpenMP, threads and BLAS")
    info.set_defaults(func=cmd_info)
    return parser


# -- entry point --------------------------------------------------------------------------
def _describe(exc):
    if isinstance(exc, OSError) and exc.filename is not None:
        text = f"{exc.filename}: {exc.strerror or exc}"
    elif isinstance(exc, KeyError):
        text = f"missing {exc.args[0]!r}" if exc.args else "missing key"
    elif isinstance(exc, FloatingPointError):
        text = f"training diverged: {exc} (try a smaller --lr)"
    else:
        text = str(exc) or type(exc).__name__
    return " ".join(text.split())


_USER_ERRORS = (UsageError, OSError, ValueError, TypeError, KeyError, FloatingPointError)


def main(argv=None):
    """Run the command line `argv` (default ``sys.argv[1:]``); returns the exit status."""
    from fastnn.experiments import PlotUnavailableError

    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except SystemExit as exc:  # argparse: --help, --version and usage errors
        return exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2
    except KeyboardInterrupt:
        print("fastnn: interrupted", file=sys.stderr)
        return 130
    except _USER_ERRORS + (PlotUnavailableError,) as exc:
        sys.stdout.flush()
        print(f"fastnn: error: {_describe(exc)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
