"""Weight regularizers: a penalty added to the loss and its gradient.

A regularizer ``r`` gives ``r.penalty(w)`` (a float added to the loss) and
``r.gradient(w)`` (d penalty / d w, an array of the shape and dtype of ``w``); the
training loop adds the gradient to the weight's with ``r.add_gradient(w, grad)``, which
regularizers may do in place without making the array.
"""

import numpy as np

from fastnn import _registry
from fastnn._validation import check_real

__all__ = ["Regularizer", "L1L2", "L1", "L2", "GroupLasso", "get", "serialize"]


class Regularizer(_registry.Configurable):
    """Base class: subclasses implement `penalty`, `gradient` and `get_config`."""

    def penalty(self, w):
        """The value added to the loss.

        Parameters
        ----------
        w : ndarray

        Returns
        -------
        float
        """
        raise NotImplementedError

    def gradient(self, w):
        """d penalty / d w.

        Parameters
        ----------
        w : ndarray

        Returns
        -------
        ndarray of the shape and dtype of `w`
        """
        raise NotImplementedError

    def add_gradient(self, w, out):
        """``out += gradient(w)``, in place.

        Parameters
        ----------
        w : ndarray
        out : ndarray of the shape and dtype of `w`
        """
        out += self.gradient(w)



class L1L2(Regularizer):
    """``penalty(w) = l1 * sum(|w|) + l2 * sum(w**2)``.

    The gradient is ``l1 * sign(w) + 2 * l2 * w``, taking ``sign(0) = 0``.

    Parameters
    ----------
    l1 : float, default 0.0
        Non-negative.
    l2 : float, default 0.0
        Non-negative.
    """

    def __init__(self, l1=0.0, l2=0.0):
        self.l1 = check_real(l1, "l1", low=0.0)
        self.l2 = check_real(l2, "l2", low=0.0)

    def penalty(self, w):
        w = np.asarray(w)
        total = 0.0
        if self.l1:
            total += self.l1 * float(np.abs(w).sum(dtype=np.float64))
        if self.l2:
            flat = w.reshape(-1)
            total += self.l2 * float(np.dot(flat, flat))  # in w's dtype, as scikit-learn's
        return total

    def gradient(self, w):
        w = np.asarray(w)
        grad = np.zeros_like(w)
        if self.l1:
            grad += self.l1 * np.sign(w)
        if self.l2:
            grad += (2.0 * self.l2) * w
        return grad

    def add_gradient(self, w, out):
        # the training step's path: no zeroed array, one pass per term
        if self.l1:
            out += self.l1 * np.sign(w)
        if self.l2:
            out += (2.0 * self.l2) * np.asarray(w)

    def get_config(self):
        return {"l1": self.l1, "l2": self.l2}


class L1(L1L2):
    """``penalty(w) = l1 * sum(|w|)``: `L1L2` with ``l2 = 0``.

    Parameters
    ----------
    l1 : float, default 0.01
        Non-negative.
    """

    def __init__(self, l1=0.01):
        super().__init__(l1=l1)

    def get_config(self):
        return {"l1": self.l1}


class L2(L1L2):
    """``penalty(w) = l2 * sum(w**2)``: `L1L2` with ``l1 = 0``.

    Parameters
    ----------
    l2 : float, default 0.01
        Non-negative.
    """

    def __init__(self, l2=0.01):
        super().__init__(l2=l2)

    def get_config(self):
        return {"l2": self.l2}


class GroupLasso(Regularizer):
    """``penalty(w) = g * sum_j ||w[:, j]||_2``: drives whole units to zero.

    For a kernel of shape ``(n_in, n_out)`` the groups are the columns, each unit's
    incoming weights (a 1-D ``w`` is one group). The gradient is
    ``g * w[:, j] / ||w[:, j]||``, and zero for an all-zero column.

    Parameters
    ----------
    g : float, default 0.01
        Non-negative.
    """

    def __init__(self, g=0.01):
        self.g = check_real(g, "g", low=0.0)

    def penalty(self, w):
        return self.g * float(_column_norms(w).sum(dtype=np.float64))

    def gradient(self, w):
        w = np.asarray(w)
        norms = _column_norms(w)
        grad = np.zeros_like(w)
        np.divide(w, norms, out=grad, where=norms > 0)
        grad *= self.g
        return grad

    def get_config(self):
        return {"g": self.g}


def _column_norms(w):
    """L2 norms over axis 0, kept as a leading axis of length 1 for broadcasting."""
    return np.sqrt(np.square(np.asarray(w)).sum(axis=0, keepdims=True))


_TABLE = {cls.__name__.lower(): cls for cls in (L1, L2, L1L2, GroupLasso)}
_TABLE.update({"l1_l2": L1L2, "group_lasso": GroupLasso})


def get(identifier):
    """Resolve a regularizer.

    Parameters
    ----------
    identifier : str, dict, Regularizer or None
        A registered name (``"l1"``, ``"l2"``, ``"l1l2"``, ``"group_lasso"``...), a
        config dict as written by `serialize`, an instance (returned as is), or None.

    Returns
    -------
    Regularizer or None

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    if identifier is None:
        return None
    return _registry.get(identifier, _TABLE, "regularizer", Regularizer)


serialize = _registry.serialize
