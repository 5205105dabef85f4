"""Argument checks shared by the kernels' Python entry points."""
import numpy as np

from fastnn._kernels._finite import is_finite
from fastnn._kernels._threads import capped, get_num_threads

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(x, name, dtype=None, ndim=None, cast=False):
    """`x` as a C-ordered float32 or float64 array: the one conversion of arrays given to
    fastnn, by the kernels' entry points and (through `as_input`) the model and engine.

    Integers and booleans are converted (to `dtype`, else float64); a float array of
    another precision than `dtype` is converted with `cast`, else raises TypeError naming
    `name`, as anything non-numeric does. `ndim` (an int or a tuple of ints) is checked
    with a ValueError.
    """
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"{name} is not a regular numeric array: {exc}") from None
    want = np.dtype(dtype) if dtype is not None else None
    kind = x.dtype.kind
    if kind in "biu":
        x = x.astype(want if want is not None else np.float64)
    elif kind == "f":
        if want is not None and x.dtype != want:
            if not cast:
                raise TypeError(f"{name} has dtype {x.dtype}, expected {want}")
            with np.errstate(over="ignore"):  # beyond float32's range: inf, for the caller
                x = x.astype(want)
        elif x.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} has dtype {x.dtype}; fastnn computes in float32 or float64")
    else:
        raise TypeError(f"{name} has dtype {x.dtype}; expected a real numeric array")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            want_dims = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {want_dims}, got shape {x.shape}")
    return np.ascontiguousarray(x)


def as_input(X, dtype, name="X", allow_empty=True):
    """The samples `X` of a model or engine call, as a C-ordered 2-D array of `dtype`.

    One rule for every public entry point that takes samples (`Sequential.fit`,
    `evaluate`, `predict` and `InferenceEngine.predict` alike):

    - X is a real numeric array (booleans, integers or floats; else TypeError),
      converted to `dtype` whatever its precision;
    - X is 2-D, (samples, features). A 1-D array is refused with a ValueError, since it
      could be one sample or one feature: ``X.reshape(1, -1)`` for one sample,
      ``X.reshape(-1, 1)`` for one feature;
    - X holds no NaN and no infinity (ValueError);
    - X may have no rows (an empty batch) unless `allow_empty` is False.

    The caller checks the number of features, against what it was built for.
    """
    X = as_float_array(X, name, dtype, cast=True)
    if X.ndim != 2:
        hint = (f": use {name}.reshape(1, -1) for one sample or {name}.reshape(-1, 1) for one "
                f"feature" if X.ndim == 1 else "")
        raise ValueError(f"{name} has shape {X.shape}; expected a 2-D array (samples, "
                         f"features){hint}")
    if not allow_empty and X.shape[0] == 0:
        raise ValueError(f"{name} is empty (shape {X.shape})")
    if not is_finite(X):
        raise ValueError(f"{name} contains NaN or infinite values")
    return X


def check_out(out, name, shape, dtype):
    """A fresh array for `out=None`, else `out` checked to be a writeable C-ordered match."""
    if out is None:
        return np.empty(shape, dtype=dtype)
    if not isinstance(out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"{name} has dtype {out.dtype}, expected {np.dtype(dtype)}")
    if out.shape != tuple(shape):
        raise ValueError(f"{name} has shape {out.shape}, expected {tuple(shape)}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array")
    return out


def check_bias(b, n_out, dtype):
    """The bias `b` of a layer of `n_out` outputs as a C-ordered 1-D array of `dtype`, or
    None: its shape checked with a ValueError."""
    if b is None:
        return None
    b = as_float_array(b, "b", dtype=dtype, ndim=1)
    if b.shape[0] != n_out:
        raise ValueError(f"b has shape {b.shape}, expected ({n_out},)")
    return b


def resolve_threads(n_threads):
    """The thread count for one kernel call: the global setting unless `n_threads` is given,
    never more than the CPUs the process may run on."""
    if n_threads is None:
        return get_num_threads()
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
        raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}")
    return capped(n_threads)
