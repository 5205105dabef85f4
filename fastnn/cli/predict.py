"""``fastnn predict``: write a model's (or engine's) outputs for X."""
import os

import numpy as np

from fastnn import labels
from fastnn.cli.data import check_out, read_data
from fastnn.cli.errors import UsageError
from fastnn.cli.models import load_model_or_engine, output_activation


def add_parser(commands):
    """Add the ``predict`` subcommand to `commands`."""
    predict = commands.add_parser(
        "predict", help="write a model's outputs for X",
        description="Write the outputs of a model (or engine) file for the features of a "
                    ".npz (X), .csv or .npy file. A model trained on a CSV file reads a CSV "
                    "file by its column names, as in training (the label column, if present, "
                    "is ignored; categories and imputed means come from the model); other "
                    "columns are refused.")
    predict.add_argument("model", help="model or engine file")
    predict.add_argument("--data", required=True, help=".npz, .csv or .npy file")
    predict.add_argument("--out", required=True, help=".npy or .csv file to write")
    predict.add_argument("--labels", action="store_true",
                         help="write class labels (argmax, or p > 0.5 for sigmoid outputs; "
                              "the original labels the model was trained on) instead of the "
                              "outputs")
    predict.add_argument("--label", default="label",
                         help="CSV column to ignore as the target (default label)")
    predict.set_defaults(func=run)


def run(args):
    check_out(args.out, (".npy", ".csv"))
    ext = os.path.splitext(args.out)[1].lower()
    model, engine = load_model_or_engine(args.model)
    table = getattr(model, "table", None)
    X, _, _ = read_data(args.data, args.label, need_y=False, schema=table)
    try:
        Y = model.predict(X) if model is not None else engine.predict(X)
    except ValueError as exc:
        raise UsageError(f"{args.data} does not fit {args.model}: {exc}") from None
    act = output_activation(model, engine)
    if args.labels:
        if act not in ("softmax", "sigmoid"):
            raise UsageError(f"{args.model}: --labels needs a classifier (softmax or sigmoid "
                             f"output); this model's output activation is {act}")
        if act == "sigmoid" and Y.shape[1] > 1:
            Y = (Y > 0.5).astype(np.int64)  # several independent labels
        else:
            Y = labels.decode(Y, (model or engine).classes)
    if ext == ".npy":
        np.save(args.out, Y)
    else:
        if args.labels:
            names = ["label"] if Y.ndim == 1 else [f"label_{i}" for i in range(Y.shape[1])]
            fmt = "%s"
        else:
            prefix = "class" if act == "softmax" else "output"
            names = [f"{prefix}_{i}" for i in range(Y.shape[1])]
            fmt = "%.9g" if Y.dtype == np.float32 else "%.17g"
        np.savetxt(args.out, Y, fmt=fmt, delimiter=",", header=",".join(names), comments="")
    what = "labels" if args.labels else f"{Y.shape[1]} outputs"
    print(f"wrote {what} for {Y.shape[0]} samples to {args.out}")
    return 0
