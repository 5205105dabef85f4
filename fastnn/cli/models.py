"""Loading the command line's model and engine files, and describing models."""
import os

from fastnn.cli.errors import UsageError
from fastnn.errors import ModelFormatError
from fastnn.saving import load_model


def load_model_file(path):
    """The model in `path`; UsageError when it is missing or not a model file."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    try:
        return load_model(path)
    except ModelFormatError as exc:
        raise UsageError(f"{path}: not a valid fastnn model file ({exc})") from None


def load_model_or_engine(path):
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


def output_activation(model, engine):
    if model is not None:
        return getattr(getattr(model.layers[-1], "activation", None), "kernel", "linear")
    return engine.layout()[-1]["activation"]


def accuracy_metric(model):
    """The compiled accuracy metric's name, else "loss"."""
    names = [name for name, _ in model.metrics]
    return next((n for n in names if n in ("accuracy", "acc")), "loss")


def evaluate_line(result):
    return "  ".join(f"{k} {v:.4f}" for k, v in result.items())
