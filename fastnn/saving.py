"""Saving and loading a `Sequential` model as one safetensors file.

The file holds every weight as a tensor (a mostly-zero kernel as CSR: values, column
indices and row pointers) and, as JSON in the metadata, the architecture, the training
configuration, the class labels, the table schema (`fastnn.tables`) when the model reads
a CSV table, and a format version. On request (``include_optimizer=True``, and always
in a pickle) a compiled model's file also holds its training state: the optimizer's
step count and buffers (tensors ``optimizer.<k>``, in the order of
`fastnn.optimizers.Optimizer.get_state`) and the state of the model's random generator
(shuffling, dropout, noise), so that `fit` after the load continues exactly as it would
have without the round trip. Without it a loaded model's optimizer starts afresh (step
0, no moments). `fastnn.io` does the low-level reading and writing.
"""
import json
import re

import numpy as np

from fastnn import io, labels, layers as layers_mod, losses, optimizers, tables
from fastnn._kernels.sparse import check_csr, csr_from_dense, dense_from_csr
from fastnn.errors import ModelFormatError
from fastnn.model import Sequential

__all__ = ["save_model", "load_model", "model_to_bytes", "model_from_bytes", "METADATA"]

FORMAT = "fastnn-model"
FORMAT_VERSION = "2"
# Versions this fastnn reads. Version 2 added the training state; a file without it is
# written as version 1, which older fastnn reads too.
READABLE_VERSIONS = ("1", "2")


def save_model(model, path, include_optimizer=False):
    """Write the model to one safetensors file, atomically.

    Weights are tensors (a kernel that is mostly zeros is stored as CSR: values,
    column indices and row pointers, so pruned models shrink); the architecture and
    training configuration are JSON in the metadata, with a format version.

    With `include_optimizer`, a compiled model's training state is saved too (the
    optimizer's step count and buffers, such as Adam's moments, and the state of the
    model's random generator): the loaded model then trains on exactly as this one
    would. Without it (the default, for a file of the weights alone) the loaded model's
    optimizer starts afresh.
    """
    model.require_built("save")
    io.save_tensors(path, *_file_contents(model, include_optimizer))


def model_to_bytes(model, include_optimizer=False):
    """The bytes `save_model` would write (a model not yet built has no tensors)."""
    return io.tensors_to_bytes(*_file_contents(model, include_optimizer))


def _file_contents(model, include_optimizer):
    """(tensors, metadata) of the model's file."""
    tensors = {}
    sparse = {}

    def put(key, w):
        if w.ndim == 2 and 2 * np.count_nonzero(w) < w.size:
            indptr, indices, values = csr_from_dense(w)  # CSR of w.T
            tensors[key + ".indptr"] = indptr
            tensors[key + ".indices"] = indices
            tensors[key + ".values"] = values
            sparse[key] = list(w.shape)
        else:
            tensors[key] = w

    for i, layer in enumerate(model.layers if model.built else []):
        for j, w in enumerate(layer.weights):
            put(f"layers.{i}.{j}", w)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION,
            "architecture": json.dumps(model.get_config()),
            "classes": json.dumps(labels.to_json(model.classes))}
    if model.table is not None:
        meta["table"] = json.dumps(model.table)
    training = model.get_compile_config()
    if training is not None:
        training["metrics"] = [m for m in training["metrics"] if isinstance(m, str)]
        meta["training"] = json.dumps(training)
        if model.built and include_optimizer:
            state = model.optimizer.get_state()
            for k, buffer in enumerate(state[1:]):
                put(f"optimizer.{k}", buffer)
            meta["training_state"] = json.dumps({"iterations": int(state[0]),
                                                 "rng": model._rng.bit_generator.state})
    if "training_state" not in meta:
        meta["format_version"] = "1"
    masks = [i for i, l in enumerate(model.layers)
             if getattr(l, "kernel_mask", None) is not None]
    meta["sparse"] = json.dumps(sparse)
    meta["masked_layers"] = json.dumps(masks)
    return tensors, meta


def load_model(path):
    """Read a model written by `Sequential.save`; never executes code from the file.

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    fastnn.ModelFormatError
        On the first problem (see `model_from_bytes`).
    """
    return model_from_bytes(io.read_file(path))


def model_from_bytes(data):
    """The model held by `data`, the bytes of a file written by `Sequential.save`.

    The whole file is checked before any layer is built: the metadata against the
    table `METADATA` (every key known, every number of the right type and range, every
    layer config rebuilt and compared with what was read), every tensor accounted for
    and of the size the architecture implies. A loaded model never runs an
    initializer: its layers are built from the tensors, so a file of N bytes costs
    time and memory proportional to N (kernels stored as CSR expand to at most
    `MAX_EXPANSION` times the file's size, or `MIN_BUDGET` bytes).

    Raises
    ------
    fastnn.ModelFormatError
        On the first problem, naming it.
    """
    try:
        return _model_from(data)
    except MemoryError:
        raise ModelFormatError("the model in the file does not fit in memory") from None


# The metadata of a model file: key -> (required, check), where check(text) returns the
# parsed value or raises ModelFormatError. A key not in the table is an error.
METADATA = {}


def _metadata_key(key, required=True):
    def register(check):
        METADATA[key] = (required, check)
        return check
    return register


# Limits of the loader (the engine's): larger files are refused before anything is built.
MAX_LAYERS = 4096
MAX_WIDTH = 1 << 22
# Kernels stored as CSR may expand to this many times the file's size, or MIN_BUDGET bytes.
MAX_EXPANSION = 64
MIN_BUDGET = 64 << 20
_INDEX = r"(0|[1-9][0-9]*)"
_TENSOR_NAME = re.compile(rf"(?:layers\.{_INDEX}\.{_INDEX}|optimizer\.{_INDEX})"
                          r"(?:\.(indptr|indices|values))?")


def _fail(message):
    raise ModelFormatError(message)


def _is_int(x, low, high):
    return isinstance(x, int) and not isinstance(x, bool) and low <= x <= high


def _check_keys(obj, required, optional, where):
    if not isinstance(obj, dict):
        _fail(f"{where} must be a JSON object")
    missing, unknown = set(required) - set(obj), set(obj) - set(required) - set(optional)
    if missing or unknown:
        _fail(f"{where}: " + "; ".join(
            [f"missing {sorted(missing)}"] * bool(missing) + [f"unknown {sorted(unknown)}"]
            * bool(unknown)))


def _check_finite(value, where):
    """ModelFormatError unless every number in the JSON value is finite."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, float) and not np.isfinite(item):
            _fail(f"{where}: non-finite number {item!r}")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _rebuild(config, get, serialize, where):
    """The object `get(config)` makes, when `serialize` gives back exactly `config`.

    This one check types and ranges every argument the way the constructor does, and
    refuses what the constructor would silently convert or ignore.
    """
    _check_finite(config, where)
    try:
        obj = get(config)
        again = serialize(obj)
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        _fail(f"{where}: {exc}")
    if _tagged(again) != _tagged(config):
        _fail(f"{where}: {config!r} is not a valid configuration (it reads as {again!r})")
    return obj


def _tagged(value):
    """A JSON value with booleans told apart from the numbers 0 and 1, for comparison."""
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, dict):
        return {k: _tagged(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tagged(v) for v in value]
    return value


@_metadata_key("format")
def _check_format(text):
    if text != FORMAT:
        _fail(f"not a fastnn model file (format {text!r})")
    return text


@_metadata_key("format_version")
def _check_version(text):
    if text not in READABLE_VERSIONS:
        _fail(f"unsupported model format version {text!r} (this fastnn reads "
              f"{', '.join(READABLE_VERSIONS)})")
    return text


@_metadata_key("architecture")
def _check_architecture(text):
    arch = io.parse_json(text, "metadata 'architecture'")
    _check_keys(arch, ("layers", "input_dim", "dtype"), ("name", "seed"), "architecture")
    if arch["dtype"] not in ("float32", "float64"):
        _fail(f"architecture: dtype {arch['dtype']!r} is not float32 or float64")
    if arch["input_dim"] is not None and not _is_int(arch["input_dim"], 1, MAX_WIDTH):
        _fail(f"architecture: input_dim={arch['input_dim']!r} must be null (a model not "
              f"built yet) or an integer in [1, {MAX_WIDTH}]")
    if not isinstance(arch.get("name", ""), str):
        _fail("architecture: name must be a string")
    seed = arch.get("seed")
    if seed is not None and not _is_int(seed, 0, 2 ** 128):
        _fail(f"architecture: seed={seed!r} must be null or a non-negative integer")
    configs = arch["layers"]
    if not isinstance(configs, list) or not 1 <= len(configs) <= MAX_LAYERS:
        _fail(f"architecture: layers must be a list of 1 to {MAX_LAYERS} layer configs")
    layer_serialize = _layer_config
    arch["layers"] = [_rebuild(c, layers_mod.get, layer_serialize, f"layer {i}")
                      for i, c in enumerate(configs)]
    return arch


def _layer_config(layer):
    return {"class_name": type(layer).__name__, "config": layer.get_config()}


@_metadata_key("sparse")
def _check_sparse(text):
    sparse = io.parse_json(text, "metadata 'sparse'")
    if not isinstance(sparse, dict) or not all(
            isinstance(v, list) and len(v) == 2 and all(_is_int(d, 1, MAX_WIDTH) for d in v)
            for v in sparse.values()):
        _fail("'sparse' must map tensor names to [rows, columns] (positive integers)")
    return sparse


@_metadata_key("masked_layers")
def _check_masked(text):
    masked = io.parse_json(text, "metadata 'masked_layers'")
    if not isinstance(masked, list) or not all(_is_int(i, 0, MAX_LAYERS) for i in masked) \
            or len(set(masked)) != len(masked):
        _fail("masked_layers must be a list of distinct layer indices")
    return masked


@_metadata_key("training", required=False)
def _check_training(text):
    training = io.parse_json(text, "metadata 'training'")
    # files written before clipping moved onto the optimizer also have "clip"
    _check_keys(training, ("optimizer", "loss", "metrics"), ("clip",), "training")
    training["optimizer"] = _rebuild(training["optimizer"], optimizers.get,
                                     optimizers.serialize, "training optimizer")
    training["loss"] = _rebuild(training["loss"], losses.get, losses.serialize, "training loss")
    metrics = training["metrics"]
    if not isinstance(metrics, list) or not all(
            isinstance(m, str) and m in losses.METRICS for m in metrics):
        _fail(f"training metrics must be a list of metric names "
              f"({', '.join(sorted(losses.METRICS))})")
    clip = training.setdefault("clip", {})
    _check_keys(clip, (), ("clipvalue", "clipnorm", "global_clipnorm"), "training clip")
    _check_finite(clip, "training clip")
    return training


@_metadata_key("training_state", required=False)
def _check_training_state(text):
    state = io.parse_json(text, "metadata 'training_state'")
    _check_keys(state, ("iterations", "rng"), (), "training_state")
    if not _is_int(state["iterations"], 0, 2 ** 63 - 1):
        _fail(f"training_state: iterations={state['iterations']!r} must be an integer >= 0")
    rng = state["rng"]
    _check_keys(rng, ("bit_generator", "state", "has_uint32", "uinteger"), (),
                "training_state rng")
    _check_keys(rng["state"], ("state", "inc"), (), "training_state rng state")
    if rng["bit_generator"] != "PCG64" or not all(
            _is_int(v, 0, 2 ** 128 - 1) for v in rng["state"].values()) \
            or not _is_int(rng["has_uint32"], 0, 1) or not _is_int(rng["uinteger"], 0, 2 ** 32 - 1):
        _fail("training_state: rng must be a PCG64 state (integers in range)")
    return state


@_metadata_key("classes", required=False)
def _check_classes(text):
    classes = io.parse_json(text, "metadata 'classes'")
    if classes is not None and not isinstance(classes, list):
        _fail("classes must be null or a list of labels")
    return classes


@_metadata_key("table", required=False)
def _check_table(text):
    return io.parse_json(text, "metadata 'table'")


class _CSR:
    """A kernel stored as CSR, checked; becomes the dense array only when a layer takes it."""

    def __init__(self, shape, parts):
        self.shape, self.parts = tuple(shape), parts

    def __array__(self, dtype=None, copy=None):
        return dense_from_csr(*self.parts, n_in=self.shape[0])


def _model_from(data):
    tensors, meta = io.tensors_from_bytes(data)
    fields = io.check_metadata(meta, METADATA, "model")
    arch, sparse = fields["architecture"], fields["sparse"]
    dtype, n_layers = np.dtype(arch["dtype"]), len(arch["layers"])
    # every tensor is a weight of a layer or an optimizer buffer, dense or as the three
    # CSR arrays of a matrix
    given, buffers, parts = [{} for _ in range(n_layers)], {}, {}
    for name, t in tensors.items():
        match = _TENSOR_NAME.fullmatch(name)
        if match is None or (match[1] is not None and int(match[1]) >= n_layers):
            _fail(f"unexpected tensor {name!r}")
        part = match[4]  # indptr, indices or values of a CSR matrix; None for a dense one
        key = name if part is None else name.rsplit(".", 1)[0]
        if (part is None) == (key in sparse):
            _fail(f"tensor {name!r} does not match the 'sparse' entry of {key}")
        if part is None:
            _place(given, buffers, key, _checked(t, name, dtype))
        else:
            parts.setdefault(key, {})[part] = t
    budget = max(MIN_BUDGET, MAX_EXPANSION * len(data))
    for key, (rows, cols) in sparse.items():
        got = parts.get(key, {})
        if len(got) != 3:
            _fail(f"{key}: a CSR kernel needs indptr, indices and values tensors")
        budget -= rows * cols * dtype.itemsize
        if budget < 0:
            _fail(f"{key}: the CSR kernels of the file expand to more than "
                  f"{max(MIN_BUDGET, MAX_EXPANSION * len(data))} bytes")
        values = _checked(got["values"], f"{key}.values", dtype)
        try:
            check_csr(got["indptr"], got["indices"], values, n_in=rows, n_out=cols)
        except (ValueError, TypeError) as exc:
            _fail(f"{key}: {exc}")
        _place(given, buffers, key, _CSR((rows, cols), (got["indptr"], got["indices"], values)))
    weights = []
    for i, found in enumerate(given):
        if sorted(found) != list(range(len(found))):
            _fail(f"layer {i}: weight tensors {sorted(found)} are not numbered 0 to "
                  f"{len(found) - 1}")
        weights.append([found[j] for j in range(len(found))])
    model = Sequential(arch["layers"], dtype=dtype, seed=arch.get("seed"),
                       name=arch.get("name", "sequential"))
    if arch["input_dim"] is None:
        if tensors or fields["masked_layers"] or "table" in fields:
            _fail("a model that is not built has no tensors, masks or table schema")
    else:
        try:
            model.build(arch["input_dim"], weights)
        except ValueError as exc:
            _fail(f"weights do not fit the architecture: {exc}")
    for i in fields["masked_layers"]:
        if i >= n_layers or not isinstance(model.layers[i], layers_mod.Dense):
            _fail(f"masked_layers names a layer that has no kernel: {i!r}")
        layer = model.layers[i]
        layer.kernel_mask = (layer.kernel != 0).astype(model.dtype)
    if fields.get("classes") is not None:
        try:
            model.classes = labels.from_json(fields["classes"], model.output_dim)
        except ValueError as exc:
            _fail(f"invalid classes: {exc}")
    if "table" in fields:
        try:
            model.table = tables.check_schema(fields["table"], model.input_dim)
        except (TypeError, ValueError) as exc:
            _fail(f"invalid table schema: {exc}")
    training = fields.get("training")
    if training is not None:
        try:
            model.compile(training["optimizer"], training["loss"], training["metrics"],
                          **training["clip"])
        except (TypeError, ValueError) as exc:
            _fail(f"training: {exc}")
    if "training_state" in fields and fields["format_version"] == "1":
        _fail("a version 1 model file has no training_state")
    _restore_training_state(model, fields.get("training_state"), buffers)
    return model


def _place(given, buffers, key, tensor):
    """File `tensor` under its name: ``layers.i.j`` in given[i][j], ``optimizer.k`` in
    buffers[k]."""
    kind, *index = key.split(".")
    if kind == "layers":
        given[int(index[0])][int(index[1])] = tensor
    else:
        buffers[int(index[0])] = tensor


def _restore_training_state(model, state, buffers):
    """Set the optimizer's step count and buffers, and the random generator, as saved."""
    if state is None:
        if buffers:
            _fail("optimizer tensors without a 'training_state' entry")
        return
    if model.optimizer is None or not model.built:
        _fail("a 'training_state' needs a built model with a 'training' entry")
    if sorted(buffers) != list(range(len(buffers))):
        _fail(f"optimizer tensors {sorted(buffers)} are not numbered 0 to {len(buffers) - 1}")
    try:
        model.optimizer.set_state([state["iterations"]] + [
            np.asarray(buffers[k]) for k in range(len(buffers))], model._params)
    except (TypeError, ValueError) as exc:
        _fail(f"training_state: {exc}")
    model._rng.bit_generator.state = state["rng"]


def _checked(t, name, dtype):
    """Tensor `t` unless its dtype differs from the model's or it holds NaN or inf."""
    if t.dtype != dtype:
        _fail(f"tensor {name!r} has dtype {t.dtype}, expected {dtype}")
    if not np.isfinite(t).all():
        _fail(f"tensor {name!r}: non-finite weights")
    return t
