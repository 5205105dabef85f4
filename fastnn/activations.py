"""Activations by name, each a small object naming its kernel and its slope.

Every activation runs in the typed kernels of ``fastnn._kernels.activations``; this
module only resolves names and options. ``prelu`` (a learnable slope per unit) is the
`fastnn.layers.PReLU` layer and ``maxout`` the `fastnn.layers.Maxout` layer.
"""
import numpy as np

from fastnn import _registry
from fastnn._validation import check_real
from fastnn._kernels import activations as _kernels
from fastnn._validation import check_real

__all__ = ["Activation", "LeakyReLU", "ELU", "GELU", "BinaryStep", "get", "serialize",
           "argmax", "NAMES"]

# Activations whose derivative needs the pre-activation z; the others read it off y = act(z)
# (relu, elu and selu through the sign of y, which is the sign of z).
_NEEDS_PREACT = frozenset({"gelu", "gelu_tanh", "swish", "softplus", "prelu"})


class Activation:
    """An activation applied by kernel `kernel` with slope `alpha` (where it has one).

    Parameters
    ----------
    kernel : str
        A kernel name from ``fastnn._kernels.activations.CODES``.
    alpha : float, optional
        Negative slope (leaky_relu) or saturation (elu).
    """

    def __init__(self, kernel="linear", alpha=None):
        _kernels.activation_code(kernel)
        if kernel == "prelu":
            raise ValueError("prelu learns a slope per unit: use the PReLU layer")
        if alpha is not None:
            check_real(alpha, "activation alpha")
        self.kernel = kernel
        self.alpha = alpha

    @property
    def name(self):
        return self.kernel

    @property
    def needs_preact(self):
        """True when backward needs z = X @ W + b and not only y = act(z)."""
        return self.kernel in _NEEDS_PREACT or (
            self.kernel == "leaky_relu" and self.alpha is not None and self.alpha <= 0)

    def __call__(self, x):
        """act(x) for an array of shape (n,) or (rows, cols)."""
        return _kernels.activation_forward(x, self.kernel, alpha=self.alpha)

    def backward(self, dy, z, y):
        """dy * act'(z), with y = act(z)."""
        return _kernels.activation_backward(dy, z, y, self.kernel, alpha=self.alpha)

    def get_config(self):
        return {"kernel": self.kernel, "alpha": self.alpha}

    def __eq__(self, other):
        return (isinstance(other, Activation) and self.kernel == other.kernel
                and self.alpha == other.alpha)

    def __repr__(self):
        return f"{type(self).__name__}({self.kernel!r}, alpha={self.alpha!r})"


class LeakyReLU(Activation):
    """x if x > 0 else alpha * x."""

    def __init__(self, alpha=_kernels.DEFAULT_ALPHA["leaky_relu"]):
        super().__init__("leaky_relu", float(alpha))

    def get_config(self):
        return {"alpha": self.alpha}


class ELU(Activation):
    """x if x > 0 else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=_kernels.DEFAULT_ALPHA["elu"]):
        super().__init__("elu", check_real(alpha, "ELU alpha", low=0.0, closed="neither"))

    def get_config(self):
        return {"alpha": self.alpha}


class GELU(Activation):
    """x * Phi(x) (exact, with erf), or its tanh approximation when `approximate`."""

    def __init__(self, approximate=False):
        self.approximate = bool(approximate)
        super().__init__("gelu_tanh" if approximate else "gelu")

    def get_config(self):
        return {"approximate": self.approximate}


class BinaryStep(Activation):
    """1 if x >= 0 else 0; zero gradient, or the identity's with `straight_through`."""

    def __init__(self, straight_through=False):
        self.straight_through = bool(straight_through)
        super().__init__("binary_step_ste" if straight_through else "binary_step")

    def get_config(self):
        return {"straight_through": self.straight_through}


def _fixed(kernel, alpha=None):
    return lambda: Activation(kernel, alpha)


_TABLE = {
    "linear": _fixed("linear"),
    "identity": _fixed("linear"),
    "binary_step": BinaryStep,
    "sigmoid": _fixed("sigmoid"),
    "tanh": _fixed("tanh"),
    "relu": _fixed("relu"),
    "leaky_relu": LeakyReLU,
    "elu": ELU,
    "selu": _fixed("selu"),
    "gelu": GELU,
    "gelu_tanh": lambda: GELU(approximate=True),
    "swish": _fixed("swish"),
    "silu": _fixed("swish"),
    "softplus": _fixed("softplus"),
    "softmax": _fixed("softmax"),
    # class names, so that serialize() round-trips
    "activation": Activation,
    "leakyrelu": LeakyReLU,
    "binarystep": BinaryStep,
}

NAMES = tuple(sorted(k for k in _TABLE if k not in ("activation", "leakyrelu", "binarystep")))
"""Activation names accepted by `get` (and by ``Dense(activation=...)``)."""


def get(identifier):
    """An `Activation` from a name, an instance, a config dict, or None (linear)."""
    if identifier is None:
        return Activation("linear")
    return _registry.get(identifier, _TABLE, "activation", Activation)


def serialize(activation):
    return _registry.serialize(activation)


def argmax(x):
    """Index of the largest entry of each row, as int64 of shape (rows,)."""
    return _kernels.argmax(np.asarray(x))
