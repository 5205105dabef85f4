"""Weight constraints: projections applied to the weights after each update.

A constraint ``c`` is called as ``c(w)``: it changes the array ``w`` in place and
returns it.
"""
import numbers

import numpy as np

from fastnn import _registry
from fastnn._validation import check_real

__all__ = ["Constraint", "MaxNorm", "NonNeg", "UnitNorm", "get", "serialize"]


class Constraint(_registry.Configurable):
    """Base class: subclasses implement ``__call__(w)`` and `get_config`."""

    def __call__(self, w):
        """Constrain `w` in place.

        Parameters
        ----------
        w : ndarray
            A writeable floating array.

        Returns
        -------
        ndarray
            `w` itself.
        """
        raise NotImplementedError



class MaxNorm(Constraint):
    """Vectors with an L2 norm above `max_value` are scaled down to norm `max_value`.

    Vectors within the bound are left exactly as they are.

    Parameters
    ----------
    max_value : float, default 3.0
        Positive.
    axis : int or tuple of int, default 0
        Axes the norm is taken over. For a kernel of shape ``(n_in, n_out)``, 0 makes
        each unit's incoming weights (a column) one vector.
    """

    def __init__(self, max_value=3.0, axis=0):
        self.max_value = check_real(max_value, "max_value", low=0.0, closed="neither")
        self.axis = _check_axis(axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        too_long = norms > self.max_value
        np.multiply(w, self.max_value / np.where(too_long, norms, 1), out=w, where=too_long)
        return w

    def get_config(self):
        return {"max_value": self.max_value, "axis": self.axis}


class NonNeg(Constraint):
    """Negative weights are set to zero."""

    def __call__(self, w):
        np.maximum(w, 0, out=w)
        return w


class UnitNorm(Constraint):
    """Each vector is scaled to an L2 norm of 1; all-zero vectors stay zero.

    Parameters
    ----------
    axis : int or tuple of int, default 0
        Axes the norm is taken over, as in `MaxNorm`.
    """

    def __init__(self, axis=0):
        self.axis = _check_axis(axis)

    def __call__(self, w):
        norms = _norms(w, self.axis)
        np.divide(w, norms, out=w, where=norms > 0)
        return w

    def get_config(self):
        return {"axis": self.axis}


def _norms(w, axis):
    if not isinstance(w, np.ndarray) or w.dtype.kind != "f":
        raise TypeError("a constraint works in place on a floating ndarray")
    axis = tuple(axis) if isinstance(axis, list) else axis
    return np.sqrt(np.square(w).sum(axis=axis, keepdims=True))


def _check_axis(axis):
    """An int, or a list of ints (JSON has no tuples)."""
    if isinstance(axis, numbers.Integral) and not isinstance(axis, bool):
        return int(axis)
    axes = list(axis) if isinstance(axis, (list, tuple)) else None
    if not axes or not all(isinstance(a, numbers.Integral) and not isinstance(a, bool)
                           for a in axes):
        raise ValueError(f"axis must be an int or a sequence of ints, got {axis!r}")
    return [int(a) for a in axes]


_TABLE = {cls.__name__.lower(): cls for cls in (MaxNorm, NonNeg, UnitNorm)}
_TABLE.update({"max_norm": MaxNorm, "non_neg": NonNeg, "unit_norm": UnitNorm})


def get(identifier):
    """Resolve a constraint.

    Parameters
    ----------
    identifier : str, dict, Constraint or None
        A registered name (``"max_norm"``, ``"non_neg"``, ``"unit_norm"``...), a
        config dict as written by `serialize`, an instance (returned as is), or None.

    Returns
    -------
    Constraint or None

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    if identifier is None:
        return None
    return _registry.get(identifier, _TABLE, "constraint", Constraint)


serialize = _registry.serialize
