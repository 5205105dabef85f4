"""PyTorch to fastnn and back: `from_torch` and `to_torch`.

`from_torch` reads a ``torch.nn.Sequential`` (nested ones flattened) through
`MODULES`, a table from module class name to a small function returning steps of
`fastnn.interop._chain`; `to_torch` writes each fastnn layer as the modules of
`ACTIVATION_MODULES` and `torch.nn.Linear`, `PReLU`, `BatchNorm1d` and `Dropout`.
"""
from collections.abc import Mapping

import numpy as np

from fastnn import layers as L
from fastnn.interop._chain import (build, log_softmax_steps, require, softmax_steps,
                                  supported_message)

__all__ = ["from_torch", "to_torch", "MODULES"]

SOFTPLUS_MIN_THRESHOLD = 15.0
"""torch's Softplus is x above its threshold; from 15 on that differs from softplus by
less than exp(-15) = 3e-7 absolute, below float32 resolution of the output."""


def _numpy(tensor):
    return tensor.detach().cpu().numpy()


def _linear(m, where):
    return [("dense", _numpy(m.weight).T, None if m.bias is None else _numpy(m.bias))]


def _act(name, alpha=None):
    return lambda m, where: [("activation", name, alpha(m) if alpha else None)]


def _gelu(m, where):
    if m.approximate not in ("none", "tanh"):
        raise ValueError(f"{where}: GELU(approximate={m.approximate!r}) is not supported")
    return [("activation", "gelu_tanh" if m.approximate == "tanh" else "gelu", None)]


def _softplus(m, where):
    if m.beta != 1 or m.threshold < SOFTPLUS_MIN_THRESHOLD:
        raise ValueError(f"{where}: Softplus(beta={m.beta}, threshold={m.threshold}); fastnn's "
                         f"softplus is beta=1 with threshold >= {SOFTPLUS_MIN_THRESHOLD:g}")
    return [("activation", "softplus", None)]


def _elu(m, where):
    if m.alpha <= 0:
        raise ValueError(f"{where}: ELU(alpha={m.alpha}); fastnn's elu needs alpha > 0")
    return [("activation", "elu", float(m.alpha))]


def _prelu(m, where):
    return [("prelu", _numpy(m.weight))]


def _batchnorm(m, where):
    if m.running_mean is None or m.running_var is None:
        raise ValueError(f"{where}: BatchNorm1d without running statistics "
                         f"(track_running_stats=False) normalises by each batch at inference")
    n = m.num_features
    gamma = np.ones(n) if m.weight is None else _numpy(m.weight)
    beta = np.zeros(n) if m.bias is None else _numpy(m.bias)
    return [("batchnorm", gamma, beta, _numpy(m.running_mean), _numpy(m.running_var), m.eps,
             m.momentum)]


def _dropout(m, where):
    return [("dropout", m.p)] if 0 < m.p < 1 else []


def _flatten(m, where):
    if m.start_dim != 1 or m.end_dim != -1:
        raise ValueError(f"{where}: Flatten(start_dim={m.start_dim}, end_dim={m.end_dim}); "
                         f"fastnn reads (batch, features) data, where only Flatten() (start_dim=1)"
                         f" keeps the batch axis")
    return []


MODULES = {
    "Linear": _linear,
    "ReLU": _act("relu"),
    "LeakyReLU": _act("leaky_relu", lambda m: float(m.negative_slope)),
    "PReLU": _prelu,
    "ELU": _elu,
    "SELU": _act("selu"),
    "GELU": _gelu,
    "SiLU": _act("swish"),
    "Sigmoid": _act("sigmoid"),
    "Tanh": _act("tanh"),
    "Softplus": _softplus,
    "Softmax": lambda m, where: softmax_steps(m.dim, where, "dim"),
    "LogSoftmax": lambda m, where: log_softmax_steps(where),
    "BatchNorm1d": _batchnorm,
    "Dropout": _dropout,
    "Identity": lambda m, where: [],
    "Flatten": _flatten,
}
"""torch.nn module class name -> converter (module, where) -> steps."""


def _flatten_modules(module, prefix, torch):
    if isinstance(module, torch.nn.Sequential):
        for name, child in module.named_children():
            yield from _flatten_modules(child, f"{prefix}.{name}" if prefix else name, torch)
    else:
        yield prefix or type(module).__name__, module


def from_torch(module, input_dim=None, *, sizes=None, activations=None):
    """A built `fastnn.Sequential` computing the PyTorch network `module` in eval mode.

    Parameters
    ----------
    module : torch.nn.Sequential, torch.nn.Module, or a state_dict
        A Sequential (nested ones flattened) of the modules in `MODULES`: Linear, ReLU,
        LeakyReLU, PReLU, ELU, SELU, GELU (exact and tanh), SiLU, Sigmoid, Tanh, Softplus
        (beta=1), Softmax (dim=-1 or 1), BatchNorm1d (its running statistics), Dropout,
        Identity, Flatten. Or the ``state_dict()`` of a stack of Linear layers, described
        by `sizes` and `activations`.
    input_dim : int, optional
        Number of input features; read from the first Linear (or BatchNorm1d) when omitted.
    sizes : list of int, with a state_dict
        ``[n_in, hidden..., n_out]``: the Linear layers' widths, checked against the weights.
    activations : list of str or None, with a state_dict
        One fastnn activation name per Linear layer (None or "linear" for none), e.g.
        ``["relu", "relu", "softmax"]``.

    Returns
    -------
    Sequential
        float64 when the weights are float64, else float32.
    """
    torch = require("torch", "torch (see https://pytorch.org)")
    if isinstance(module, Mapping):
        steps, dtype = _state_dict_steps(module, sizes, activations, torch)
    else:
        if sizes is not None or activations is not None:
            raise ValueError("sizes and activations describe a state_dict; a module "
                             "describes itself")
        if not isinstance(module, torch.nn.Module):
            raise TypeError(f"expected a torch.nn.Module or a state_dict, got "
                            f"{type(module).__name__}")
        steps = []
        for where, m in _flatten_modules(module, "", torch):
            convert = MODULES.get(type(m).__name__)
            if convert is None or not isinstance(m, getattr(torch.nn, type(m).__name__)):
                raise ValueError(f"module {where!r} ({type(m).__name__}) is not supported; "
                                 f"{supported_message(MODULES)}")
            steps += convert(m, f"module {where!r} ({type(m).__name__})")
        params = list(module.parameters())
        dtype = np.float64 if params and params[0].dtype == torch.float64 else np.float32
    width = _first_width(steps)
    if input_dim is None:
        if width is None:
            raise ValueError("the network has no Linear layer to read the input width from: "
                             "give input_dim")
        input_dim = width
    elif width is not None and width != input_dim:
        raise ValueError(f"input_dim={input_dim} but the first layer takes {width} features")
    return build(steps, input_dim, dtype, name="from_torch")


def _first_width(steps):
    for step in steps:
        if step[0] == "dense":
            return step[1].shape[0]
        if step[0] in ("prelu", "batchnorm") and np.size(step[1]) > 1:
            return np.size(step[1])
    return None


def _state_dict_steps(state, sizes, activations, torch):
    """Steps of a Linear stack from its state_dict: `*.weight` (out, in) and `*.bias` pairs."""
    if sizes is None or activations is None:
        raise ValueError("a state_dict needs sizes=[n_in, ..., n_out] and one activation "
                         "name per Linear layer")
    weights = [k for k, v in state.items() if k.endswith("weight") and v.ndim == 2]
    if len(weights) != len(sizes) - 1 or len(activations) != len(weights):
        raise ValueError(f"the state_dict holds {len(weights)} Linear weights; sizes names "
                         f"{len(sizes) - 1} layers and activations {len(activations)}")
    unknown = set(state) - set(weights) - {k[:-len("weight")] + "bias" for k in weights}
    if unknown:
        raise ValueError(f"the state_dict holds tensors that are not Linear weights or biases: "
                         f"{sorted(unknown)[:5]}")
    steps = []
    for k, (key, act) in enumerate(zip(weights, activations)):
        W = _numpy(state[key])
        if W.shape != (sizes[k + 1], sizes[k]):
            raise ValueError(f"{key} has shape {W.shape}; sizes say ({sizes[k + 1]}, {sizes[k]})")
        bias = state.get(key[:-len("weight")] + "bias")
        steps.append(("dense", W.T, None if bias is None else _numpy(bias)))
        steps.append(("activation", "linear" if act is None else act, None))
    dtype = np.float64 if state[weights[0]].dtype == torch.float64 else np.float32
    return steps, dtype


# -- fastnn -> torch ----------------------------------------------------------------

def _activation_modules(activation, nn):
    kernel = activation.kernel
    if kernel == "linear":
        return []
    table = {
        "relu": lambda: nn.ReLU(),
        "leaky_relu": lambda: nn.LeakyReLU(activation.alpha),
        "elu": lambda: nn.ELU(activation.alpha),
        "selu": lambda: nn.SELU(),
        "sigmoid": lambda: nn.Sigmoid(),
        "tanh": lambda: nn.Tanh(),
        "gelu": lambda: nn.GELU(),
        "gelu_tanh": lambda: nn.GELU(approximate="tanh"),
        "swish": lambda: nn.SiLU(),
        "softplus": lambda: nn.Softplus(),
        "softmax": lambda: nn.Softmax(dim=-1),
    }
    if kernel not in table:
        raise ValueError(f"activation {kernel!r} has no torch.nn module; "
                         f"{supported_message(table)}")
    return [table[kernel]()]


def to_torch(model):
    """A ``torch.nn.Sequential`` (eval mode) with `model`'s layers, weights and outputs.

    Dense becomes Linear followed by its activation's module, PReLU a PReLU with one slope
    per unit, BatchNormalization a BatchNorm1d with its running statistics, Dropout a
    Dropout; float64 models give float64 modules. Maxout, GaussianNoise and the binary
    step have no torch.nn module and raise ValueError.
    """
    torch = require("torch", "torch (see https://pytorch.org)")
    from fastnn.model import Sequential
    if not isinstance(model, Sequential):
        raise TypeError(f"to_torch takes a fastnn.Sequential, got {type(model).__name__}")
    model.require_built("to_torch")
    nn = torch.nn
    kw = {"dtype": torch.float64 if model.dtype == np.float64 else torch.float32}
    modules = []
    for layer in model.layers:
        where = f"layer {layer.name!r} ({type(layer).__name__})"
        if isinstance(layer, L.Maxout) or isinstance(layer, L.GaussianNoise):
            raise ValueError(f"{where} has no torch.nn module")
        if isinstance(layer, L.Dense):
            linear = nn.Linear(layer.input_dim, layer.units, bias=layer.use_bias, **kw)
            _assign(linear.weight, layer.kernel.T, torch)
            if layer.use_bias:
                _assign(linear.bias, layer.bias, torch)
            modules += [linear] + _activation_modules(layer.activation, nn)
        elif isinstance(layer, L.Activation):
            modules += _activation_modules(layer.activation, nn)
        elif isinstance(layer, L.PReLU):
            prelu = nn.PReLU(layer.input_dim, **kw)
            _assign(prelu.weight, layer.alpha, torch)
            modules.append(prelu)
        elif isinstance(layer, L.BatchNormalization):
            bn = nn.BatchNorm1d(layer.input_dim, eps=layer.eps, momentum=layer.momentum, **kw)
            for target, value in ((bn.weight, layer.gamma), (bn.bias, layer.beta),
                                  (bn.running_mean, layer.running_mean),
                                  (bn.running_var, layer.running_var)):
                _assign(target, value, torch)
            modules.append(bn)
        elif isinstance(layer, L.Dropout):
            modules.append(nn.Dropout(layer.rate))
        else:
            raise ValueError(f"{where} has no torch.nn module")
    return nn.Sequential(*modules).eval()


def _assign(target, value, torch):
    with torch.no_grad():
        target.copy_(torch.from_numpy(np.ascontiguousarray(value)))
