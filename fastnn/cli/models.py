"""Loading the command line's model and engine files, and describing models."""
import os

from fastnn.cli.errors import UsageError
from fastnn.errors import ModelFormatError
from fastnn.saving import load_model


ONNX_LOSSES = {"softmax": ("sparse_categorical_crossentropy", ["accuracy"]),
               "sigmoid": ("binary_crossentropy", ["accuracy"])}
"""Output activation -> (loss, metrics) an ONNX model is compiled with; otherwise mse, mae."""


def read_onnx(path):
    """The network of an ONNX file, compiled (Adam, and the loss its output activation
    suggests: `ONNX_LOSSES`) so that it can be evaluated and fine-tuned."""
    from fastnn.interop import from_onnx

    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    try:
        model = from_onnx(path)
    except (ValueError, ImportError) as exc:  # ModelFormatError is a ValueError
        raise UsageError(f"{path}: cannot read this ONNX model ({exc})") from None
    loss, metrics = ONNX_LOSSES.get(output_activation(model, None), ("mse", ["mae"]))
    model.compile("adam", loss, metrics=metrics)
    return model


def _is_onnx(path):
    return os.path.splitext(path)[1].lower() == ".onnx"


def load_model_file(path):
    """The model in `path` (a fastnn model file, or an ONNX file by its extension);
    UsageError when it is missing or not a model file."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    if _is_onnx(path):
        return read_onnx(path)
    try:
        return load_model(path)
    except ModelFormatError as exc:
        raise UsageError(f"{path}: not a valid fastnn model file ({exc})") from None


def load_model_or_engine(path):
    """(model, None) for a model or ONNX file, (None, engine) for an engine file."""
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    if _is_onnx(path):
        return read_onnx(path), None
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
