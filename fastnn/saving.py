"""Saving and loading a `Sequential` model as one safetensors file.

The file holds every weight as a tensor (a mostly-zero kernel as CSR: values, column
indices and row pointers) and, as JSON in the metadata, the architecture, the training
configuration, the class labels, the table schema (`fastnn.tables`) when the model reads
a CSV table, and a format version. `fastnn.io` does the low-level
reading and writing.
"""
import json

import numpy as np

from fastnn import io, labels, layers as layers_mod, tables
from fastnn._kernels.sparse import check_csr, csr_from_dense, dense_from_csr
from fastnn.errors import ModelFormatError
from fastnn.model import Sequential

__all__ = ["save_model", "load_model", "model_to_bytes", "model_from_bytes"]

FORMAT = "fastnn-model"
FORMAT_VERSION = "1"


def save_model(model, path):
    """Write the model to one safetensors file, atomically.

    Weights are tensors (a kernel that is mostly zeros is stored as CSR: values,
    column indices and row pointers, so pruned models shrink); the architecture and
    training configuration are JSON in the metadata, with a format version.
    """
    model.require_built("save")
    io.save_tensors(path, *_file_contents(model))


def model_to_bytes(model):
    """The bytes `save_model` would write (a model not yet built has no tensors)."""
    return io.tensors_to_bytes(*_file_contents(model))


def _file_contents(model):
    """(tensors, metadata) of the model's file."""
    tensors = {}
    sparse = {}
    for i, layer in enumerate(model.layers if model.built else []):
        for j, w in enumerate(layer.weights):
            key = f"layers.{i}.{j}"
            if w.ndim == 2 and 2 * np.count_nonzero(w) < w.size:
                indptr, indices, values = csr_from_dense(w)  # CSR of w.T
                tensors[key + ".indptr"] = indptr
                tensors[key + ".indices"] = indices
                tensors[key + ".values"] = values
                sparse[key] = list(w.shape)
            else:
                tensors[key] = w
    masks = [i for i, l in enumerate(model.layers)
             if getattr(l, "kernel_mask", None) is not None]
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "architecture": json.dumps(model.get_config()),
            "sparse": json.dumps(sparse), "masked_layers": json.dumps(masks),
            "classes": json.dumps(labels.to_json(model.classes))}
    if model.table is not None:
        meta["table"] = json.dumps(model.table)
    training = model.get_compile_config()
    if training is not None:
        training["metrics"] = [m for m in training["metrics"] if isinstance(m, str)]
        meta["training"] = json.dumps(training)
    return tensors, meta


def load_model(path):
    """Read a model written by `Sequential.save`; never executes code from the file.

    Raises
    ------
    FileNotFoundError
        When there is no file at `path`.
    fastnn.ModelFormatError
        On the first problem: unreadable or truncated file, unknown format or version,
        unknown layer kind or activation, inconsistent shapes or dtypes, non-finite weights.
    """
    return _model_from_contents(*io.load_tensors(path))


def model_from_bytes(data):
    """`load_model` for the bytes of a model file (`model_to_bytes`)."""
    return _model_from_contents(*io.tensors_from_bytes(data))


def _model_from_contents(tensors, meta):
    if meta.get("format") != FORMAT:
        raise ModelFormatError(f"not a fastnn model file (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFormatError(f"unsupported model format version {meta.get('format_version')!r}"
                               f" (this fastnn reads {FORMAT_VERSION})")
    arch = io.metadata_json(meta, "architecture")
    sparse = io.metadata_json(meta, "sparse")
    masked = io.metadata_json(meta, "masked_layers")
    if not isinstance(sparse, dict) or not all(
            isinstance(v, list) and len(v) == 2 and all(isinstance(d, int) for d in v)
            for v in sparse.values()):
        raise ModelFormatError("'sparse' must map tensor names to [rows, columns]")
    try:
        model = Sequential([layers_mod.get(c) for c in arch["layers"]], dtype=arch["dtype"],
                           seed=arch.get("seed"), name=arch.get("name", "sequential"))
        if arch["input_dim"] is not None:
            model.build(arch["input_dim"])
        if "training" in meta:
            training = json.loads(meta["training"])
            model.compile_from_config(training)
    except ModelFormatError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ModelFormatError(f"invalid architecture: {exc}") from None
    if not model.built:
        if tensors:
            raise ModelFormatError("a model that is not built has no tensors")
        return model
    weights = []
    for i, layer in enumerate(model.layers):
        for j, target in enumerate(layer.weights):
            key = f"layers.{i}.{j}"
            if key in sparse:
                parts = [tensors.get(f"{key}.{p}") for p in ("indptr", "indices", "values")]
                if any(p is None for p in parts) or list(sparse[key]) != list(target.shape):
                    raise ModelFormatError(f"{key}: incomplete or misshapen sparse tensor")
                try:
                    check_csr(*parts, n_in=target.shape[0], n_out=target.shape[1])
                except ValueError as exc:
                    raise ModelFormatError(f"{key}: {exc}") from None
                value = dense_from_csr(*parts, n_in=target.shape[0])
            elif key in tensors:
                value = tensors[key]
            else:
                raise ModelFormatError(f"missing tensor {key} for layer {layer.name!r}")
            if value.dtype != model.dtype or value.shape != target.shape:
                raise ModelFormatError(f"{key}: expected {model.dtype} {target.shape}, got "
                                       f"{value.dtype} {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ModelFormatError(f"{key}: non-finite weights")
            weights.append(value)
    model.set_weights(weights)
    if "classes" in meta:
        try:
            model.classes = labels.from_json(io.metadata_json(meta, "classes"), model.output_dim)
        except ValueError as exc:
            raise ModelFormatError(f"invalid classes: {exc}") from None
    if "table" in meta:
        try:
            model.table = tables.check_schema(io.metadata_json(meta, "table"), model.input_dim)
        except ValueError as exc:
            raise ModelFormatError(f"invalid table schema: {exc}") from None
    if not isinstance(masked, list):
        raise ModelFormatError("masked_layers must be a list")
    for i in masked:
        if not isinstance(i, int) or not 0 <= i < len(model.layers) \
                or not isinstance(model.layers[i], layers_mod.Dense):
            raise ModelFormatError(f"masked_layers names a layer that has no kernel: {i!r}")
        layer = model.layers[i]
        layer.kernel_mask = (layer.kernel != 0).astype(model.dtype)
    return model
