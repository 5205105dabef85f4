"""``fastnn train``: train an MLP on a .npz or .csv file."""
import os

import numpy as np

from fastnn import activations, layers as L, optimizers
from fastnn.cli.args import fraction, int_list, positive_float, positive_int
from fastnn.cli.data import (MAX_INFERRED_CLASSES, check_out, class_indices, infer_task,
                             label_text, read_data)
from fastnn.cli.errors import UsageError
from fastnn.cli.models import evaluate_line
from fastnn.model import Sequential

# Initial weights suited to each hidden activation (He for the ReLU family, LeCun for
# SELU, Glorot otherwise).
_INITIALIZER = {"relu": "he_normal", "leaky_relu": "he_normal", "elu": "he_normal",
                "gelu": "he_normal", "gelu_tanh": "he_normal", "swish": "he_normal",
                "silu": "he_normal", "selu": "lecun_normal"}


def add_parser(commands):
    """Add the ``train`` subcommand to `commands`."""
    train = commands.add_parser(
        "train", help="train an MLP on a .npz or .csv file",
        description="Train an MLP on X and y from a .npz file (arrays X, y) or a .csv file "
                    "(header row; the --label column is the target). Class labels are "
                    "numbered 0..k-1 in increasing order of their values, and the model "
                    "predicts those indices.")
    train.add_argument("--data", required=True, help=".npz or .csv file")
    train.add_argument("--layers", type=int_list(allow_empty=True), default=[256, 128],
                       help="hidden layer widths, comma-separated (default 256,128)")
    train.add_argument("--activation", default="relu",
                       help="hidden activation (default relu): "
                            + ", ".join(n for n in activations.NAMES if n != "softmax"))
    train.add_argument("--epochs", type=positive_int, default=20, help="default 20")
    train.add_argument("--batch-size", type=positive_int, default=32, help="default 32")
    train.add_argument("--lr", type=positive_float, default=1e-3,
                       help="Adam learning rate (default 1e-3)")
    train.add_argument("--task", choices=("auto", "classification", "regression"),
                       default="auto", help="default auto: classification for integer "
                       f"targets with at most {MAX_INFERRED_CLASSES} distinct values")
    train.add_argument("--label", default="label", help="target column of a CSV (default label)")
    train.add_argument("--validation-split", type=fraction(), default=0.1,
                       help="fraction held out to report validation metrics (default 0.1)")
    train.add_argument("--seed", type=int, default=0, help="default 0")
    train.add_argument("--out", required=True, help="model file to write")
    train.set_defaults(func=run)


def run(args):
    if args.activation not in activations.NAMES:
        raise UsageError(f"unknown activation {args.activation!r}; valid names: "
                         f"{', '.join(activations.NAMES)}")
    check_out(args.out)
    X, y = read_data(args.data, args.label)
    print(f"data: {X.shape[0]} samples x {X.shape[1]} features from {args.data}")
    task = infer_task(y) if args.task == "auto" else args.task
    how = "inferred; set --task to override" if args.task == "auto" else "from --task"
    hidden = [L.Dense(units, activation=args.activation,
                      kernel_initializer=_INITIALIZER.get(args.activation, "glorot_uniform"))
              for units in args.layers]
    if task == "classification":
        classes, y = class_indices(y, args.data)
        print(f"task: classification, {classes.size} classes ({how})")
        if not np.array_equal(classes, np.arange(classes.size)):
            shown = ", ".join(f"{i} = {label_text(c)}" for i, c in enumerate(classes[:20]))
            more = ", ..." if classes.size > 20 else ""
            print(f"class indices: {shown}{more}\n  the model predicts the indices 0.."
                  f"{classes.size - 1}; the original values are not stored in the model")
        output = L.Dense(int(classes.size), activation="softmax")
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        y = np.asarray(y, dtype=np.float64)
        print(f"task: regression, {1 if y.ndim == 1 else y.shape[1]} output(s) ({how})")
        output = L.Dense(1 if y.ndim == 1 else y.shape[1])
        loss, metrics = "mse", ["mae", "rmse", "r2"]
    model = Sequential(hidden + [output], input_dim=X.shape[1], seed=args.seed)
    model.compile(optimizers.Adam(lr=args.lr), loss, metrics=metrics)
    model.summary()
    order = np.random.default_rng(args.seed).permutation(X.shape[0])
    X, y = X[order], y[order]
    try:
        model.fit(X, y, epochs=args.epochs, batch_size=args.batch_size,
                  validation_split=args.validation_split, verbose=1)
    except ValueError as exc:  # the data or the settings cannot be trained on
        raise UsageError(f"{args.data}: {exc}") from None
    n_val = int(round(X.shape[0] * args.validation_split))
    cut = X.shape[0] - n_val
    print(f"final training metrics: {evaluate_line(model.evaluate(X[:cut], y[:cut]))}")
    if n_val:
        print(f"final validation metrics: {evaluate_line(model.evaluate(X[cut:], y[cut:]))}")
    model.save(args.out)
    print(f"saved the model to {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0
