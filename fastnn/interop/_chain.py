"""The one route from a foreign network to a `fastnn.Sequential`: a chain of steps.

Every importer (ONNX, PyTorch, scikit-learn) translates its layers into steps, and
`build` turns the steps into fastnn layers with their weights set:

- ``("dense", W, b)``: ``X @ W + b``, W of shape (n_in, n_out), b of shape (n_out,) or None;
- ``("activation", name, alpha)``: a kernel of `fastnn._kernels.activations.CODES` with
  its scalar slope (leaky_relu, elu) or None; it becomes the activation of the Dense
  layer before it when that one has none, else an `Activation` layer;
- ``("prelu", alpha)``: one slope per feature, shape (n,);
- ``("batchnorm", gamma, beta, mean, var, eps[, momentum])``: inference statistics, and
  the momentum of their updates in training (PyTorch's meaning; default 0.1);
- ``("normalization", mean, var)``: ``(x - mean) / sqrt(var)``, fixed statistics;
- ``("dropout", rate)``: kept so that fine-tuning drops as the source did.

The importers translate; `build` alone decides how steps become layers.
"""
import importlib

import numpy as np

from fastnn import activations, layers as L
from fastnn.model import Sequential

__all__ = ["build", "require", "supported_message", "softmax_steps", "log_softmax_steps"]


def require(module, extra):
    """Import `module`, or raise ImportError naming what to install."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(f"this converter needs {module}: pip install {extra}") from None


def supported_message(table):
    """``"supported: A, B, C"`` for the keys of a converter table."""
    return "supported: " + ", ".join(sorted(table))


def softmax_steps(axis, where, name="axis"):
    """The steps of a softmax over `axis` of 2-D data; ValueError unless that is each row."""
    if axis not in (None, 1, -1):
        raise ValueError(f"{where}: {name}={axis}; fastnn's softmax normalises each row "
                         f"({name} 1 or -1 of 2-D data)")
    return [("activation", "softmax", None)]


def log_softmax_steps(where):
    """Always ValueError: fastnn has no log-softmax activation to import into."""
    raise ValueError(f"{where}: fastnn has no log-softmax activation; import the network "
                     f"with Softmax, or without its last activation")


def _merge_bias(steps):
    """Steps with a ("bias", b) after a bias-free, activation-free dense step folded in."""
    out = []
    for step in steps:
        if step[0] == "bias":
            last = out[-1] if out else None
            if last is None or last[0] != "dense" or last[2] is not None:
                raise ValueError(step[2] + ": an added constant is supported only as the "
                                 "bias of the matrix product just before it")
            out[-1] = ("dense", last[1], np.asarray(step[1]))
        else:
            out.append(step)
    return out


def build(steps, input_dim, dtype, name="imported"):
    """A built `Sequential` of `dtype` computing the chain `steps` on `input_dim` features.

    Raises ValueError when widths do not chain or the chain is empty.
    """
    steps = _merge_bias(steps)
    layers, weights = [], []
    width = int(input_dim)
    for step in steps:
        kind = step[0]
        if kind == "dense":
            W = np.asarray(step[1])
            if W.ndim != 2 or W.shape[0] != width:
                raise ValueError(f"a weight matrix of shape {W.shape} follows {width} features")
            b = step[2]
            layers.append(L.Dense(W.shape[1], use_bias=b is not None))
            weights.append([W] + ([] if b is None else [np.reshape(b, W.shape[1])]))
            width = W.shape[1]
        elif kind == "activation":
            act, alpha = step[1], step[2]
            last = layers[-1] if layers else None
            if (isinstance(last, L.Dense) and not isinstance(last, L.Maxout)
                    and last.activation.kernel == "linear"):
                last.activation = _activation(act, alpha)
            elif act != "linear":
                layers.append(L.Activation(_activation(act, alpha)))
                weights.append([])
        elif kind == "prelu":
            layers.append(L.PReLU())
            weights.append([np.broadcast_to(np.asarray(step[1]).reshape(-1), (width,))])
        elif kind == "batchnorm":
            gamma, beta, mean, var, eps = step[1:6]
            momentum = step[6] if len(step) > 6 and step[6] is not None else 0.1
            layers.append(L.BatchNormalization(momentum=float(momentum), eps=float(eps)))
            weights.append([np.broadcast_to(np.reshape(a, -1), (width,))
                            for a in (gamma, beta, mean, var)])
        elif kind == "normalization":
            layers.append(L.Normalization())
            weights.append([np.broadcast_to(np.reshape(a, -1), (width,)) for a in step[1:]])
        elif kind == "dropout":
            layers.append(L.Dropout(float(step[1])))
            weights.append([])
        else:  # pragma: no cover - importers emit only the kinds above
            raise AssertionError(f"unknown step {kind!r}")
    if not layers:
        raise ValueError("the network has no layers fastnn can run (only identities)")
    model = Sequential(layers, input_dim=int(input_dim), dtype=dtype, name=name)
    model.set_weights([w for ws in weights for w in ws])
    return model


def _activation(act, alpha):
    if act == "leaky_relu":
        return activations.LeakyReLU(alpha)
    if act == "elu":
        return activations.ELU(alpha)
    return activations.get(act)
