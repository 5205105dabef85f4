"""Weight initializers: callables that make a new array of a given shape and dtype.

Every initializer is ``init(shape, dtype="float32", rng=None)``. Random draws are made
in float64 with `rng` (a ``numpy.random.Generator``) and then cast, so one seed gives
the same values, up to rounding, in float32 and float64.

Glorot, He and LeCun are `VarianceScaling` with fixed arguments.
"""
import math
import numbers

import numpy as np

from fastnn import _registry
from fastnn._validation import check_choice, check_real

__all__ = [
    "Initializer", "Zeros", "Ones", "Constant", "RandomNormal", "RandomUniform",
    "TruncatedNormal", "VarianceScaling", "GlorotUniform", "GlorotNormal", "HeUniform",
    "HeNormal", "LecunUniform", "LecunNormal", "compute_fans", "get", "serialize",
]

# Standard deviation of a standard normal truncated to [-2, 2].
_TRUNCATED_STDDEV = 0.87962566103423978


class Initializer(_registry.Configurable):
    """Base class: ``init(shape, dtype, rng)`` returns a new array.

    Subclasses implement ``_sample(shape, rng)``, returning a float64 array (or a
    scalar broadcast to `shape`), and ``get_config()``.
    """

    def __call__(self, shape, dtype="float32", rng=None):
        """A new array of initial values.

        Parameters
        ----------
        shape : int or tuple of int
            Shape of the array, e.g. ``(n_in, n_out)`` for a dense kernel.
        dtype : str or numpy dtype, default "float32"
            A floating dtype.
        rng : numpy.random.Generator, optional
            Source of randomness; None uses ``numpy.random.default_rng()``.

        Returns
        -------
        ndarray of shape `shape` and dtype `dtype`
        """
        shape = _check_shape(shape)
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise ValueError(f"dtype must be a floating dtype, got {dtype}")
        if rng is None:
            rng = np.random.default_rng()
        elif not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator or None, got {rng!r}")
        out = np.empty(shape, dtype=dtype)
        out[...] = self._sample(shape, rng)
        return out

    def _sample(self, shape, rng):
        raise NotImplementedError



class Constant(Initializer):
    """Every element equal to `value`.

    Parameters
    ----------
    value : float, default 0.0
    """

    def __init__(self, value=0.0):
        self.value = check_real(value, "value")

    def _sample(self, shape, rng):
        return self.value

    def get_config(self):
        return {"value": self.value}


class Zeros(Constant):
    """Every element 0."""

    def __init__(self):
        super().__init__(0.0)

    def get_config(self):
        return {}


class Ones(Constant):
    """Every element 1."""

    def __init__(self):
        super().__init__(1.0)

    def get_config(self):
        return {}


class RandomNormal(Initializer):
    """Normal draws, ``N(mean, stddev**2)``.

    Parameters
    ----------
    mean : float, default 0.0
    stddev : float, default 0.05
        Non-negative.
    """

    def __init__(self, mean=0.0, stddev=0.05):
        self.mean = check_real(mean, "mean")
        self.stddev = check_real(stddev, "stddev", low=0.0)

    def _sample(self, shape, rng):
        return rng.normal(self.mean, self.stddev, size=shape)

    def get_config(self):
        return {"mean": self.mean, "stddev": self.stddev}


class TruncatedNormal(RandomNormal):
    """Normal draws with values beyond ``mean ± 2 stddev`` drawn again.

    The result's standard deviation is about ``0.88 * stddev``.

    Parameters
    ----------
    mean : float, default 0.0
    stddev : float, default 0.05
        Non-negative; the standard deviation before truncation.
    """

    def _sample(self, shape, rng):
        return self.mean + self.stddev * _truncated_standard_normal(shape, rng)


class RandomUniform(Initializer):
    """Uniform draws on ``[minval, maxval)``.

    Parameters
    ----------
    minval : float, default -0.05
    maxval : float, default 0.05
        Not below `minval`.
    """

    def __init__(self, minval=-0.05, maxval=0.05):
        self.minval = check_real(minval, "minval")
        self.maxval = check_real(maxval, "maxval", low=self.minval)

    def _sample(self, shape, rng):
        return rng.uniform(self.minval, self.maxval, size=shape)

    def get_config(self):
        return {"minval": self.minval, "maxval": self.maxval}


class VarianceScaling(Initializer):
    """Draws with variance ``scale / n``, n set by the fans of the shape.

    For a kernel of shape ``(..., n_in, n_out)`` with receptive field
    ``r = prod(shape[:-2])``, ``fan_in = r * n_in`` and ``fan_out = r * n_out``; a 1-D
    shape ``(k,)`` has ``fan_in = fan_out = k``.

    Parameters
    ----------
    scale : float, default 1.0
        Positive.
    mode : {"fan_in", "fan_out", "fan_avg"}, default "fan_in"
        n is ``fan_in``, ``fan_out`` or ``(fan_in + fan_out) / 2``.
    distribution : {"truncated_normal", "untruncated_normal", "uniform"}
        ``"truncated_normal"`` (the default) cuts a normal at two standard deviations
        with ``stddev = sqrt(scale / n) / 0.8796...`` so that the variance after the
        cut is ``scale / n``; ``"untruncated_normal"`` has ``stddev = sqrt(scale / n)``;
        ``"uniform"`` draws on ``[-limit, limit)`` with ``limit = sqrt(3 scale / n)``.
    """

    _MODES = ("fan_in", "fan_out", "fan_avg")
    _DISTRIBUTIONS = ("truncated_normal", "untruncated_normal", "uniform")

    def __init__(self, scale=1.0, mode="fan_in", distribution="truncated_normal"):
        self.scale = check_real(scale, "scale", low=0.0, closed="neither")
        self.mode = check_choice(mode, "mode", self._MODES)
        self.distribution = check_choice(distribution, "distribution", self._DISTRIBUTIONS)

    def _sample(self, shape, rng):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        stddev = math.sqrt(self.scale / max(1.0, n))
        if self.distribution == "truncated_normal":
            return (stddev / _TRUNCATED_STDDEV) * _truncated_standard_normal(shape, rng)
        if self.distribution == "untruncated_normal":
            return rng.normal(0.0, stddev, size=shape)
        limit = math.sqrt(3.0) * stddev
        return rng.uniform(-limit, limit, size=shape)

    def get_config(self):
        return {"scale": self.scale, "mode": self.mode, "distribution": self.distribution}


class _FixedVarianceScaling(VarianceScaling):
    """`VarianceScaling` with its arguments fixed by the class attribute ``_args``."""

    _args = ()

    def __init__(self):
        super().__init__(*self._args)

    def get_config(self):
        return {}


class GlorotUniform(_FixedVarianceScaling):
    """Glorot (Xavier) uniform: ``VarianceScaling(1.0, "fan_avg", "uniform")``."""

    _args = (1.0, "fan_avg", "uniform")


class GlorotNormal(_FixedVarianceScaling):
    """Glorot (Xavier) normal: ``VarianceScaling(1.0, "fan_avg", "truncated_normal")``."""

    _args = (1.0, "fan_avg", "truncated_normal")


class HeUniform(_FixedVarianceScaling):
    """He uniform: ``VarianceScaling(2.0, "fan_in", "uniform")``."""

    _args = (2.0, "fan_in", "uniform")


class HeNormal(_FixedVarianceScaling):
    """He normal: ``VarianceScaling(2.0, "fan_in", "truncated_normal")``."""

    _args = (2.0, "fan_in", "truncated_normal")


class LecunUniform(_FixedVarianceScaling):
    """LeCun uniform: ``VarianceScaling(1.0, "fan_in", "uniform")``."""

    _args = (1.0, "fan_in", "uniform")


class LecunNormal(_FixedVarianceScaling):
    """LeCun normal: ``VarianceScaling(1.0, "fan_in", "truncated_normal")``."""

    _args = (1.0, "fan_in", "truncated_normal")


def compute_fans(shape):
    """``(fan_in, fan_out)`` of a weight shape.

    Parameters
    ----------
    shape : tuple of int

    Returns
    -------
    fan_in, fan_out : int
        ``(1, 1)`` for a scalar, ``(k, k)`` for ``(k,)``, and for ``(..., n_in, n_out)``
        ``(r * n_in, r * n_out)`` with ``r = prod(shape[:-2])``.
    """
    shape = _check_shape(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive = math.prod(shape[:-2])
    return receptive * shape[-2], receptive * shape[-1]


def _truncated_standard_normal(shape, rng):
    """Standard normal draws, each one outside [-2, 2] drawn again until inside."""
    z = rng.standard_normal(size=shape)
    outside = np.flatnonzero(np.abs(z) > 2.0)
    flat = z.reshape(-1)
    while outside.size:
        flat[outside] = rng.standard_normal(size=outside.size)
        outside = outside[np.abs(flat[outside]) > 2.0]
    return z


def _check_shape(shape):
    if isinstance(shape, numbers.Integral):
        shape = (shape,)
    shape = tuple(shape)
    if not all(isinstance(d, numbers.Integral) and d >= 0 for d in shape):
        raise ValueError(f"shape must be a tuple of non-negative ints, got {shape!r}")
    return tuple(int(d) for d in shape)


_CLASSES = (Zeros, Ones, Constant, RandomNormal, RandomUniform, TruncatedNormal,
            VarianceScaling, GlorotUniform, GlorotNormal, HeUniform, HeNormal,
            LecunUniform, LecunNormal)
_TABLE = {cls.__name__.lower(): cls for cls in _CLASSES}
_TABLE.update({
    "random_normal": RandomNormal, "random_uniform": RandomUniform,
    "truncated_normal": TruncatedNormal, "variance_scaling": VarianceScaling,
    "glorot_uniform": GlorotUniform, "glorot_normal": GlorotNormal,
    "xavier_uniform": GlorotUniform, "xavier_normal": GlorotNormal,
    "he_uniform": HeUniform, "he_normal": HeNormal,
    "lecun_uniform": LecunUniform, "lecun_normal": LecunNormal,
})


def get(identifier):
    """Resolve an initializer.

    Parameters
    ----------
    identifier : str, dict, Initializer or real number
        A registered name (e.g. ``"he_normal"``), a config dict as written by
        `serialize`, an instance (returned as is), or a number ``v`` meaning
        ``Constant(v)``.

    Returns
    -------
    Initializer

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    if isinstance(identifier, numbers.Real) and not isinstance(identifier, bool):
        return Constant(identifier)
    return _registry.get(identifier, _TABLE, "initializer", Initializer)


serialize = _registry.serialize
