"""Activation kernels: forward, derivative, softmax, log-softmax, maxout and argmax.

Every elementwise activation is written once as a branch-free loop over a span, so
that the compiler vectorizes it (with glibc's vector libm where available).  The
same span functions serve the standalone kernels here and the fused bias and
activation pass of the dense kernels.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport (exp, expf, tanh, tanhf, erf, erff, log1p, log1pf, expm1, expm1f,
                        log, logf, sqrt)
from libc.string cimport memcpy, memset

cimport numpy as cnp

from fastnn._kernels._parallel cimport BLOCK, ROW_BLOCK, threads_for

import numpy as np

from fastnn._kernels._checks import as_float_array, check_out, resolve_threads

cnp.import_array()

cdef extern from "simd_math.h":
    pass

cdef double SELU_ALPHA = 1.6732632423543772
cdef double SELU_SCALE = 1.0507009873554805
cdef double SQRT_HALF = 0.70710678118654752440
cdef double INV_SQRT_2PI = 0.39894228040143267794
cdef double GELU_C = 0.79788456080286535588  # sqrt(2 / pi)
cdef double GELU_K = 0.044715

CODES = {
    "linear": ACT_LINEAR,
    "binary_step": ACT_BINARY_STEP,
    "binary_step_ste": ACT_BINARY_STEP_STE,
    "sigmoid": ACT_SIGMOID,
    "tanh": ACT_TANH,
    "relu": ACT_RELU,
    "leaky_relu": ACT_LEAKY_RELU,
    "prelu": ACT_PRELU,
    "elu": ACT_ELU,
    "selu": ACT_SELU,
    "gelu": ACT_GELU,
    "gelu_tanh": ACT_GELU_TANH,
    "swish": ACT_SWISH,
    "softplus": ACT_SOFTPLUS,
    "softmax": ACT_SOFTMAX,
}
"""Kernel code of each activation, by name."""

ROW_WISE = frozenset({"softmax", "prelu"})
"""Activations that need the row structure (softmax normalises a row, prelu has a slope per column)."""

DEFAULT_ALPHA = {"leaky_relu": 0.01, "elu": 1.0}
"""The slope of each activation that takes a scalar one, when none is given (else 0):
the one table, read by `fastnn.activations`, the engine and the numpy twins."""


cdef inline floating _exp(floating x) noexcept nogil:
    if floating is float:
        return expf(x)
    else:
        return exp(x)


cdef inline floating _expm1(floating x) noexcept nogil:
    if floating is float:
        return expm1f(x)
    else:
        return expm1(x)


cdef inline floating _log1p(floating x) noexcept nogil:
    if floating is float:
        return log1pf(x)
    else:
        return log1p(x)


cdef inline floating _log(floating x) noexcept nogil:
    if floating is float:
        return logf(x)
    else:
        return log(x)


cdef inline floating _tanh(floating x) noexcept nogil:
    if floating is float:
        return tanhf(x)
    else:
        return tanh(x)


cdef inline floating _erf(floating x) noexcept nogil:
    if floating is float:
        return erff(x)
    else:
        return erf(x)


cdef inline floating _abs(floating x) noexcept nogil:
    return x if x >= 0 else -x


cdef inline floating _sigmoid(floating z) noexcept nogil:
    # For z << 0, exp(-z) is +inf and the quotient an exact 0: no NaN, and no branch
    # to keep the loop from vectorizing.
    return 1 / (1 + _exp(-z))


cdef void act_forward_row(int act, const floating* z, floating* y, Py_ssize_t n,
                          const floating* alpha) noexcept nogil:
    """y := act(z) over one row of n elements (alpha: slope, per element for prelu)."""
    cdef Py_ssize_t j
    cdef floating v, a, m, s, u
    if act == ACT_LINEAR:
        if y != z:
            memcpy(y, z, n * sizeof(floating))
    elif act == ACT_BINARY_STEP or act == ACT_BINARY_STEP_STE:
        for j in range(n):
            y[j] = 1 if z[j] >= 0 else 0
    elif act == ACT_SIGMOID:
        for j in range(n):
            y[j] = _sigmoid(z[j])
    elif act == ACT_TANH:
        for j in range(n):
            y[j] = _tanh(z[j])
    elif act == ACT_RELU:
        for j in range(n):
            v = z[j]
            y[j] = 0 if v <= 0 else v
    elif act == ACT_LEAKY_RELU:
        a = alpha[0]
        for j in range(n):
            v = z[j]
            y[j] = v if v > 0 else a * v
    elif act == ACT_PRELU:
        for j in range(n):
            v = z[j]
            y[j] = v if v > 0 else alpha[j] * v
    elif act == ACT_ELU:
        a = alpha[0]
        for j in range(n):
            v = z[j]
            y[j] = v if v > 0 else a * _expm1(v if v < 0 else 0)
    elif act == ACT_SELU:
        a = <floating>(SELU_SCALE * SELU_ALPHA)
        s = <floating>SELU_SCALE
        for j in range(n):
            v = z[j]
            y[j] = s * v if v > 0 else a * _expm1(v if v < 0 else 0)
    elif act == ACT_GELU:
        for j in range(n):
            v = z[j]
            y[j] = <floating>0.5 * v * (1 + _erf(v * <floating>SQRT_HALF))
    elif act == ACT_GELU_TANH:
        for j in range(n):
            v = z[j]
            u = <floating>GELU_C * (v + <floating>GELU_K * v * v * v)
            y[j] = <floating>0.5 * v * (1 + _tanh(u))
    elif act == ACT_SWISH:
        for j in range(n):
            v = z[j]
            y[j] = v * _sigmoid(v)
    elif act == ACT_SOFTPLUS:
        for j in range(n):
            v = z[j]
            y[j] = (v if v > 0 else 0) + _log1p(_exp(-_abs(v)))
    elif act == ACT_SOFTMAX:
        if n == 0:
            return
        m = z[0]
        for j in range(1, n):
            if z[j] > m:
                m = z[j]
        s = 0
        for j in range(n):
            v = _exp(z[j] - m)
            y[j] = v
            s = s + v
        s = 1 / s
        for j in range(n):
            y[j] = y[j] * s


cdef void act_backward_row(int act, const floating* z, const floating* y,
                           const floating* dy, floating* dz, Py_ssize_t n,
                           const floating* alpha) noexcept nogil:
    """dz := dy * act'(z) over one row; reads z or y, whichever the derivative needs."""
    cdef Py_ssize_t j
    cdef floating v, a, s, t, u, c
    if act == ACT_LINEAR or act == ACT_BINARY_STEP_STE:
        if dz != dy:
            memcpy(dz, dy, n * sizeof(floating))
    elif act == ACT_BINARY_STEP:
        memset(dz, 0, n * sizeof(floating))
    elif act == ACT_SIGMOID:
        for j in range(n):
            v = y[j]
            dz[j] = dy[j] * v * (1 - v)
    elif act == ACT_TANH:
        for j in range(n):
            v = y[j]
            dz[j] = dy[j] * (1 - v * v)
    elif act == ACT_RELU:
        for j in range(n):
            dz[j] = dy[j] if z[j] > 0 else 0
    elif act == ACT_LEAKY_RELU:
        a = alpha[0]
        for j in range(n):
            dz[j] = dy[j] if z[j] > 0 else a * dy[j]
    elif act == ACT_PRELU:
        for j in range(n):
            dz[j] = dy[j] if z[j] > 0 else alpha[j] * dy[j]
    elif act == ACT_ELU:
        a = alpha[0]
        for j in range(n):
            dz[j] = dy[j] if z[j] > 0 else dy[j] * (y[j] + a)
    elif act == ACT_SELU:
        s = <floating>SELU_SCALE
        a = <floating>(SELU_SCALE * SELU_ALPHA)
        for j in range(n):
            dz[j] = s * dy[j] if z[j] > 0 else dy[j] * (y[j] + a)
    elif act == ACT_GELU:
        for j in range(n):
            v = z[j]
            dz[j] = dy[j] * (<floating>0.5 * (1 + _erf(v * <floating>SQRT_HALF))
                             + v * <floating>INV_SQRT_2PI * _exp(<floating>-0.5 * v * v))
    elif act == ACT_GELU_TANH:
        c = <floating>GELU_C
        for j in range(n):
            v = z[j]
            t = _tanh(c * (v + <floating>GELU_K * v * v * v))
            u = c * (1 + <floating>(3 * GELU_K) * v * v)
            dz[j] = dy[j] * (<floating>0.5 * (1 + t) + <floating>0.5 * v * (1 - t * t) * u)
    elif act == ACT_SWISH:
        for j in range(n):
            s = _sigmoid(z[j])
            dz[j] = dy[j] * (s + y[j] * (1 - s))
    elif act == ACT_SOFTPLUS:
        for j in range(n):
            dz[j] = dy[j] * _sigmoid(z[j])
    elif act == ACT_SOFTMAX:
        s = 0
        for j in range(n):
            s = s + dy[j] * y[j]
        for j in range(n):
            dz[j] = y[j] * (dy[j] - s)


cdef void act_forward_rows(int act, const floating* z, floating* y, Py_ssize_t rows,
                           Py_ssize_t cols, const floating* alpha, int n_threads) noexcept nogil:
    """Y := act(Z) for a C-ordered (rows, cols) block; Z and Y may be the same buffer."""
    cdef Py_ssize_t i, start, stop, total = rows * cols, nblocks
    cdef int nt = threads_for(total, n_threads)
    if act == ACT_SOFTMAX or act == ACT_PRELU:
        if nt == 1:
            # No OpenMP team for one thread: a team of one still meets at its barriers
            # (futex calls, 0.3-0.8 us), more than a small layer's activation.
            for i in range(rows):
                act_forward_row(act, z + i * cols, y + i * cols, cols, alpha)
            return
        for i in prange(rows, nogil=True, schedule="dynamic", chunksize=ROW_BLOCK,
                        num_threads=nt):
            act_forward_row(act, z + i * cols, y + i * cols, cols, alpha)
        return
    nblocks = (total + BLOCK - 1) // BLOCK
    if nt == 1:
        for i in range(nblocks):
            start = i * BLOCK
            stop = start + BLOCK if start + BLOCK < total else total
            act_forward_row(act, z + start, y + start, stop - start, alpha)
        return
    for i in prange(nblocks, nogil=True, schedule="dynamic", num_threads=nt):
        start = i * BLOCK
        stop = start + BLOCK if start + BLOCK < total else total
        act_forward_row(act, z + start, y + start, stop - start, alpha)


cdef void act_backward_rows(int act, const floating* z, const floating* y, const floating* dy,
                            floating* dz, Py_ssize_t rows, Py_ssize_t cols,
                            const floating* alpha, int n_threads) noexcept nogil:
    """dZ := dY * act'(Z) for a C-ordered (rows, cols) block; dZ may be dY's buffer."""
    cdef Py_ssize_t i, start, stop, total = rows * cols, nblocks
    cdef int nt = threads_for(total, n_threads)
    if act == ACT_SOFTMAX or act == ACT_PRELU:
        for i in prange(rows, nogil=True, schedule="dynamic", chunksize=ROW_BLOCK,
                        num_threads=nt, use_threads_if=nt > 1):
            act_backward_row(act, z + i * cols, y + i * cols, dy + i * cols, dz + i * cols,
                             cols, alpha)
        return
    nblocks = (total + BLOCK - 1) // BLOCK
    for i in prange(nblocks, nogil=True, schedule="dynamic", num_threads=nt,
                    use_threads_if=nt > 1):
        start = i * BLOCK
        stop = start + BLOCK if start + BLOCK < total else total
        act_backward_row(act, z + start, y + start, dy + start, dz + start,
                         stop - start, alpha)


# ---------------------------------------------------------------------------
# Python entry points: validate, make outputs, pick threads, call the nogil core.

# The `_into` functions run on arrays the caller made and checked (a layer's own buffers):
# they only read the data pointers.

def forward_into(int act, cnp.ndarray Z, cnp.ndarray Y, cnp.ndarray alpha, int n_threads):
    """Y := act(Z), unchecked.

    Contract: Z and Y are C-contiguous 2-D arrays of one shape and dtype (float32 or
    float64; Y may be Z); alpha is C-contiguous in that dtype, as `alpha_array` makes it.
    """
    cdef Py_ssize_t rows = cnp.PyArray_DIM(Z, 0), cols = cnp.PyArray_DIM(Z, 1)
    cdef void* z = cnp.PyArray_DATA(Z)
    cdef void* y = cnp.PyArray_DATA(Y)
    cdef void* a = cnp.PyArray_DATA(alpha)
    if rows * cols == 0:
        return
    if cnp.PyArray_TYPE(Z) == cnp.NPY_FLOAT:
        with nogil:
            act_forward_rows(act, <const float*>z, <float*>y, rows, cols, <const float*>a,
                             n_threads)
    else:
        with nogil:
            act_forward_rows(act, <const double*>z, <double*>y, rows, cols, <const double*>a,
                             n_threads)


def backward_into(int act, cnp.ndarray Z, cnp.ndarray Y, cnp.ndarray dY, cnp.ndarray dZ,
                  cnp.ndarray alpha, int n_threads):
    """dZ := dY * act'(Z), with Y = act(Z), unchecked (the contract of `forward_into`; dZ
    may be dY)."""
    cdef Py_ssize_t rows = cnp.PyArray_DIM(Z, 0), cols = cnp.PyArray_DIM(Z, 1)
    cdef void* z = cnp.PyArray_DATA(Z)
    cdef void* y = cnp.PyArray_DATA(Y)
    cdef void* dy = cnp.PyArray_DATA(dY)
    cdef void* dz = cnp.PyArray_DATA(dZ)
    cdef void* a = cnp.PyArray_DATA(alpha)
    if rows * cols == 0:
        return
    if cnp.PyArray_TYPE(Z) == cnp.NPY_FLOAT:
        with nogil:
            act_backward_rows(act, <const float*>z, <const float*>y, <const float*>dy,
                              <float*>dz, rows, cols, <const float*>a, n_threads)
    else:
        with nogil:
            act_backward_rows(act, <const double*>z, <const double*>y, <const double*>dy,
                              <double*>dz, rows, cols, <const double*>a, n_threads)


def activation_code(name):
    """Kernel code for an activation name; ValueError listing the valid names."""
    try:
        return CODES[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"unknown activation {name!r}; valid names: {', '.join(sorted(CODES))}") from None


def _as_2d(x, name, dtype=None):
    """x as a C-ordered float array viewed as 2-D (a 1-D array is one row)."""
    x = as_float_array(x, name, dtype=dtype, ndim=(1, 2))
    return x, (x.reshape(1, -1) if x.ndim == 1 else x)


def alpha_array(name, alpha, cols, dtype):
    """The kernels' slope array for activation `name`: one per column for prelu, else one."""
    if name == "prelu":
        if alpha is None:
            raise ValueError("prelu needs alpha: one slope per column")
        a = as_float_array(alpha, "alpha", ndim=1).astype(dtype, copy=False)
        if a.shape[0] != cols:
            raise ValueError(f"alpha has shape {a.shape} but the input has {cols} columns")
        return a
    if alpha is None:
        alpha = DEFAULT_ALPHA.get(name, 0.0)
    return np.full(1, alpha, dtype=dtype)


def activation_forward(x, name, alpha=None, *, out=None, n_threads=None):
    """y := act(x), elementwise (softmax row-wise; prelu with one slope per column).

    Parameters
    ----------
    x : ndarray of shape (n,) or (rows, cols), float32 or float64
    name : str, a key of ``CODES``
    alpha : float or ndarray of shape (cols,), optional
        Negative slope: leaky_relu (default 0.01), elu (default 1.0), prelu (required, per column).
    out : ndarray like x, optional; may be x itself.
    """
    code = activation_code(name)
    x, x2 = _as_2d(x, "x")
    y = check_out(out, "out", x.shape, x.dtype)
    a = alpha_array(name, alpha, x2.shape[1], x.dtype)
    forward_into(code, x2, y.reshape(x2.shape), a, resolve_threads(n_threads))
    return y


def activation_backward(dy, z, y, name, alpha=None, *, out=None, n_threads=None):
    """dz := dy * act'(z), with y = act(z) from the forward pass (softmax: the row's Jacobian).

    Parameters
    ----------
    dy, z, y : ndarray of the same shape (n,) or (rows, cols) and dtype
    name, alpha : as in `activation_forward`
    out : ndarray like dy, optional; may be dy itself.
    """
    code = activation_code(name)
    dy, dy2 = _as_2d(dy, "dy")
    z, z2 = _as_2d(z, "z", dtype=dy.dtype)
    y, y2 = _as_2d(y, "y", dtype=dy.dtype)
    for arr, arr_name in ((z, "z"), (y, "y")):
        if arr.shape != dy.shape:
            raise ValueError(f"{arr_name} has shape {arr.shape} but dy has shape {dy.shape}")
    dz = check_out(out, "out", dy.shape, dy.dtype)
    a = alpha_array(name, alpha, dy2.shape[1], dy.dtype)
    backward_into(code, z2, y2, dy2, dz.reshape(dy2.shape), a, resolve_threads(n_threads))
    return dz


def prelu_alpha_grad_into(const floating[:, ::1] Z, const floating[:, ::1] dY,
                          floating[::1] dalpha):
    """dalpha[j] := sum_i dy[i, j] * min(z[i, j], 0), on arrays the caller made."""
    cdef Py_ssize_t i, j, rows = Z.shape[0], cols = Z.shape[1]
    cdef floating v
    with nogil:
        for j in range(cols):
            dalpha[j] = 0
        # rows in order, columns vectorized: the same sums whatever the thread count
        for i in range(rows):
            for j in range(cols):
                v = Z[i, j]
                dalpha[j] += dY[i, j] * v if v < 0 else 0


def prelu_alpha_grad(dy, z):
    """dalpha[j] := sum_i dy[i, j] * min(z[i, j], 0), the gradient of prelu's slopes."""
    dy = as_float_array(dy, "dy", ndim=2)
    z = as_float_array(z, "z", dtype=dy.dtype, ndim=2)
    if z.shape != dy.shape:
        raise ValueError(f"z has shape {z.shape} but dy has shape {dy.shape}")
    dalpha = np.empty(dy.shape[1], dtype=dy.dtype)
    prelu_alpha_grad_into(z, dy, dalpha)
    return dalpha


def _log_softmax(const floating[:, ::1] Z, floating[:, ::1] Y, int n_threads):
    cdef Py_ssize_t i, j, rows = Z.shape[0], cols = Z.shape[1]
    cdef int nt = threads_for(rows * cols, n_threads)
    if cols == 0:
        return
    for i in prange(rows, nogil=True, schedule="dynamic", chunksize=ROW_BLOCK, num_threads=nt,
                    use_threads_if=nt > 1):
        _log_softmax_row(&Z[i, 0], &Y[i, 0], cols)


cdef void _log_softmax_row(const floating* z, floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t j
    cdef floating m = z[0], s = 0
    for j in range(1, n):
        if z[j] > m:
            m = z[j]
    for j in range(n):
        s = s + _exp(z[j] - m)
    s = m + _log(s)
    for j in range(n):
        y[j] = z[j] - s


def log_softmax(x, *, out=None, n_threads=None):
    """y := x - logsumexp(x) row-wise, for x of shape (rows, cols)."""
    x = as_float_array(x, "x", ndim=2)
    y = check_out(out, "out", x.shape, x.dtype)
    _log_softmax(x, y, resolve_threads(n_threads))
    return y


def _maxout_forward(const floating[:, ::1] Z, floating[:, ::1] Y, int[:, ::1] idx, int pieces):
    cdef Py_ssize_t i, u, p, rows = Y.shape[0], units = Y.shape[1]
    cdef floating best, v
    cdef int arg
    with nogil:
        for i in range(rows):
            for u in range(units):
                best = Z[i, u * pieces]
                arg = 0
                for p in range(1, pieces):
                    v = Z[i, u * pieces + p]
                    if v > best:
                        best = v
                        arg = p
                Y[i, u] = best
                idx[i, u] = arg


def maxout_forward(z, pieces):
    """y[i, u] := max_p z[i, u * pieces + p]; also returns the winning piece per output.

    Parameters
    ----------
    z : ndarray of shape (rows, units * pieces)
    pieces : int >= 1

    Returns
    -------
    y : ndarray of shape (rows, units)
    idx : int32 ndarray of shape (rows, units), the winning piece (kept for backward)
    """
    z = as_float_array(z, "z", ndim=2)
    pieces = int(pieces)
    if pieces < 1 or z.shape[1] % pieces:
        raise ValueError(f"z has {z.shape[1]} columns, not a multiple of pieces={pieces}")
    units = z.shape[1] // pieces
    y = np.empty((z.shape[0], units), dtype=z.dtype)
    idx = np.empty((z.shape[0], units), dtype=np.int32)
    _maxout_forward(z, y, idx, pieces)
    return y, idx


def _maxout_backward(const floating[:, ::1] dY, const int[:, ::1] idx, floating[:, ::1] dZ,
                     int pieces):
    cdef Py_ssize_t i, u, rows = dY.shape[0], units = dY.shape[1]
    with nogil:
        for i in range(rows):
            for u in range(units):
                dZ[i, u * pieces + idx[i, u]] = dY[i, u]


def maxout_backward(dy, idx, pieces):
    """dz[i, u * pieces + idx[i, u]] := dy[i, u], zero elsewhere."""
    dy = as_float_array(dy, "dy", ndim=2)
    idx = np.ascontiguousarray(idx, dtype=np.int32)
    if idx.shape != dy.shape:
        raise ValueError(f"idx has shape {idx.shape} but dy has shape {dy.shape}")
    if idx.size and (idx.min() < 0 or idx.max() >= pieces):
        raise ValueError(f"idx holds values outside [0, {pieces})")
    dz = np.zeros((dy.shape[0], dy.shape[1] * pieces), dtype=dy.dtype)
    _maxout_backward(dy, idx, dz, int(pieces))
    return dz


def _argmax(const floating[:, ::1] X, long long[::1] out):
    cdef Py_ssize_t i, j, rows = X.shape[0], cols = X.shape[1]
    cdef floating best
    cdef long long arg
    with nogil:
        for i in range(rows):
            best = X[i, 0]
            arg = 0
            for j in range(1, cols):
                if X[i, j] > best:
                    best = X[i, j]
                    arg = j
            out[i] = arg


def argmax(x):
    """Index of the largest entry in each row (the first on ties), as int64 of shape (rows,)."""
    x = as_float_array(x, "x", ndim=2)
    if x.shape[1] == 0:
        raise ValueError("argmax of rows with no columns")
    out = np.empty(x.shape[0], dtype=np.int64)
    _argmax(x, out)
    return out
