"""``fastnn train``: train an MLP on a .npz or .csv file."""
import os

import numpy as np

from fastnn import activations, diagnostics, layers as L, optimizers
from fastnn.cli.args import fraction, int_list, positive_float, positive_int
from fastnn.cli.data import MAX_INFERRED_CLASSES, check_out, infer_task, read_data
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
                    "(header row; the --label column is the target). Features are "
                    "standardised by a Normalization layer adapted on the training split "
                    "(stored in the model, so predict takes raw data). Class labels may be "
                    "numbers or names; the model keeps them and predicts them. The column "
                    "names, categories and imputed means are stored in the model.")
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
    add_table_arguments(train)
    train.add_argument("--no-standardize", dest="standardize", action="store_false",
                       help="feed the features as they are (default: standardise them)")
    train.add_argument("--seed", type=int, default=0, help="default 0")
    train.add_argument("--out", required=True, help="model file to write")
    train.set_defaults(func=run)


def add_table_arguments(parser):
    """--drop-missing, --impute and --categorical: how a CSV table is read."""
    parser.add_argument("--drop-missing", action="store_true",
                        help="skip CSV rows with a missing value (empty, NA, NaN, ...)")
    parser.add_argument("--impute", choices=("mean",),
                        help="fill a missing number with its column's mean on the training "
                             "table (stored in the model)")
    parser.add_argument("--categorical", type=lambda text: [c.strip() for c in text.split(",")],
                        default=[], metavar="COL[,COL]",
                        help="CSV columns of categories, one-hot encoded (stored in the model)")


def missing_rule(args):
    if args.drop_missing and args.impute:
        raise UsageError("choose one of --drop-missing and --impute")
    return "drop" if args.drop_missing else ("mean" if args.impute else "error")


def run(args):
    if args.activation not in activations.NAMES:
        raise UsageError(f"unknown activation {args.activation!r}; valid names: "
                         f"{', '.join(activations.NAMES)}")
    check_out(args.out)
    X, y, table = read_data(args.data, args.label, missing=missing_rule(args),
                            categorical=args.categorical)
    print(f"data: {X.shape[0]} samples x {X.shape[1]} features from {args.data}")
    task = infer_task(y) if args.task == "auto" else args.task
    how = "inferred; set --task to override" if args.task == "auto" else "from --task"
    hidden = [L.Dense(units, activation=args.activation,
                      kernel_initializer=_INITIALIZER.get(args.activation, "glorot_uniform"))
              for units in args.layers]
    if task == "classification":
        if y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        if y.ndim != 1:
            raise UsageError(f"{args.data}: classification needs one label per sample; y has "
                             f"shape {y.shape}")
        classes = np.unique(y)
        if classes.size < 2:
            raise UsageError(f"{args.data}: y holds a single class ({classes[0]!r}); "
                             f"classification needs at least two")
        shown = ", ".join(str(c) for c in classes[:20]) + (", ..." if classes.size > 20 else "")
        print(f"task: classification, {classes.size} classes ({how}): {shown}")
        output = L.Dense(int(classes.size), activation="softmax")
        loss, metrics = "sparse_categorical_crossentropy", ["accuracy"]
    else:
        if y.dtype.kind not in "biuf":
            raise UsageError(f"{args.data}: regression needs numeric targets")
        y = np.asarray(y, dtype=np.float64)
        print(f"task: regression, {1 if y.ndim == 1 else y.shape[1]} output(s) ({how})")
        output = L.Dense(1 if y.ndim == 1 else y.shape[1])
        loss, metrics = "mse", ["mae", "rmse", "r2"]
    order = np.random.default_rng(args.seed).permutation(X.shape[0])
    X, y = X[order], y[order]
    n_val = int(round(X.shape[0] * args.validation_split))
    cut = X.shape[0] - n_val
    if args.standardize:
        norm = L.Normalization()
        try:
            norm.adapt(X[:cut])
        except ValueError as exc:  # NaN or inf in the features
            raise UsageError(f"{args.data}: {exc}") from None
        hidden.insert(0, norm)
        print(f"standardising the features (mean and variance of the {cut} training rows; "
              f"--no-standardize to turn off)")
    model = Sequential(hidden + [output], input_dim=X.shape[1], seed=args.seed)
    if task == "classification":
        model.classes = classes
    model.table = table
    model.compile(optimizers.Adam(lr=args.lr), loss, metrics=metrics)
    model.summary()
    try:
        model.fit(X, y, epochs=args.epochs, batch_size=args.batch_size,
                  validation_split=args.validation_split, verbose=1)
    except ValueError as exc:  # the data or the settings cannot be trained on
        raise UsageError(f"{args.data}: {exc}") from None
    print(f"final training metrics: {evaluate_line(model.evaluate(X[:cut], y[:cut]))}")
    if n_val:
        print(f"final validation metrics: {evaluate_line(model.evaluate(X[cut:], y[cut:]))}")
        print(f"diagnosis: {diagnostics.bias_variance(model, X[:cut], y[:cut], X[cut:], y[cut:])}")
    model.save(args.out)
    print(f"saved the model to {args.out} ({os.path.getsize(args.out)} bytes)")
    return 0
