"""ONNX to fastnn: read a dense network from an ONNX graph into a `Sequential`.

The graph is read as a chain from its one data input. At each step the value the chain
has reached is taken by:

1. its single consumer, when that node's op type is in `CONVERTERS` (one small function
   per op, turning the node into steps of `fastnn.interop._chain`); or
2. a closed elementwise region starting at it (every node of the region takes the chain
   value or a region output, and scalar constants): exporters spell GELU (erf and tanh
   forms), SiLU and a guarded Softplus as such regions. The region is evaluated in
   float64 on a grid of inputs and must equal one of fastnn's activations (`PATTERNS`)
   there, so any spelling of these functions is recognised and nothing else is; or
3. the end of the network: a graph output nothing reads, or a classifier tail (ArgMax,
   ZipMap, ArrayFeatureExtractor or Gather of a label table, the Concat of
   scikit-learn's binary probabilities), whose class labels are kept in
   ``model.classes``.

Constants (initializers, sparse initializers, Constant nodes, and Identity, Cast,
Transpose or Reshape of constants) are folded first. Anything else raises ValueError
naming the node, its op type and what is supported; an unreadable or invalid file
raises `fastnn.ModelFormatError`.
"""
import os

import numpy as np
from scipy.special import erf

from fastnn._kernels.reference import activations as ref
from fastnn.errors import ModelFormatError
from fastnn.interop._chain import (build, log_softmax_steps, require, softmax_steps,
                                  supported_message)

__all__ = ["from_onnx", "CONVERTERS", "PATTERNS"]

FLOAT_TYPES = {1: np.float32, 11: np.float64}  # TensorProto.FLOAT, TensorProto.DOUBLE
TAIL_OPS = frozenset({"ArgMax", "ZipMap", "ArrayFeatureExtractor", "Concat"})
PATTERNS = ("linear", "relu", "sigmoid", "tanh", "selu", "gelu", "gelu_tanh", "swish",
            "softplus", "binary_step")
"""fastnn activations an elementwise region may compute."""
_PROBE = np.concatenate([np.linspace(-12.0, 12.0, 961), [-60.0, -30.0, -18.0, 0.0, 18.0, 30.0,
                                                         60.0]])


def from_onnx(source):
    """A built `fastnn.Sequential` computing the ONNX network in `source`.

    Parameters
    ----------
    source : str, os.PathLike, bytes or onnx.ModelProto
        A file, its bytes, or a loaded model. The graph takes one float or double input
        of shape (batch, features) and is a chain of dense layers, activations,
        BatchNormalization, Dropout and reshapes that keep the data 2-D, as written by
        ``torch.onnx.export`` (``dynamo=False`` and ``True``), skl2onnx for
        MLPClassifier/MLPRegressor, tf2onnx for Keras Dense stacks, and `fastnn.to_onnx`.

    Returns
    -------
    Sequential
        Weights set, in float32 or float64 after the graph's input; a classifier's labels
        in ``model.classes``.

    Raises
    ------
    ValueError
        For an op or a structure fastnn cannot run (naming the node and op type).
    fastnn.ModelFormatError
        For a file that is not a valid ONNX model.
    """
    onnx = require("onnx", "'fastnn[onnx]'")
    proto = _load(onnx, source)
    graph = proto.graph
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 1)
    consts = _constants(onnx, graph)
    x, dtype, width = _data_input(graph, consts)
    reader = _Reader(onnx, graph, consts, opset, width)
    steps, classes = reader.read(x)
    if reader.width is None:
        raise ValueError("the input width is not declared and no weight matrix gives it")
    model = build(steps, reader.input_width, dtype, name=graph.name or "imported")
    if not all(np.isfinite(w).all() for w in model.get_weights()):
        raise ModelFormatError("the ONNX graph holds NaN or infinite weights")
    if classes is not None:
        model.classes = classes
    return model


def _load(onnx, source):
    try:
        if isinstance(source, onnx.ModelProto):
            proto = source
        elif isinstance(source, (bytes, bytearray, memoryview)):
            proto = onnx.load_from_string(bytes(source))
        elif isinstance(source, (str, os.PathLike)):
            if not os.path.isfile(source):
                raise FileNotFoundError(f"no such ONNX file: {os.fspath(source)!r}")
            proto = onnx.load(os.fspath(source))
        else:
            raise TypeError(f"source must be a path, bytes or onnx.ModelProto, got "
                            f"{type(source).__name__}")
        onnx.checker.check_model(proto)
    except (FileNotFoundError, TypeError):
        raise
    except Exception as exc:  # protobuf's DecodeError, onnx's ValidationError, ...
        raise ModelFormatError(f"not a valid ONNX model: {exc}".splitlines()[0]) from None
    return proto


def _constants(onnx, graph):
    """Every tensor known before the data arrives, by name, as numpy arrays."""
    from onnx import numpy_helper
    consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for sparse in graph.sparse_initializer:
        dims = tuple(sparse.dims)
        values = numpy_helper.to_array(sparse.values)
        indices = numpy_helper.to_array(sparse.indices).astype(np.int64)
        dense = np.zeros(int(np.prod(dims)), dtype=values.dtype)
        flat = indices if indices.ndim == 1 else np.ravel_multi_index(indices.T, dims)
        if flat.size and (flat.min() < 0 or flat.max() >= dense.size):
            raise ModelFormatError(f"sparse initializer {sparse.values.name!r}: index out of "
                                   f"range")
        dense[flat] = values
        consts[sparse.values.name] = dense.reshape(dims)
    for node in graph.node:
        fold = _FOLD.get(node.op_type)
        if node.domain not in ("", "ai.onnx") or fold is None:
            continue
        if node.op_type == "Constant" or (node.input and all(i in consts for i in node.input)):
            consts[node.output[0]] = fold(onnx, node, [consts[i] for i in node.input])
    return consts


def _constant_value(onnx, node, inputs):
    attr = node.attribute[0]
    if attr.name == "value":
        return onnx.numpy_helper.to_array(attr.t)
    if attr.name in ("value_float", "value_int"):
        return np.array(onnx.helper.get_attribute_value(attr))
    if attr.name in ("value_floats", "value_ints"):
        return np.array(onnx.helper.get_attribute_value(attr))
    raise ValueError(f"node {node.name!r} (Constant): attribute {attr.name} is not supported")


def _attrs(onnx, node):
    """A node's attributes; floats (stored as float32) as the shortest decimal that reads back
    to the same float32, so that a slope of 0.1 is 0.1 again."""
    return {a.name: float(str(np.float32(a.f))) if a.type == onnx.AttributeProto.FLOAT
            else onnx.helper.get_attribute_value(a) for a in node.attribute}


def _fold_cast(onnx, node, inputs):
    to = _attrs(onnx, node)["to"]
    return inputs[0].astype(onnx.helper.tensor_dtype_to_np_dtype(to))


def _fold_transpose(onnx, node, inputs):
    perm = _attrs(onnx, node).get("perm")
    return np.transpose(inputs[0], perm)


def _fold_reshape(onnx, node, inputs):
    shape = [d if d != 0 else inputs[0].shape[i] for i, d in enumerate(inputs[1].tolist())]
    return inputs[0].reshape(shape)


_FOLD = {
    "Constant": _constant_value,
    "Identity": lambda onnx, node, inputs: inputs[0],
    "Cast": _fold_cast,
    "Transpose": _fold_transpose,
    "Reshape": _fold_reshape,
}


def _data_input(graph, consts):
    """(name, dtype, width or None) of the graph's data input: its first non-constant input.

    Any other input is not a constant, so a node that reads it as a weight is refused.
    """
    inputs = [i for i in graph.input if i.name not in consts]
    if not inputs:
        raise ValueError("the graph has no data input")
    inp = inputs[0]
    tensor = inp.type.tensor_type
    dtype = FLOAT_TYPES.get(tensor.elem_type)
    if dtype is None:
        raise ValueError(f"input {inp.name!r} has element type {tensor.elem_type}; fastnn "
                         f"reads float (1) or double (11) inputs")
    dims = tensor.shape.dim
    if tensor.HasField("shape") and len(dims) != 2:
        raise ValueError(f"input {inp.name!r} has {len(dims)} axes; fastnn reads 2-D inputs "
                         f"(batch, features) with the batch axis first")
    width = dims[1].dim_value if len(dims) == 2 and dims[1].HasField("dim_value") else None
    return inp.name, dtype, width


class _Reader:
    """Walks the chain from the data input and collects steps."""

    def __init__(self, onnx, graph, consts, opset, width):
        self.onnx = onnx
        self.nodes = [n for n in graph.node if n.output[0] not in consts]
        self.consts = consts
        self.opset = opset
        self.width = width
        self.input_width = width
        self.outputs = {o.name for o in graph.output}
        self.consumers = {}
        for k, node in enumerate(self.nodes):
            for name in set(node.input):
                self.consumers.setdefault(name, []).append(k)

    # -- helpers for converters ---------------------------------------------
    def attrs(self, node):
        return _attrs(self.onnx, node)

    def const(self, node, index, what):
        name = node.input[index] if index < len(node.input) else ""
        if name not in self.consts:
            raise ValueError(f"node {node.name!r} ({node.op_type}): {what} {name!r} is not a "
                             f"constant (an initializer); fastnn reads weights stored in the "
                             f"graph, not graph inputs or computed values")
        return self.consts[name]

    def set_width(self, width):
        if self.input_width is None:
            self.input_width = width
        self.width = width

    # -- the walk -------------------------------------------------------------
    def read(self, x):
        steps = []
        start = 0
        while True:
            users = [k for k in self.consumers.get(x, []) if k >= start]
            if len(users) == 1 and self.nodes[users[0]].op_type in CONVERTERS \
                    and self.nodes[users[0]].domain in ("", "ai.onnx"):
                node = self.nodes[users[0]]
                if node.input[0] != x and node.op_type not in ("Add",):
                    raise ValueError(f"node {node.name!r} ({node.op_type}): the data must be "
                                     f"its first input")
                steps += CONVERTERS[node.op_type](self, node)
                for extra in node.output[1:]:
                    if extra and (extra in self.consumers or extra in self.outputs):
                        raise ValueError(f"node {node.name!r} ({node.op_type}): its output "
                                         f"{extra!r} is used; fastnn reads the first output only")
                x, start = node.output[0], users[0] + 1
                continue
            region = self._region(x, users)
            if region is not None:
                act, x, last = region
                steps.append(("activation", act, None))
                start = last + 1
                continue
            if not users and x in self.outputs:
                return steps, None
            if x in self.outputs or any(self.nodes[k].op_type in TAIL_OPS for k in users):
                classes = self._classes(start)
                if classes is not None:  # what follows only turns outputs into labels
                    return steps, classes
            self._unsupported(x, users)

    def _unsupported(self, x, users):
        if not users:
            raise ValueError(f"tensor {x!r} is neither used nor a graph output")
        if len(users) > 1:
            names = ", ".join(f"{self.nodes[k].name!r} ({self.nodes[k].op_type})" for k in users)
            raise ValueError(f"tensor {x!r} feeds {len(users)} nodes ({names}) that do not form "
                             f"a known activation; fastnn reads a chain of layers; "
                             f"{supported_message(CONVERTERS)}, and elementwise patterns equal "
                             f"to {', '.join(PATTERNS)}")
        node = self.nodes[users[0]]
        raise ValueError(f"node {node.name!r} ({node.op_type}"
                         f"{'' if node.domain in ('', 'ai.onnx') else ', domain ' + node.domain}"
                         f") is not supported; {supported_message(CONVERTERS)}")

    def _region(self, x, users):
        """(activation, output, last node index) of the longest closed elementwise region
        from x that equals a fastnn activation, or None."""
        if not users:
            return None
        inside, produced, best = set(), {x}, None
        for k in range(min(users), len(self.nodes)):
            node = self.nodes[k]
            if not any(i in produced for i in node.input):
                continue
            if node.op_type not in ELEMENTWISE or node.domain not in ("", "ai.onnx") or any(
                    i not in produced and (i not in self.consts or self.consts[i].size != 1)
                    for i in node.input if i):
                break
            inside.add(k)
            produced.add(node.output[0])
            out = node.output[0]
            if all(set(self.consumers.get(t, [])) <= inside and t not in self.outputs
                   for t in produced if t != out):
                act = self._match(inside, x)
                if act is not None:
                    best = (act, out, k)
        return best

    def _match(self, inside, x):
        env = {x: _PROBE}
        with np.errstate(all="ignore"):
            for k in sorted(inside):
                node = self.nodes[k]
                args = [env[i] if i in env else self.consts[i].astype(np.float64).reshape(())
                        for i in node.input]
                env[node.output[0]] = np.asarray(ELEMENTWISE[node.op_type](self, node, *args),
                                                 dtype=np.float64)
            y = env[node.output[0]]
        if y.shape != _PROBE.shape or not np.all(np.isfinite(y)):
            return None
        for act in PATTERNS:
            want = ref.forward(act, _PROBE[None, :])[0]
            if np.allclose(y, want, rtol=1e-6, atol=1e-7):
                return act
        return None

    def _classes(self, start):
        """Class labels from a classifier tail after node `start`, or None."""
        for node in self.nodes[start:]:
            if node.op_type == "ZipMap":
                attrs = self.attrs(node)
                labels = attrs.get("classlabels_strings") or attrs.get("classlabels_int64s")
                if labels:
                    return _labels(labels)
        for node in self.nodes[start:]:
            if node.op_type in ("ArrayFeatureExtractor", "Gather") and node.input[0] in self.consts:
                return _labels(self.consts[node.input[0]].reshape(-1).tolist())
        return None


def _labels(values):
    return [v.decode() if isinstance(v, bytes) else v for v in values]


# -- converters: one function per op type, node -> steps -------------------------------

def _describe(node):
    return f"node {node.name!r} ({node.op_type})"


def _dense(r, node, W, b):
    if W.ndim != 2:
        raise ValueError(f"{_describe(node)}: the weight has shape {W.shape}; fastnn reads "
                         f"2-D weight matrices")
    if r.width is not None and W.shape[0] != r.width:
        raise ValueError(f"{_describe(node)}: a weight of shape {W.shape} follows {r.width} "
                         f"features")
    r.set_width(W.shape[0])
    r.width = W.shape[1]
    return [("dense", W, b)]


def _gemm(r, node):
    a = r.attrs(node)
    if a.get("transA", 0):
        raise ValueError(f"{_describe(node)}: transA=1 puts the batch axis last; fastnn reads "
                         f"(batch, features) data")
    B = r.const(node, 1, "weight")
    W = (B.T if a.get("transB", 0) else B) * a.get("alpha", 1.0)
    b = None
    if len(node.input) > 2 and node.input[2]:
        C = np.asarray(r.const(node, 2, "bias"), dtype=np.float64) * a.get("beta", 1.0)
        b = _bias_vector(node, C, W.shape[1] if W.ndim == 2 else -1)
    return _dense(r, node, W, b)


def _bias_vector(node, C, n):
    if C.ndim == 2 and C.shape[0] == 1:
        C = C[0]
    if C.size == 1:
        return np.full(n, C.reshape(()))
    if C.shape != (n,):
        raise ValueError(f"{_describe(node)}: a bias of shape {C.shape} does not broadcast to "
                         f"({n},) per feature")
    return C


def _matmul(r, node):
    return _dense(r, node, r.const(node, 1, "weight"), None)


def _add(r, node):
    k = 1 if node.input[0] == _chain_input(r, node) else 0
    b = _bias_vector(node, np.asarray(r.const(node, k, "bias")), r.width or -1)
    return [("bias", b, _describe(node))]


def _chain_input(r, node):
    """The input of `node` that is not a constant."""
    return next(i for i in node.input if i not in r.consts)


def _activation(name, alpha_attr=None, default=None):
    def convert(r, node):
        alpha = None if alpha_attr is None else float(r.attrs(node).get(alpha_attr, default))
        if name == "elu" and alpha <= 0:
            raise ValueError(f"{_describe(node)}: alpha={alpha} must be positive")
        return [("activation", name, alpha)]
    return convert


def _selu(r, node):
    a = r.attrs(node)
    alpha, gamma = a.get("alpha", ref.SELU_ALPHA), a.get("gamma", ref.SELU_SCALE)
    if abs(alpha - ref.SELU_ALPHA) > 1e-6 or abs(gamma - ref.SELU_SCALE) > 1e-6:
        raise ValueError(f"{_describe(node)}: alpha={alpha}, gamma={gamma}; fastnn's selu has "
                         f"alpha={ref.SELU_ALPHA}, gamma={ref.SELU_SCALE}")
    return [("activation", "selu", None)]


def _gelu(r, node):
    approximate = r.attrs(node).get("approximate", b"none")
    approximate = approximate.decode() if isinstance(approximate, bytes) else approximate
    return [("activation", "gelu_tanh" if approximate == "tanh" else "gelu", None)]


def _prelu(r, node):
    slope = np.asarray(r.const(node, 1, "slope"))
    if slope.size != 1 and (slope.ndim > 2 or slope.shape[-1] != slope.size
                            or (r.width is not None and slope.size != r.width)):
        raise ValueError(f"{_describe(node)}: a slope of shape {slope.shape} is not one per "
                         f"feature")
    return [("prelu", slope.reshape(-1))]


def _softmax(r, node):
    # Before opset 13 Softmax coerced its input to 2-D at `axis` (default 1); from 13 on it
    # normalises along `axis` (default -1). On (batch, features) data both mean each row.
    return softmax_steps(r.attrs(node).get("axis", 1 if r.opset < 13 else -1), _describe(node))


def _batchnorm(r, node):
    a = r.attrs(node)
    if a.get("training_mode", 0):
        raise ValueError(f"{_describe(node)}: training_mode=1; fastnn reads inference graphs")
    gamma, beta, mean, var = (r.const(node, k, what) for k, what in
                              enumerate(("scale", "bias", "mean", "variance"), start=1))
    eps = a.get("epsilon", 1e-5)
    if eps == 0 and np.all(gamma == 1) and np.all(beta == 0):
        return [("normalization", mean, var)]  # as `fastnn.to_onnx` writes Normalization
    if eps <= 0:
        raise ValueError(f"{_describe(node)}: epsilon={eps}; fastnn's BatchNormalization "
                         f"needs a positive epsilon")
    return [("batchnorm", gamma, beta, mean, var, eps)]


def _identity(r, node):
    return []


def _dropout(r, node):
    ratio = r.attrs(node).get("ratio", 0.5)  # an attribute before opset 12, then an input
    if len(node.input) > 1 and node.input[1]:
        ratio = float(r.const(node, 1, "ratio"))
    if len(node.input) > 2 and node.input[2] and bool(r.const(node, 2, "training_mode")):
        raise ValueError(f"{_describe(node)}: training_mode=true; fastnn reads inference graphs")
    return [("dropout", ratio)] if 0 < ratio < 1 else []


def _flatten(r, node):
    if r.attrs(node).get("axis", 1) != 1:
        raise ValueError(f"{_describe(node)}: axis={r.attrs(node)['axis']} would fold the "
                         f"batch axis; fastnn reads (batch, features) data")
    return []


def _reshape(r, node):
    shape = r.const(node, 1, "shape").tolist()
    if len(shape) != 2 or shape[0] not in (0, -1) or shape[1] not in (-1, r.width):
        raise ValueError(f"{_describe(node)}: reshape to {shape}; fastnn reads reshapes to "
                         f"(batch, -1) that keep 2-D data as it is")
    return []


def _cast(r, node):
    to = r.attrs(node)["to"]
    if to not in FLOAT_TYPES:
        raise ValueError(f"{_describe(node)}: cast to element type {to}; fastnn computes in "
                         f"float or double")
    return []


CONVERTERS = {
    "Gemm": _gemm,
    "MatMul": _matmul,
    "Add": _add,
    "Relu": _activation("relu"),
    "LeakyRelu": _activation("leaky_relu", "alpha", 0.01),
    "Elu": _activation("elu", "alpha", 1.0),
    "Selu": _selu,
    "Sigmoid": _activation("sigmoid"),
    "Tanh": _activation("tanh"),
    "Softplus": _activation("softplus"),
    "Gelu": _gelu,
    "PRelu": _prelu,
    "Softmax": _softmax,
    "LogSoftmax": lambda r, node: log_softmax_steps(_describe(node)),
    "BatchNormalization": _batchnorm,
    "Identity": _identity,
    "Dropout": _dropout,
    "Flatten": _flatten,
    "Reshape": _reshape,
    "Cast": _cast,
}
"""Op type -> converter of a node that takes the chain value; each returns steps."""


def _cast_value(r, node, x):
    if r.attrs(node)["to"] not in FLOAT_TYPES:
        return np.full_like(x, np.nan)  # a cast to integers or bool never equals an activation
    return x


def _binary(fn):
    return lambda r, node, a, b: fn(a, b)


def _unary(fn):
    return lambda r, node, a: fn(a)


ELEMENTWISE = {
    "Add": _binary(np.add), "Sub": _binary(np.subtract), "Mul": _binary(np.multiply),
    "Div": _binary(np.divide), "Pow": _binary(np.power), "Max": _binary(np.maximum),
    "Min": _binary(np.minimum),
    "Greater": _binary(np.greater), "Less": _binary(np.less),
    "GreaterOrEqual": _binary(np.greater_equal), "LessOrEqual": _binary(np.less_equal),
    "Where": lambda r, node, c, a, b: np.where(c.astype(bool), a, b),
    "Neg": _unary(np.negative), "Abs": _unary(np.abs), "Exp": _unary(np.exp),
    "Log": _unary(np.log), "Sqrt": _unary(np.sqrt), "Reciprocal": _unary(np.reciprocal),
    "Erf": _unary(erf), "Tanh": _unary(np.tanh), "Sigmoid": _unary(ref.sigmoid),
    "Relu": _unary(lambda a: np.maximum(a, 0)),
    "Softplus": _unary(lambda a: ref.forward("softplus", a)),
    "Identity": _unary(lambda a: a), "Cast": _cast_value,
}
"""Op type -> numpy evaluation, for the elementwise regions matched against `PATTERNS`."""
