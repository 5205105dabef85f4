"""Sparse dense-layer kernels for pruned models: Y := act(X @ W + b) with W stored sparse.

A layer's kernel W has shape (n_in, n_out). For inference its transpose W.T is kept
in CSR: row r holds the incoming weights of output unit r (``indptr`` int64,
``indices`` uint16 when n_in <= 65536, else int32, ``data`` in the compute dtype).

Two kernels, both partitioned by output rows so that no two threads add into one
element (results are bitwise identical for any thread count):

- batch 1 (`csr_matvec`): one sparse dot product per output row, eight (float)
  or four (double) nonzeros per vector step (the micro-kernel of ``sparse_block.h``);
- larger batches (`csr_forward_t`): activations transposed to (n_in, batch), so each
  nonzero ``W[j, r]`` adds ``W[j, r] * XT[j, c:c+w]`` to a block of w batch columns
  held in registers (the micro-kernel of ``sparse_block.h``).

The kernels do no bounds checks: `check_csr` (or the engine's loader) is the guard.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from fastnn._kernels._parallel cimport ROW_BLOCK, threads_for
from fastnn._kernels.activations cimport (act_forward_row, act_forward_rows, ACT_LINEAR, ACT_PRELU,
                                          ACT_LEAKY_RELU, ACT_SOFTMAX)

import numpy as np

from fastnn._kernels._checks import as_float_array, check_bias, check_out, resolve_threads
from fastnn._kernels.activations import activation_code, alpha_array

cdef extern from "sparse_block.h" nogil:
    int FASTNN_VEC_BYTES
    void fastnn_block_f_u16(const float* xt, Py_ssize_t ldx, const unsigned short* idx,
                            const float* val, Py_ssize_t nnz, float bias, float* y, int nv)
    void fastnn_block_f_i32(const float* xt, Py_ssize_t ldx, const int* idx,
                            const float* val, Py_ssize_t nnz, float bias, float* y, int nv)
    void fastnn_block_d_u16(const double* xt, Py_ssize_t ldx, const unsigned short* idx,
                            const double* val, Py_ssize_t nnz, double bias, double* y, int nv)
    void fastnn_block_d_i32(const double* xt, Py_ssize_t ldx, const int* idx,
                            const double* val, Py_ssize_t nnz, double bias, double* y, int nv)
    float fastnn_dot_f_u16(const float* x, const unsigned short* idx, const float* val,
                           Py_ssize_t nnz)
    float fastnn_dot_f_i32(const float* x, const int* idx, const float* val, Py_ssize_t nnz)
    double fastnn_dot_d_u16(const double* x, const unsigned short* idx, const double* val,
                            Py_ssize_t nnz)
    double fastnn_dot_d_i32(const double* x, const int* idx, const double* val, Py_ssize_t nnz)

# Widest register block, in 32-byte vectors: 8 of them leave room for the broadcast
# weight and the addresses among the 16 registers of 32-byte code (AVX2; the kernels
# are written in 32-byte vectors even where AVX-512 is there).
cdef int MAX_VECTORS = 8
# Square tiles of the out-of-place transpose.
cdef Py_ssize_t TILE = 16

MAX_UINT16_FAN_IN = 65536
"""Largest fan-in whose column indices fit uint16."""


cdef inline floating _sparse_dot(const floating* x, const index_t* idx, const floating* val,
                                 Py_ssize_t nnz) noexcept nogil:
    """sum_k val[k] * x[idx[k]], summed in a fixed order (see sparse_block.h)."""
    if floating is float:
        if index_t is int:
            return fastnn_dot_f_i32(x, idx, val, nnz)
        else:
            return fastnn_dot_f_u16(x, idx, val, nnz)
    else:
        if index_t is int:
            return fastnn_dot_d_i32(x, idx, val, nnz)
        else:
            return fastnn_dot_d_u16(x, idx, val, nnz)


cdef void csr_matvec(const floating* x, const int64_t* indptr, const index_t* indices,
                     const floating* data, const floating* b, floating* y, Py_ssize_t n_out,
                     int act, const floating* alpha, int n_threads) noexcept nogil:
    """y := act(W.T @ x + b) for one input vector x of length n_in."""
    cdef Py_ssize_t r
    cdef int nt = threads_for(indptr[n_out], n_threads)
    if nt == 1:
        # No OpenMP team for one thread: a team of one still meets at its barriers
        # (futex calls, 0.3-0.8 us), a large share of a one-row layer's product.
        for r in range(n_out):
            y[r] = (b[r] if b != NULL else 0) + _sparse_dot(
                x, indices + indptr[r], data + indptr[r], indptr[r + 1] - indptr[r])
    else:
        for r in prange(n_out, nogil=True, schedule="dynamic", chunksize=ROW_BLOCK,
                        num_threads=nt):
            y[r] = (b[r] if b != NULL else 0) + _sparse_dot(
                x, indices + indptr[r], data + indptr[r], indptr[r + 1] - indptr[r])
    act_forward_rows(act, y, y, 1, n_out, alpha, threads_for(n_out, n_threads))


cdef inline void _block(const floating* xt, Py_ssize_t ldx, const index_t* idx,
                        const floating* val, Py_ssize_t nnz, floating bias, floating* y,
                        int nv) noexcept nogil:
    if floating is float:
        if index_t is int:
            fastnn_block_f_i32(xt, ldx, idx, val, nnz, bias, y, nv)
        else:
            fastnn_block_f_u16(xt, ldx, idx, val, nnz, bias, y, nv)
    else:
        if index_t is int:
            fastnn_block_d_i32(xt, ldx, idx, val, nnz, bias, y, nv)
        else:
            fastnn_block_d_u16(xt, ldx, idx, val, nnz, bias, y, nv)


cdef void _combine_rows(const floating* M, Py_ssize_t ldm, const index_t* idx,
                        const floating* val, Py_ssize_t nnz, floating bias, floating* y,
                        Py_ssize_t c0, Py_ssize_t stop) noexcept nogil:
    """y[c] := bias + sum_k val[k] * M[idx[k], c] for c in [c0, stop), M with row stride ldm."""
    cdef Py_ssize_t lanes = FASTNN_VEC_BYTES // sizeof(floating)
    cdef Py_ssize_t k, c = c0
    cdef floating s
    cdef int nv = MAX_VECTORS
    # Widest blocks first (8, 4, 2, 1 vectors), then single columns.
    while nv >= 1:
        while c + nv * lanes <= stop:
            _block(M + c, ldm, idx, val, nnz, bias, y + c, nv)
            c += nv * lanes
        nv = nv // 2
    while c < stop:
        s = bias
        for k in range(nnz):
            s += val[k] * M[<Py_ssize_t>idx[k] * ldm + c]
        y[c] = s
        c += 1


cdef void _row_block(const floating* XT, Py_ssize_t ldx, const int64_t* indptr,
                     const index_t* indices, const floating* data, const floating* b,
                     floating* YT, Py_ssize_t ldy, Py_ssize_t r, Py_ssize_t c0, Py_ssize_t width,
                     int act, const floating* alpha) noexcept nogil:
    """YT[r, c0:c0+width] := act(W.T[r] @ XT[:, c0:c0+width] + b[r])."""
    cdef Py_ssize_t start = indptr[r]
    cdef floating* y = YT + r * ldy
    _combine_rows(XT, ldx, indices + start, data + start, indptr[r + 1] - start,
                  b[r] if b != NULL else 0, y, c0, c0 + width)
    if act == ACT_PRELU:
        act_forward_row(ACT_LEAKY_RELU, y + c0, y + c0, width, alpha + r)
    elif act != ACT_SOFTMAX and act != ACT_LINEAR:
        act_forward_row(act, y + c0, y + c0, width, alpha)


cdef void csr_forward_t(const floating* XT, Py_ssize_t ldx, const int64_t* indptr,
                        const index_t* indices, const floating* data, const floating* b,
                        floating* YT, Py_ssize_t ldy, Py_ssize_t n_out, Py_ssize_t batch,
                        int act, const floating* alpha, int n_threads) noexcept nogil:
    """YT := act(W.T @ XT + b[:, None]) for XT of shape (n_in, batch), YT of shape (n_out, batch).

    Rows of XT and YT lie ldx and ldy elements apart (at least batch). The
    activation must be elementwise or prelu (alpha then has one slope per output
    row); softmax is left to the caller, which needs whole rows of Y.
    """
    cdef Py_ssize_t block = MAX_VECTORS * FASTNN_VEC_BYTES // sizeof(floating)
    cdef Py_ssize_t nblocks = (batch + block - 1) // block
    cdef Py_ssize_t t, r, c0
    cdef int nt = threads_for(indptr[n_out] * batch, n_threads)
    # One work item per (column block, output row), column block outermost: a
    # thread's items share the block of XT, which stays in its cache.
    for t in prange(nblocks * n_out, nogil=True, schedule="dynamic", chunksize=ROW_BLOCK,
                    num_threads=nt, use_threads_if=nt > 1):
        r = t % n_out
        c0 = (t // n_out) * block
        _row_block(XT, ldx, indptr, indices, data, b, YT, ldy, r, c0,
                   block if c0 + block <= batch else batch - c0, act, alpha)


cdef inline void _tile(const floating* A, Py_ssize_t lda, floating* B, Py_ssize_t ldb,
                       Py_ssize_t rows, Py_ssize_t cols, Py_ssize_t i0,
                       Py_ssize_t j0) noexcept nogil:
    cdef Py_ssize_t i, j
    cdef Py_ssize_t i1 = i0 + TILE if i0 + TILE < rows else rows
    cdef Py_ssize_t j1 = j0 + TILE if j0 + TILE < cols else cols
    for j in range(j0, j1):
        for i in range(i0, i1):
            B[j * ldb + i] = A[i * lda + j]


cdef void transpose(const floating* A, Py_ssize_t lda, floating* B, Py_ssize_t ldb,
                    Py_ssize_t rows, Py_ssize_t cols, int n_threads) noexcept nogil:
    """B := A.T for A of shape (rows, cols) and B of shape (cols, rows), rows lda and ldb apart."""
    cdef Py_ssize_t ti, tj, nti = (rows + TILE - 1) // TILE, ntj = (cols + TILE - 1) // TILE
    cdef int nt = threads_for(rows * cols, n_threads)
    for ti in prange(nti, nogil=True, schedule="dynamic", num_threads=nt, use_threads_if=nt > 1):
        for tj in range(ntj):
            _tile(A, lda, B, ldb, rows, cols, ti * TILE, tj * TILE)


# ---------------------------------------------------------------------------
# Python entry points: validate, make outputs, pick threads, call the nogil cores.

def index_dtype(n_in):
    """The column-index dtype for a fan-in of `n_in`: uint16 up to 65536, else int32."""
    return np.dtype(np.uint16) if n_in <= MAX_UINT16_FAN_IN else np.dtype(np.int32)


def csr_from_dense(W, dtype=None):
    """CSR arrays of W.T, keeping the nonzero entries of W.

    Parameters
    ----------
    W : ndarray of shape (n_in, n_out)
    dtype : float32 or float64, optional; default W's own float dtype.

    Returns
    -------
    indptr : int64 ndarray of shape (n_out + 1,)
    indices : uint16 or int32 ndarray of shape (nnz,), see `index_dtype`
    data : ndarray of shape (nnz,)
    """
    W = np.asarray(W)
    W = as_float_array(W, "W", dtype=dtype if dtype is not None else
                       (W.dtype if W.dtype.kind == "f" else None), ndim=2)
    WT = W.T
    mask = WT != 0
    indptr = np.zeros(WT.shape[0] + 1, dtype=np.int64)
    np.cumsum(mask.sum(axis=1), out=indptr[1:])
    rows, cols = np.nonzero(mask)  # row-major order: each row's columns ascending
    return indptr, cols.astype(index_dtype(W.shape[0])), np.ascontiguousarray(WT[rows, cols])


def dense_from_csr(indptr, indices, data, n_in):
    """W of shape (n_in, n_out) from the CSR arrays of W.T (the inverse of `csr_from_dense`).

    The arrays must have passed `check_csr`.
    """
    n_out = indptr.shape[0] - 1
    WT = np.zeros((n_out, n_in), dtype=data.dtype)
    WT[np.repeat(np.arange(n_out), np.diff(indptr)), indices] = data
    return np.ascontiguousarray(WT.T)


def check_csr(indptr, indices, data, n_in, n_out):
    """Raise ValueError unless (indptr, indices, data) is a valid CSR matrix (n_out, n_in).

    Checks dtypes (int64 indptr, uint16/int32 indices that fit n_in, float data),
    lengths, ``indptr[0] == 0``, non-decreasing ``indptr`` ending at nnz, and
    ``0 <= indices < n_in``. These are the invariants the kernels rely on.
    """
    for arr, name in ((indptr, "indptr"), (indices, "indices"), (data, "data")):
        if not isinstance(arr, np.ndarray) or arr.ndim != 1 or not arr.flags.c_contiguous:
            raise ValueError(f"{name} must be a C-contiguous 1-D array")
    if indptr.dtype != np.int64:
        raise ValueError(f"indptr has dtype {indptr.dtype}, expected int64")
    if indices.dtype not in (np.dtype(np.uint16), np.dtype(np.int32)):
        raise ValueError(f"indices has dtype {indices.dtype}, expected uint16 or int32")
    if indices.dtype == np.uint16 and n_in > MAX_UINT16_FAN_IN:
        raise ValueError(f"uint16 indices cannot address a fan-in of {n_in}")
    if data.dtype.kind != "f":
        raise ValueError(f"data has dtype {data.dtype}, expected a float dtype")
    if indptr.shape[0] != n_out + 1:
        raise ValueError(f"indptr has {indptr.shape[0]} entries, expected n_out + 1 = {n_out + 1}")
    if indices.shape[0] != data.shape[0]:
        raise ValueError(f"indices has {indices.shape[0]} entries but data has {data.shape[0]}")
    if indptr[0] != 0:
        raise ValueError(f"indptr must start at 0, starts at {indptr[0]}")
    if n_out > 0 and np.any(indptr[1:] < indptr[:n_out]):
        raise ValueError("indptr must be non-decreasing")
    if indptr[n_out] != indices.shape[0]:
        raise ValueError(f"indptr ends at {indptr[n_out]} but there are {indices.shape[0]} "
                         "nonzeros")
    if indices.shape[0] and (int(indices.min()) < 0 or int(indices.max()) >= n_in):
        raise ValueError(f"indices must lie in [0, {n_in})")


def check_canonical(indptr, indices):
    """ValueError unless the indices of every row (of a CSR matrix, or every block column
    of a block-sparse one) strictly increase.

    Kernels accept any order, but the dense form rebuilt from the sparse one must hold
    the same matrix: no index may repeat within a row.
    """
    if indices.shape[0] < 2:
        return
    step = np.diff(indices.astype(np.int64))
    starts = indptr[1:indptr.shape[0] - 1]
    starts = starts[(starts > 0) & (starts < indices.shape[0])]
    step[starts - 1] = 1  # a row may start below where the one before ended
    if (step <= 0).any():
        raise ValueError("column indices must strictly increase within each row")


def _check_layer(indptr, indices, data, n_in, b, activation, alpha, dtype):
    code = activation_code(activation)
    data = as_float_array(data, "data", dtype=dtype, ndim=1)
    indptr = np.ascontiguousarray(indptr)
    indices = np.ascontiguousarray(indices)
    n_out = indptr.shape[0] - 1 if indptr.ndim == 1 else -1
    if n_out < 0:
        raise ValueError("indptr must be a 1-D array with at least one entry")
    check_csr(indptr, indices, data, n_in, n_out)
    b = check_bias(b, n_out, data.dtype)
    return code, indptr, indices, data, n_out, b, alpha_array(activation, alpha, n_out, data.dtype)


def _forward(const floating[:, ::1] X, const int64_t[::1] indptr, const index_t[::1] indices,
             const floating[::1] data, const floating[::1] b, floating[:, ::1] Y,
             floating[:, ::1] XT, floating[:, ::1] YT, int act, const floating[::1] alpha,
             int n_threads):
    cdef Py_ssize_t i, batch = X.shape[0], n_in = X.shape[1], n_out = Y.shape[1]
    cdef const floating* bp = NULL
    cdef const index_t* ip = NULL
    cdef const floating* dp = NULL
    if batch == 0 or n_out == 0:
        return
    if b is not None:
        bp = &b[0]
    if indices.shape[0]:
        ip = &indices[0]
        dp = &data[0]
    with nogil:
        if batch == 1:
            csr_matvec(&X[0, 0], &indptr[0], ip, dp, bp, &Y[0, 0], n_out, act, &alpha[0],
                       n_threads)
        else:
            transpose(&X[0, 0], n_in, &XT[0, 0], batch, batch, n_in, n_threads)
            csr_forward_t(&XT[0, 0], batch, &indptr[0], ip, dp, bp, &YT[0, 0], batch, n_out,
                          batch, act, &alpha[0], n_threads)
            transpose(&YT[0, 0], batch, &Y[0, 0], n_out, n_out, batch, n_threads)
            if act == ACT_SOFTMAX:
                act_forward_rows(act, &Y[0, 0], &Y[0, 0], batch, n_out, &alpha[0],
                                 threads_for(batch * n_out, n_threads))


def _forward_t(const floating[:, ::1] XT, const int64_t[::1] indptr, const index_t[::1] indices,
               const floating[::1] data, const floating[::1] b, floating[:, ::1] YT, int act,
               const floating[::1] alpha, int n_threads):
    cdef const floating* bp = NULL
    cdef const index_t* ip = NULL
    cdef const floating* dp = NULL
    if YT.shape[0] == 0 or YT.shape[1] == 0:
        return
    if b is not None:
        bp = &b[0]
    if indices.shape[0]:
        ip = &indices[0]
        dp = &data[0]
    with nogil:
        csr_forward_t(&XT[0, 0], XT.shape[1], &indptr[0], ip, dp, bp, &YT[0, 0], YT.shape[1],
                      YT.shape[0], YT.shape[1], act, &alpha[0], n_threads)


def sparse_forward(X, indptr, indices, data, b=None, activation="linear", alpha=None, *,
                   out=None, n_threads=None):
    """Y := act(X @ W + b), with W.T given in CSR

    Batch 1 runs one sparse dot product per output row; larger batches transpose X
    and run the register-blocked kernel of `sparse_forward_t`.

    Parameters
    ----------
    X : ndarray of shape (batch, n_in)
    indptr : int64 ndarray of shape (n_out + 1,)
    indices : uint16 or int32 ndarray of shape (nnz,), each in [0, n_in)
    data : ndarray of shape (nnz,), float32 or float64; sets the dtype
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
    data = as_float_array(data, "data", ndim=1)
    X = as_float_array(X, "X", dtype=data.dtype, ndim=2)
    code, indptr, indices, data, n_out, b, a = _check_layer(
        indptr, indices, data, X.shape[1], b, activation, alpha, data.dtype)
    Y = check_out(out, "out", (X.shape[0], n_out), data.dtype)
    XT = YT = None
    if X.shape[0] > 1:
        XT = np.empty((X.shape[1], X.shape[0]), dtype=data.dtype)
        YT = np.empty((n_out, X.shape[0]), dtype=data.dtype)
    if X.shape[1] == 0:
        X = np.zeros((X.shape[0], 1), dtype=data.dtype)  # any valid pointer; nnz is 0
        XT = np.zeros((1, X.shape[0]), dtype=data.dtype) if XT is not None else None
    _forward(X, indptr, indices, data, b, Y, XT, YT, code, a, resolve_threads(n_threads))
    return Y


def sparse_forward_t(XT, indptr, indices, data, b=None, activation="linear", alpha=None, *,
                     out=None, n_threads=None):
    """YT := act(W.T @ XT + b[:, None]), the batch-contiguous layout

    Parameters
    ----------
    XT : ndarray of shape (n_in, batch)
    indptr, indices, data, b : as in `sparse_forward`
    activation : str
        Any name of ``CODES`` but softmax, which needs whole rows of Y.
    alpha : float or ndarray of shape (n_out,), optional
        prelu's slope of each output row, or the scalar slope of leaky_relu and elu.
    out : ndarray of shape (n_out, batch), optional

    Returns
    -------
    YT : ndarray of shape (n_out, batch)
    """
    if activation == "softmax":
        raise ValueError("softmax needs whole rows of Y; use sparse_forward")
    data = as_float_array(data, "data", ndim=1)
    XT = as_float_array(XT, "XT", dtype=data.dtype, ndim=2)
    code, indptr, indices, data, n_out, b, a = _check_layer(
        indptr, indices, data, XT.shape[0], b, activation, alpha, data.dtype)
    YT = check_out(out, "out", (n_out, XT.shape[1]), data.dtype)
    if XT.shape[0] == 0:
        XT = np.zeros((1, XT.shape[1]), dtype=data.dtype)
    _forward_t(XT, indptr, indices, data, b, YT, code, a, resolve_threads(n_threads))
    return YT
