"""fastnn to ONNX: `to_onnx` writes a `Sequential` or a deployed `InferenceEngine`.

A model is written layer by layer (`LAYERS`: Dense as Gemm, or MatMul + Add; PReLU,
BatchNormalization and Dropout as their ops, Normalization as a BatchNormalization of
epsilon 0), so that `fastnn.from_onnx` reads back the
same layers and weights. An engine is written from its compiled layers (dense and
per-feature affine steps, BatchNormalization already folded). Activations go through
`ACTIVATIONS`; before opset 20, where ONNX has no Gelu, GELU is written in its erf or
tanh form. A classifier's labels add a second output, ``label``.
"""
import os

import numpy as np

from fastnn.interop._chain import require, supported_message
from fastnn._kernels.activations import DEFAULT_ALPHA
from fastnn._validation import check_int
from fastnn._kernels.reference.activations import GELU_C, GELU_K, SELU_ALPHA, SELU_SCALE

__all__ = ["to_onnx", "DEFAULT_OPSET", "MIN_OPSET", "ACTIVATIONS", "LAYERS"]

DEFAULT_OPSET = 17
"""Read by ONNX Runtime 1.13 and later."""
MIN_OPSET = 13
SPARSE_MAX_DENSITY = 1 / 3
"""A sparse initializer stores a value and an int64 index per nonzero: three times the bytes
of a float32 entry, so it is smaller only below this density."""


def to_onnx(model_or_engine, path=None, *, opset=None, matmul=False, sparse=False):
    """The network as an ``onnx.ModelProto``, written to `path` when given.

    Parameters
    ----------
    model_or_engine : Sequential or InferenceEngine
        A built model, or a deployed (possibly pruned) engine.
    path : str or os.PathLike, optional
    opset : int, optional
        ONNX opset of the default domain, 13 or later; default `DEFAULT_OPSET` (17).
    matmul : bool
        Write MatMul + Add instead of Gemm (ONNX Runtime's dynamic quantizer skips Gemm).
    sparse : bool
        Store weight matrices whose density is below one third as ``sparse_initializer``
        entries, so that the file shrinks with the nonzeros of a pruned model.

    Returns
    -------
    onnx.ModelProto
        Input ``input`` of shape (batch, n_in), output ``output`` of shape (batch, n_out),
        and for a model with ``classes`` an output ``label`` of shape (batch,).
    """
    onnx = require("onnx", "'fastnn[onnx]'")
    from fastnn.engine import InferenceEngine
    from fastnn.model import Sequential
    max_opset = onnx.defs.onnx_opset_version()
    opset = DEFAULT_OPSET if opset is None else opset
    opset = check_int(opset, "opset", MIN_OPSET, max_opset)
    if isinstance(model_or_engine, Sequential):
        model_or_engine.require_built("to_onnx")
        dtype, n_in = model_or_engine.dtype, model_or_engine.input_dim
    elif isinstance(model_or_engine, InferenceEngine):
        dtype, n_in = model_or_engine.dtype, model_or_engine.n_in
    else:
        raise TypeError(f"to_onnx takes a fastnn.Sequential or InferenceEngine, got "
                        f"{type(model_or_engine).__name__}")
    w = _Writer(onnx, dtype, int(opset), matmul, sparse)
    x = "input"
    if isinstance(model_or_engine, Sequential):
        for layer in model_or_engine.layers:
            write = LAYERS.get(type(layer).__name__)
            if write is None:  # pragma: no cover - every layer class is in the table
                raise ValueError(f"layer {layer.name!r} ({type(layer).__name__}) cannot be "
                                 f"written; {supported_message(LAYERS)}")
            x = write(w, x, layer)
        name = model_or_engine.name
    else:
        for spec in model_or_engine.specs():
            x = _write_spec(w, x, spec)
        name = "engine"
    n_out = model_or_engine.output_dim if isinstance(model_or_engine, Sequential) \
        else model_or_engine.n_out
    proto = w.finish(x, n_in, n_out, getattr(model_or_engine, "classes", None), name)
    onnx.checker.check_model(proto)
    if path is not None:
        _write_atomic(proto, path)
    return proto


def _write_atomic(proto, path):
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(proto.SerializeToString())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


class _Writer:
    """Collects nodes and initializers; every method takes a value name, returns the next."""

    def __init__(self, onnx, dtype, opset, matmul, sparse):
        self.onnx, self.h = onnx, onnx.helper
        self.dtype = np.dtype(dtype)
        self.elem = self.h.np_dtype_to_tensor_dtype(self.dtype)
        self.opset, self.matmul, self.sparse = opset, matmul, sparse
        self.nodes, self.initializers, self.sparse_initializers = [], [], []
        self._count = 0

    def name(self, base):
        self._count += 1
        return f"{base}_{self._count}"

    def const(self, base, value, dtype=None):
        name = self.name(base)
        value = np.array(value, dtype=self.dtype if dtype is None else dtype, order="C")
        self.initializers.append(self.onnx.numpy_helper.from_array(value, name))
        return name

    def weight(self, W):
        """An initializer for W, sparse when asked for and smaller so."""
        W = np.ascontiguousarray(W, dtype=self.dtype)
        if not (self.sparse and np.count_nonzero(W) < SPARSE_MAX_DENSITY * W.size):
            return self.const("weight", W)
        name = self.name("weight")
        flat = W.reshape(-1)
        index = np.flatnonzero(flat).astype(np.int64)
        values = self.onnx.numpy_helper.from_array(flat[index], name)
        indices = self.onnx.numpy_helper.from_array(index, name + "_indices")
        self.sparse_initializers.append(self.h.make_sparse_tensor(values, indices, W.shape))
        return name

    def node(self, op, inputs, base=None, **attrs):
        out = self.name(base or op.lower())
        self.nodes.append(self.h.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def dense(self, x, W, b):
        Wn = self.weight(W)
        if self.matmul:
            x = self.node("MatMul", [x, Wn])
            return x if b is None else self.node("Add", [x, self.const("bias", b)])
        return self.node("Gemm", [x, Wn] + ([] if b is None else [self.const("bias", b)]))

    def activation(self, x, kernel, alpha):
        write = ACTIVATIONS.get(kernel)
        if write is None:
            raise ValueError(f"activation {kernel!r} cannot be written to ONNX; "
                             f"{supported_message(ACTIVATIONS)}")
        return write(self, x, alpha)

    def scalar(self, value):
        return self.const("c", np.asarray(value))

    def maxout(self, x, units, pieces):
        shape = self.const("shape", [0, units, pieces], np.int64)
        z = self.node("Reshape", [x, shape])
        if self.opset >= 18:
            return self.node("ReduceMax", [z, self.const("axes", [2], np.int64)], keepdims=0)
        return self.node("ReduceMax", [z], axes=[2], keepdims=0)

    def finish(self, x, n_in, n_out, classes, name):
        h = self.h
        outputs = [h.make_tensor_value_info("output", self.elem, ["batch", n_out])]
        self.nodes.append(h.make_node("Identity", [x], ["output"], name="output"))
        if classes is not None:
            outputs.append(self._labels("output", n_out, np.asarray(classes)))
        graph = h.make_graph(self.nodes, name, [h.make_tensor_value_info(
            "input", self.elem, ["batch", n_in])], outputs, initializer=self.initializers,
            sparse_initializer=self.sparse_initializers)
        proto = h.make_model(graph, opset_imports=[h.make_opsetid("", self.opset)],
                             producer_name="fastnn")
        proto.ir_version = min(proto.ir_version, 8)  # read by ONNX Runtime 1.13 and later
        return proto

    def _labels(self, y, n_out, classes):
        """``label`` := classes[argmax(y)], or classes[y > 0.5] for one sigmoid unit."""
        if n_out == 1:
            index = self.node("Cast", [self.node("Greater", [y, self.scalar(0.5)])],
                              to=self.onnx.TensorProto.INT64)
            index = self.node("Reshape", [index, self.const("shape", [-1], np.int64)])
        else:
            index = self.node("ArgMax", [y], axis=1, keepdims=0)
        if classes.dtype.kind == "U":
            table = self.onnx.numpy_helper.from_array(classes.astype(object), self.name("classes"))
            self.initializers.append(table)
            table, elem = table.name, self.onnx.TensorProto.STRING
        else:
            dtype = {"b": np.bool_, "f": np.float64}.get(classes.dtype.kind, np.int64)
            table = self.const("classes", classes, dtype)
            elem = self.h.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self.nodes.append(self.h.make_node("Gather", [table, index], ["label"], name="label",
                                           axis=0))
        return self.h.make_tensor_value_info("label", elem, ["batch"])


# -- activations: kernel name -> nodes ------------------------------------------------

def _op(op):
    return lambda w, x, alpha: w.node(op, [x])


def _gelu(approximate):
    def write(w, x, alpha):
        if w.opset >= 20:
            return w.node("Gelu", [x], approximate="tanh" if approximate else "none")
        if approximate:  # 0.5 x (1 + tanh(c (x + k x^3)))
            cube = w.node("Mul", [x, w.node("Mul", [x, x])])
            inner = w.node("Add", [x, w.node("Mul", [cube, w.scalar(GELU_K)])])
            t = w.node("Tanh", [w.node("Mul", [inner, w.scalar(GELU_C)])])
        else:  # 0.5 x (1 + erf(x / sqrt 2))
            t = w.node("Erf", [w.node("Div", [x, w.scalar(np.sqrt(2.0))])])
        half = w.node("Mul", [x, w.scalar(0.5)])
        return w.node("Mul", [half, w.node("Add", [t, w.scalar(1.0)])])
    return write


def _softmax(w, x, alpha):
    return w.node("Softmax", [x], axis=-1)


def _binary_step(w, x, alpha):
    return w.node("Cast", [w.node("GreaterOrEqual", [x, w.scalar(0.0)])], to=w.elem)


def _slope(name, alpha):
    """The scalar slope of activation `name`: `alpha`, or fastnn's default when None."""
    return float(DEFAULT_ALPHA[name] if alpha is None else alpha)


def _prelu(w, x, alpha):
    return w.node("PRelu", [x, w.const("slope", np.reshape(alpha, -1))])


ACTIVATIONS = {
    "linear": lambda w, x, alpha: x,
    "relu": _op("Relu"),
    "leaky_relu": lambda w, x, alpha: w.node("LeakyRelu", [x], alpha=_slope("leaky_relu", alpha)),
    "elu": lambda w, x, alpha: w.node("Elu", [x], alpha=_slope("elu", alpha)),
    "selu": lambda w, x, alpha: w.node("Selu", [x], alpha=SELU_ALPHA, gamma=SELU_SCALE),
    "sigmoid": _op("Sigmoid"),
    "tanh": _op("Tanh"),
    "softplus": _op("Softplus"),
    "gelu": _gelu(False),
    "gelu_tanh": _gelu(True),
    "swish": lambda w, x, alpha: w.node("Mul", [x, w.node("Sigmoid", [x])]),
    "softmax": _softmax,
    "binary_step": _binary_step,
    "binary_step_ste": _binary_step,
    "prelu": _prelu,
}
"""fastnn activation kernel -> writer (writer, value, alpha) -> value."""


# -- model layers -----------------------------------------------------------------------

def _dense_layer(w, x, layer):
    x = w.dense(x, layer.kernel, layer.bias)
    return w.activation(x, layer.activation.kernel, layer.activation.alpha)


def _maxout_layer(w, x, layer):
    return w.maxout(w.dense(x, layer.kernel, layer.bias), layer.maxout_units, layer.pieces)


def _batchnorm_layer(w, x, layer):
    stats = [w.const(n, a) for n, a in (("gamma", layer.gamma), ("beta", layer.beta),
                                        ("mean", layer.running_mean),
                                        ("var", layer.running_var))]
    return w.node("BatchNormalization", [x] + stats, epsilon=layer.eps)


def _normalization_layer(w, x, layer):
    """(x - mean) / sqrt(var) as a BatchNormalization of epsilon 0; a feature of zero
    variance, which the layer only centres, gets variance 1."""
    scale, _ = layer.inference_affine()
    var = np.where(scale == 1.0, 1.0, layer.variance)
    n = layer.input_dim
    stats = [w.const(name, a) for name, a in (("gamma", np.ones(n)), ("beta", np.zeros(n)),
                                              ("mean", layer.mean), ("var", var))]
    return w.node("BatchNormalization", [x] + stats, epsilon=0.0)


def _dropout_layer(w, x, layer):
    if layer.rate == 0:
        return x
    return w.node("Dropout", [x, w.scalar(layer.rate)])


LAYERS = {
    "Dense": _dense_layer,
    "Maxout": _maxout_layer,
    "Activation": lambda w, x, layer: w.activation(x, layer.activation.kernel,
                                                   layer.activation.alpha),
    "PReLU": lambda w, x, layer: _prelu(w, x, layer.alpha),
    "BatchNormalization": _batchnorm_layer,
    "Normalization": _normalization_layer,
    "Dropout": _dropout_layer,
    "GaussianNoise": lambda w, x, layer: x,  # the identity at inference
}
"""fastnn layer class name -> writer (writer, value, layer) -> value."""


def _write_spec(w, x, spec):
    """One compiled engine layer (see `fastnn.InferenceEngine.specs`)."""
    if spec["kind"] == "dense":
        x = w.dense(x, spec["W"], spec["b"])
        if spec["pieces"] > 1:
            x = w.maxout(x, spec["W"].shape[1] // spec["pieces"], spec["pieces"])
    elif np.any(spec["scale"] != 1) or np.any(spec["shift"] != 0):
        x = w.node("Add", [w.node("Mul", [x, w.const("scale", spec["scale"])]),
                           w.const("shift", spec["shift"])])
    return w.activation(x, spec["activation"], spec["alpha"])
