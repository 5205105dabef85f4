"""Block-sparse dense-layer kernel: Y := act(X @ W + b) with W stored in blocks of outputs.

A layer's kernel W has shape (n_in, n_out). Its block-sparse form ("BSR") keeps the
blocks ``W[i, c * B:(c + 1) * B]`` (B = 4, 8 or 16 consecutive outputs of input row i)
that hold a nonzero, grouped by block column c:

- ``indptr`` int64 of shape (n_blocks_cols + 1,), ``n_block_cols = ceil(n_out / B)``:
  the blocks of column c are ``indptr[c]`` to ``indptr[c + 1]``;
- ``indices`` (uint16 when n_in <= 65536, else int32) of shape (nnzb,): the input row
  i of each block, strictly increasing within a block column;
- ``values`` of shape (nnzb, B) in the compute dtype: each block's B values, contiguous;
  the last block column of a layer whose width B does not divide is padded with zeros.

The kernel (`bsr_forward_rows`, the micro-kernels of ``blocksparse.h``) keeps the B
sums of a block column in registers, for one row of X or several at a time; it works
on rows of X as they are (no transposition) for one row and for batches. Work items
are (group of 16 rows, block column) pairs: no two threads add into one element, and
how a row is summed depends on the batch alone, so results are bitwise identical for
any thread count.

The kernel does no bounds checks: `check_bsr` (or the engine's loader) is the guard.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from fastnn._kernels._parallel cimport threads_for
from fastnn._kernels.activations cimport act_forward_rows
from fastnn._kernels.sparse cimport index_t

import numpy as np

from fastnn._kernels._checks import as_float_array, check_bias, check_out, resolve_threads
from fastnn._kernels.activations import activation_code, alpha_array
from fastnn._kernels.sparse import check_canonical, index_dtype

cdef extern from "blocksparse.h" nogil:
    void fastnn_bsr_f_u16(const float* x, Py_ssize_t ldx, const unsigned short* idx,
                          const float* val, Py_ssize_t nnzb, const float* bias, float* y,
                          Py_ssize_t ldy, Py_ssize_t width, int block, Py_ssize_t rows)
    void fastnn_bsr_f_i32(const float* x, Py_ssize_t ldx, const int* idx,
                          const float* val, Py_ssize_t nnzb, const float* bias, float* y,
                          Py_ssize_t ldy, Py_ssize_t width, int block, Py_ssize_t rows)
    void fastnn_bsr_d_u16(const double* x, Py_ssize_t ldx, const unsigned short* idx,
                          const double* val, Py_ssize_t nnzb, const double* bias, double* y,
                          Py_ssize_t ldy, Py_ssize_t width, int block, Py_ssize_t rows)
    void fastnn_bsr_d_i32(const double* x, Py_ssize_t ldx, const int* idx,
                          const double* val, Py_ssize_t nnzb, const double* bias, double* y,
                          Py_ssize_t ldy, Py_ssize_t width, int block, Py_ssize_t rows)

BLOCKS = (4, 8, 16)
"""The block widths B of the kernel: consecutive outputs of one input row."""
# Rows of X per work item: a multiple of the micro-kernel's row count for every block.
cdef enum:
    ROWS_PER_ITEM = 16


cdef inline void _block_column(const floating* x, Py_ssize_t ldx, const index_t* idx,
                               const floating* val, Py_ssize_t nnzb, const floating* bias,
                               floating* y, Py_ssize_t ldy, Py_ssize_t width, int block,
                               Py_ssize_t rows) noexcept nogil:
    if floating is float:
        if index_t is int:
            fastnn_bsr_f_i32(x, ldx, idx, val, nnzb, bias, y, ldy, width, block, rows)
        else:
            fastnn_bsr_f_u16(x, ldx, idx, val, nnzb, bias, y, ldy, width, block, rows)
    else:
        if index_t is int:
            fastnn_bsr_d_i32(x, ldx, idx, val, nnzb, bias, y, ldy, width, block, rows)
        else:
            fastnn_bsr_d_u16(x, ldx, idx, val, nnzb, bias, y, ldy, width, block, rows)


cdef inline void _item(const floating* X, Py_ssize_t ldx, Py_ssize_t nb,
                       const int64_t* indptr, const index_t* indices,
                       const floating* values, int block, const floating* b, floating* Y,
                       Py_ssize_t n_out, Py_ssize_t r0, Py_ssize_t c) noexcept nogil:
    """Block column c of rows r0 to r0 + ROWS_PER_ITEM (or nb) of Y."""
    cdef Py_ssize_t start = indptr[c]
    _block_column(X + r0 * ldx, ldx, indices + start, values + start * block,
                  indptr[c + 1] - start, NULL if b == NULL else b + c * block,
                  Y + r0 * n_out + c * block, n_out,
                  block if (c + 1) * block <= n_out else n_out - c * block, block,
                  ROWS_PER_ITEM if r0 + ROWS_PER_ITEM <= nb else nb - r0)


cdef void bsr_forward_rows(const floating* X, Py_ssize_t ldx, Py_ssize_t nb,
                           const int64_t* indptr, const index_t* indices,
                           const floating* values, int block, const floating* b, floating* Y,
                           Py_ssize_t n_out, int n_threads) noexcept nogil:
    """Y := X @ W + b for X of shape (nb, n_in), rows ldx apart, and Y of shape (nb, n_out)."""
    cdef Py_ssize_t n_cols = (n_out + block - 1) // block
    cdef Py_ssize_t n_groups = (nb + ROWS_PER_ITEM - 1) // ROWS_PER_ITEM
    cdef Py_ssize_t t, c
    cdef int nt = threads_for(indptr[n_cols] * block * nb, n_threads)
    if n_groups == 1 and nt == 1:
        # Up to 16 rows on one thread run without an OpenMP team: a team of one still
        # meets at barriers that cost a futex call each, more than a small layer's work.
        for c in range(n_cols):
            _item(X, ldx, nb, indptr, indices, values, block, b, Y, n_out, 0, c)
        return
    # Group of rows outermost: a thread's consecutive items share the rows of X, which
    # stay in its cache while the blocks stream past.
    for t in prange(n_groups * n_cols, nogil=True, schedule="dynamic", num_threads=nt,
                    use_threads_if=nt > 1):
        _item(X, ldx, nb, indptr, indices, values, block, b, Y, n_out,
              (t // n_cols) * ROWS_PER_ITEM, t % n_cols)


# ---------------------------------------------------------------------------
# Python entry points: convert, validate, make outputs, call the nogil core.

def bsr_from_dense(W, block, dtype=None):
    """The block-sparse arrays of W in blocks of `block` consecutive outputs.

    Parameters
    ----------
    W : ndarray of shape (n_in, n_out)
    block : 4, 8 or 16
    dtype : float32 or float64, optional; default W's own float dtype.

    Returns
    -------
    indptr : int64 ndarray of shape (ceil(n_out / block) + 1,)
    indices : uint16 or int32 ndarray of shape (nnzb,), see `fastnn._kernels.sparse.index_dtype`
    values : ndarray of shape (nnzb, block)
    """
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
    W = np.asarray(W)
    W = as_float_array(W, "W", dtype=dtype if dtype is not None else
                       (W.dtype if W.dtype.kind == "f" else None), ndim=2)
    n_in, n_out = W.shape
    n_cols = -(-n_out // block)
    padded = np.zeros((n_in, n_cols * block), dtype=W.dtype)
    padded[:, :n_out] = W
    blocks = padded.reshape(n_in, n_cols, block).transpose(1, 0, 2)  # (column, row, B)
    keep = blocks.any(axis=2)
    indptr = np.zeros(n_cols + 1, dtype=np.int64)
    np.cumsum(keep.sum(axis=1), out=indptr[1:])
    cols, rows = np.nonzero(keep)  # column-major order: each column's rows ascending
    return (indptr, rows.astype(index_dtype(n_in)),
            np.ascontiguousarray(blocks[cols, rows]))


def dense_from_bsr(indptr, indices, values, n_in, n_out):
    """W of shape (n_in, n_out) from its block-sparse arrays (the inverse of `bsr_from_dense`).

    The arrays must have passed `check_bsr`.
    """
    block = values.shape[1]
    n_cols = indptr.shape[0] - 1
    padded = np.zeros((n_cols, n_in, block), dtype=values.dtype)
    padded[np.repeat(np.arange(n_cols), np.diff(indptr)), indices] = values
    return np.ascontiguousarray(padded.transpose(1, 0, 2).reshape(n_in, n_cols * block)[:, :n_out])


def block_density(W, block):
    """Fraction of the blocks of `block` consecutive outputs of W that hold a nonzero (the
    share of W's values, padding included, that its block-sparse form stores)."""
    W = np.asarray(W)
    n_in, n_out = W.shape
    n_cols = -(-n_out // block)
    padded = np.zeros((n_in, n_cols * block), dtype=bool)
    padded[:, :n_out] = W != 0
    return float(padded.reshape(n_in, n_cols, block).any(axis=2).mean()) if W.size else 1.0


def check_bsr(indptr, indices, values, n_in, n_out):
    """Raise ValueError unless (indptr, indices, values) is a valid block-sparse (n_in, n_out).

    Checks dtypes (int64 indptr, uint16/int32 indices that fit n_in, float values (or
    int8: the blocks of an int8 engine's file) of shape (nnzb, B) with B in `BLOCKS`),
    lengths, ``indptr[0] == 0``, non-decreasing ``indptr`` ending at nnzb,
    ``0 <= indices < n_in`` strictly increasing within each block column, and zero padding
    past n_out. These are the invariants the kernel and `dense_from_bsr` rely on.
    """
    for arr, name, ndim in ((indptr, "indptr", 1), (indices, "indices", 1), (values, "values", 2)):
        if not isinstance(arr, np.ndarray) or arr.ndim != ndim or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous {ndim}-D array")
    if indptr.dtype != np.int64:
        raise ValueError(f"indptr has dtype {indptr.dtype}, expected int64")
    if indices.dtype != index_dtype(n_in) and indices.dtype != np.int32:
        raise ValueError(f"indices has dtype {indices.dtype}, expected {index_dtype(n_in)}")
    if values.dtype.kind != "f" and values.dtype != np.int8:
        raise ValueError(f"values has dtype {values.dtype}, expected a float dtype or int8")
    block = values.shape[1]
    if block not in BLOCKS:
        raise ValueError(f"values has blocks of {block}; expected one of {BLOCKS}")
    n_cols = -(-n_out // block)
    if indptr.shape[0] != n_cols + 1:
        raise ValueError(f"indptr has {indptr.shape[0]} entries, expected "
                         f"ceil(n_out / {block}) + 1 = {n_cols + 1}")
    nnzb = indices.shape[0]
    if values.shape[0] != nnzb:
        raise ValueError(f"indices has {nnzb} entries but values has {values.shape[0]} blocks")
    if indptr[0] != 0:
        raise ValueError(f"indptr must start at 0, starts at {indptr[0]}")
    if np.any(indptr[1:] < indptr[:n_cols]):
        raise ValueError("indptr must be non-decreasing")
    if indptr[n_cols] != nnzb:
        raise ValueError(f"indptr ends at {indptr[n_cols]} but there are {nnzb} blocks")
    if nnzb and (int(indices.min()) < 0 or int(indices.max()) >= n_in):
        raise ValueError(f"indices must lie in [0, {n_in})")
    try:
        check_canonical(indptr, indices)
    except ValueError:
        raise ValueError("indices must strictly increase within each block column") from None
    pad = n_cols * block - n_out
    if pad and np.any(values[indptr[n_cols - 1]:, block - pad:]):
        raise ValueError(f"the last block column's padding (past n_out={n_out}) must be zero")


def _forward(const floating[:, ::1] X, const int64_t[::1] indptr, const index_t[::1] indices,
             const floating[:, ::1] values, const floating[::1] b, floating[:, ::1] Y, int act,
             const floating[::1] alpha, int n_threads):
    cdef Py_ssize_t batch = X.shape[0], n_out = Y.shape[1]
    cdef int block = values.shape[1]
    cdef const floating* bp = NULL
    cdef const index_t* ip = NULL
    cdef const floating* vp = NULL
    if batch == 0 or n_out == 0:
        return
    if b is not None:
        bp = &b[0]
    if indices.shape[0]:
        ip = &indices[0]
        vp = &values[0, 0]
    with nogil:
        bsr_forward_rows(&X[0, 0], X.shape[1], batch, &indptr[0], ip, vp, block, bp, &Y[0, 0],
                         n_out, n_threads)
        act_forward_rows(act, &Y[0, 0], &Y[0, 0], batch, n_out, &alpha[0],
                         threads_for(batch * n_out, n_threads))


def bsr_forward(X, indptr, indices, values, n_out, b=None, activation="linear", alpha=None, *,
                out=None, n_threads=None):
    """Y := act(X @ W + b), with W given in blocks of consecutive outputs (see the module)

    Parameters
    ----------
    X : ndarray of shape (batch, n_in)
    indptr : int64 ndarray of shape (ceil(n_out / B) + 1,)
    indices : uint16 or int32 ndarray of shape (nnzb,), each in [0, n_in)
    values : ndarray of shape (nnzb, B), float32 or float64; sets the dtype and B
    n_out : int
    b : ndarray of shape (n_out,), optional
    activation : str
        A name from ``fastnn._kernels.activations.CODES``.
    alpha : float or ndarray of shape (n_out,), optional
        The activation's slope (see `activation_forward`).
    out : ndarray of shape (batch, n_out), optional

    Returns
    -------
    Y : ndarray of shape (batch, n_out)
    """
    code = activation_code(activation)
    values = as_float_array(values, "values", ndim=2)
    X = as_float_array(X, "X", dtype=values.dtype, ndim=2)
    n_in = X.shape[1]
    indptr, indices = np.ascontiguousarray(indptr), np.ascontiguousarray(indices)
    check_bsr(indptr, indices, values, n_in, n_out)
    b = check_bias(b, n_out, values.dtype)
    Y = check_out(out, "out", (X.shape[0], n_out), values.dtype)
    if n_in == 0:
        X = np.zeros((X.shape[0], 1), dtype=values.dtype)  # any valid pointer; nnzb is 0
    _forward(X, indptr, indices, values, b, Y, code,
             alpha_array(activation, alpha, n_out, values.dtype), resolve_threads(n_threads))
    return Y
