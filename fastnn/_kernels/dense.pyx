"""Dense layer kernels: forward with bias and activation fused, and backward.

GEMM comes from the BLAS that scipy links (``scipy.linalg.cython_blas``). A product runs
in chunks of rows of its output (`_parallel.gemm_rows`), which fastnn's
threads take one at a time, each chunk one BLAS call on one thread (the entry points
put the BLAS on one thread, see `_threads.blas_serial_enter`). The chunks do not depend
on the thread count, so neither do the results. Arrays are C-ordered; a row-major
product ``C = A @ B`` is the column-major product ``C.T = B.T @ A.T``, so operands swap.

The inference engine's float32 products of many rows run instead on weights packed
once into column panels (`pack_panels`, `packed_forward`; the kernel is in
dense_packed.h) where the CPU has AVX-512F: bias and activation are applied to each
block of rows while it is in cache, and the blocks are shared out among the threads
as they come free, as the chunks of the BLAS products are.

`DenseChain` runs a stack of dense layers (a `Sequential` of Dense layers at inference)
in one call, layer after layer through `dense_forward_core`, on the layers' own arrays.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy, memset
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv

cimport numpy as cnp

from fastnn._kernels._finite cimport all_finite
from fastnn._kernels._parallel cimport (gemm_chunks, gemm_rows, gemm_stop, gemm_threads,
                                        threads_for)
from fastnn._kernels._threads cimport blas_serial_enter, blas_serial_exit
from fastnn._kernels.activations cimport (act_forward_row, act_backward_rows, ACT_PRELU,
                                          ACT_RELU, ACT_LINEAR, ACT_SOFTMAX)

import numpy as np

from fastnn._kernels._checks import as_float_array, check_out, resolve_threads
from fastnn._kernels.activations import activation_code, alpha_array

cnp.import_array()

cdef extern from "dense_packed.h" nogil:
    int FASTNN_PANEL
    int fastnn_cpu_packed()
    int fastnn_packed_rows(const float* X, Py_ssize_t ldx, Py_ssize_t m, Py_ssize_t k,
                           const float* Wp, Py_ssize_t n, const float* b, int relu,
                           float* Y, Py_ssize_t ldy)
    int fastnn_unpacked_rows(const float* X, Py_ssize_t ldx, Py_ssize_t m, Py_ssize_t k,
                             const float* W, Py_ssize_t n, const float* b, int relu,
                             float* Y, Py_ssize_t ldy)
    int fastnn_packed_softmax(float* Y, Py_ssize_t m, Py_ssize_t n)
    void fastnn_weight_grad_rows(const float* X, Py_ssize_t ldx, Py_ssize_t m, Py_ssize_t k,
                                 const float* dZ, Py_ssize_t n, float* dW, Py_ssize_t ldy)

cdef enum:
    # Rows per block of a packed product: a thread takes one block at a time.
    PACKED_BLOCK_ROWS = 48
    UNPACKED_MIN_ROWS = 5
    UNPACKED_MAX_ROWS = 32

cdef bint _packed_cpu = fastnn_cpu_packed()
_packed_use = [bool(_packed_cpu)]
# Rows up to which `dense_forward_core` runs float32 products on W unpacked (from
# UNPACKED_MIN_ROWS; `fastnn_unpacked_rows`) rather than BLAS, where the CPU has AVX-512F;
# 0: BLAS always (`use_packed(False)`).
cdef Py_ssize_t _unpacked_max_rows = UNPACKED_MAX_ROWS if _packed_cpu else 0


def packed_path():
    """Whether new engines pack their float32 weights for the AVX-512F product, and new
    training steps (`train.DenseTrainer`, made when a model first trains) run their
    float32 products on it."""
    return _packed_use[0]


def use_packed(enabled=None):
    """Use the packed product in engines and training steps made from now on, and the
    unpacked one in `dense_forward_core` (Sequential.predict's layers) from now on, where
    the CPU allows it (None: where the CPU allows it; False: BLAS always, as on other
    CPUs)."""
    global _unpacked_max_rows
    _packed_use[0] = bool(_packed_cpu) and (enabled is None or bool(enabled))
    _unpacked_max_rows = UNPACKED_MAX_ROWS if _packed_use[0] else 0


def pack_panels(W):
    """The panels of a float32 (k, n) matrix for `packed_forward`: shape
    (ceil(n / 32), k, 32), panel p holding columns 32 p to 32 p + 31, zero padded."""
    k, n = W.shape
    panels = -(-n // FASTNN_PANEL)
    padded = np.zeros((k, panels * FASTNN_PANEL), np.float32)
    padded[:, :n] = W
    return np.ascontiguousarray(padded.reshape(k, panels, FASTNN_PANEL).transpose(1, 0, 2))


def packed_weight_grad(X, dZ, r0=0, r1=None):
    """Rows r0 to r1 of the weight gradient X.T @ dZ by the packed kernel's tiles
    (`fastnn_weight_grad_rows`, as the training step computes it where the CPU has
    AVX-512F): float32 X (batch, n_in) and dZ (batch, n_out), n_out >= 32. Each element
    is the sum over the rows in order. For tests and benchmarks."""
    if not _packed_cpu:
        raise RuntimeError("the CPU has no AVX-512F")
    cdef cnp.ndarray x = np.ascontiguousarray(X, np.float32)
    cdef cnp.ndarray dz = np.ascontiguousarray(dZ, np.float32)
    if x.ndim != 2 or dz.ndim != 2:
        raise ValueError("X and dZ must be 2-D")
    cdef Py_ssize_t batch = x.shape[0], n_in = x.shape[1], n_out = dz.shape[1]
    cdef Py_ssize_t a = r0, z = n_in if r1 is None else r1
    if dz.shape[0] != batch or n_out < FASTNN_PANEL or not 0 <= a <= z <= n_in:
        raise ValueError("X (batch, n_in) and dZ (batch, n_out >= 32) of one batch, "
                         "0 <= r0 <= r1 <= n_in")
    cdef cnp.ndarray dW = np.empty((z - a, n_out), np.float32)
    with nogil:
        fastnn_weight_grad_rows(<const float*>cnp.PyArray_DATA(x) + a, n_in, z - a, batch,
                                <const float*>cnp.PyArray_DATA(dz), n_out,
                                <float*>cnp.PyArray_DATA(dW), n_out)
    return dW


cdef bint packed_forward(const float* X, const float* Wp, const float* b, float* Y,
                         Py_ssize_t batch, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                         const float* alpha, int n_threads) noexcept nogil:
    """Y := act(X @ W + b) with W given as its panels (`pack_panels`); b may be NULL.
    Returns False when a sum X @ W + b is NaN or infinite, always the case when X holds a
    NaN or an infinity (see dense_packed.h): True proves X finite."""
    cdef Py_ssize_t blocks = (batch + PACKED_BLOCK_ROWS - 1) // PACKED_BLOCK_ROWS
    cdef Py_ssize_t q
    cdef int bad = 0
    cdef int nt = threads_for(batch * n_in * n_out, n_threads)
    if nt > blocks:
        nt = <int>blocks
    if nt == 1:
        # No OpenMP team for one thread: a team of one still meets at its barriers (futex
        # calls), and the engine calls this once per layer for every block of 24 rows
        # (100-256-128-5 at 12,500 rows on one thread: 7% of the time).
        for q in range(blocks):
            bad = bad | _packed_block(X, Wp, b, Y, batch, n_in, n_out, act, alpha, q)
        return bad == 0
    for q in prange(blocks, nogil=True, schedule="dynamic", num_threads=nt):
        bad += _packed_block(X, Wp, b, Y, batch, n_in, n_out, act, alpha, q)
    return bad == 0


cdef inline int _packed_block(const float* X, const float* Wp, const float* b, float* Y,
                              Py_ssize_t batch, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                              const float* alpha, Py_ssize_t q) noexcept nogil:
    """Block q (rows PACKED_BLOCK_ROWS q onwards) of `packed_forward`; nonzero when a sum
    is NaN or infinite."""
    cdef Py_ssize_t i
    cdef Py_ssize_t r0 = q * PACKED_BLOCK_ROWS
    cdef Py_ssize_t r1 = r0 + PACKED_BLOCK_ROWS if r0 + PACKED_BLOCK_ROWS < batch else batch
    cdef int bad = fastnn_packed_rows(X + r0 * n_in, n_in, r1 - r0, n_in, Wp, n_out, b,
                                      act == ACT_RELU, Y + r0 * n_out, n_out) != 0
    if act == ACT_SOFTMAX and fastnn_packed_softmax(Y + r0 * n_out, r1 - r0, n_out):
        pass  # rows of at most 16 units, sixteen rows at a time
    elif act != ACT_RELU and act != ACT_LINEAR:  # not fused into the kernel
        for i in range(r0, r1):
            act_forward_row(act, Y + i * n_out, Y + i * n_out, n_out, alpha)
    return bad


cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, const floating* A, int lda,
               const floating* B, int ldb, floating beta, floating* C, int ldc) noexcept nogil:
    """C := op(A) @ op(B) + beta * C for row-major C of shape (m, n); op transposes on request."""
    cdef char ta = b'T' if trans_a else b'N'
    cdef char tb = b'T' if trans_b else b'N'
    cdef floating one = 1
    cdef Py_ssize_t i, j
    if m == 0 or n == 0:
        return
    if k == 0:
        for i in range(m):
            if beta == 0:
                memset(C + i * ldc, 0, n * sizeof(floating))
            else:
                for j in range(n):
                    C[i * ldc + j] *= beta
        return
    if m == 1:
        _gemv_row(trans_a, trans_b, n, k, A, lda, B, ldb, beta, C)
    elif floating is float:
        sgemm(&tb, &ta, &n, &m, &k, &one, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &n, &m, &k, &one, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


cdef void _gemv_row(bint trans_a, bint trans_b, int n, int k, const floating* A, int lda,
                    const floating* B, int ldb, floating beta, floating* c) noexcept nogil:
    """c := a @ op(B) + beta * c for the one row a of op(A): a matrix-vector product, which
    BLAS runs far faster than a one-row GEMM."""
    cdef char t
    # BLAS sees row-major B (k, n) as column-major (n, k): c = that @ a; B.T likewise.
    cdef int rows = k if trans_b else n
    cdef int cols = n if trans_b else k
    cdef int inc_a = lda if trans_a else 1
    cdef int inc_c = 1
    cdef floating one = 1
    t = b'T' if trans_b else b'N'
    if floating is float:
        sgemv(&t, &rows, &cols, &one, <float*>B, &ldb, <float*>A, &inc_a, &beta, c, &inc_c)
    else:
        dgemv(&t, &rows, &cols, &one, <double*>B, &ldb, <double*>A, &inc_a, &beta, c, &inc_c)


cdef void bias_act_row(floating* y, const floating* b, floating* z, Py_ssize_t n, int act,
                       const floating* alpha) noexcept nogil:
    """y := act(y + b) over one row, in place; z := y + b first when z is not NULL."""
    cdef Py_ssize_t j
    if b != NULL:
        for j in range(n):
            y[j] = y[j] + b[j]
    if z != NULL:
        memcpy(z, y, n * sizeof(floating))
    act_forward_row(act, y, y, n, alpha)


cdef void gemm_chunk(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                     const floating* A, Py_ssize_t lda, const floating* B, Py_ssize_t ldb,
                     floating* C, Py_ssize_t ldc, Py_ssize_t c) noexcept nogil:
    """C[r] := op(A)[r] @ op(B) for the rows r of chunk c (`_parallel.gemm_stop`)."""
    cdef Py_ssize_t macs = m * n * k, r0 = c * gemm_rows(m, macs)
    cdef Py_ssize_t rows = gemm_stop(m, macs, c) - r0
    gemm(trans_a, trans_b, <int>rows, <int>n, <int>k, A + (r0 if trans_a else r0 * lda),
         <int>lda, B, <int>ldb, <floating>0, C + r0 * ldc, <int>ldc)


cdef void gemm_parallel(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                        const floating* A, Py_ssize_t lda, const floating* B, Py_ssize_t ldb,
                        floating* C, Py_ssize_t ldc, int n_threads) noexcept nogil:
    """C := op(A) @ op(B) for row-major C of shape (m, n), chunk by chunk."""
    cdef Py_ssize_t c, nc = gemm_chunks(m, m * n * k)
    cdef int nt = gemm_threads(m * n * k, nc, n_threads)
    for c in prange(nc, nogil=True, schedule="dynamic", num_threads=nt, use_threads_if=nt > 1):
        gemm_chunk(trans_a, trans_b, m, n, k, A, lda, B, ldb, C, ldc, c)


cdef inline bint _unpacked(Py_ssize_t batch, Py_ssize_t n_out) noexcept nogil:
    """Whether `dense_forward_core` runs a float32 product of `batch` rows on W unpacked
    (`fastnn_unpacked_rows`, where the CPU has AVX-512F), not BLAS: from
    UNPACKED_MIN_ROWS to UNPACKED_MAX_ROWS rows, where packing W would cost more than the
    product; a layer's bits are those of the engine's packed product (layers of fewer than
    32 units stay BLAS's, so a network's may differ). On Zen 5, 784-256-128-10
    (Sequential.predict, weights on cache lines) ran 5 rows in 12-14 us and 32 in 60-74 us,
    against OpenBLAS 0.3.30's 63 and 117 us with its AVX-512 (SkylakeX) kernels, and 103
    and 185 us with its AVX2 (Haswell) ones; 2 and 4 rows in 10-11 and 13-15 us, where
    the SkylakeX kernels took 8.5 and 9.0 us, so those stay BLAS's."""
    return UNPACKED_MIN_ROWS <= batch <= _unpacked_max_rows and n_out >= FASTNN_PANEL


cdef inline void _bias_act_rows(floating* Y, const floating* b, floating* Z, Py_ssize_t r0,
                                Py_ssize_t r1, Py_ssize_t n_out, int act,
                                const floating* alpha) noexcept nogil:
    """Rows r0 to r1 - 1 of Y := act(Y + b), Z := Y + b when Z is not NULL."""
    cdef Py_ssize_t i
    for i in range(r0, r1):
        bias_act_row(Y + i * n_out, b, NULL if Z == NULL else Z + i * n_out, n_out, act, alpha)


cdef void dense_forward_core(const floating* X, const floating* W, const floating* b,
                             floating* Z, floating* Y, Py_ssize_t batch, Py_ssize_t n_in,
                             Py_ssize_t n_out, int act, const floating* alpha,
                             int n_threads) noexcept nogil:
    """Y := act(X @ W + b); Z := X @ W + b when Z is not NULL. Each chunk of rows gets
    its bias and activation right after its product, while it is in cache."""
    cdef Py_ssize_t c, macs = batch * n_in * n_out
    cdef Py_ssize_t rows = gemm_rows(batch, macs), nc = gemm_chunks(batch, macs)
    cdef int nt = gemm_threads(macs, nc, n_threads)
    if floating is float:
        if _unpacked(batch, n_out):
            fastnn_unpacked_rows(X, n_in, batch, n_in, W, n_out, NULL, 0, Y, n_out)
            _bias_act_rows(Y, b, Z, 0, batch, n_out, act, alpha)
            return
    if nt == 1:
        # No OpenMP region for one thread: even with its `if` false, a region makes and
        # frees a team of one, most of a small layer's time at batch 1.
        for c in range(nc):
            gemm_chunk(False, False, batch, n_out, n_in, X, n_in, W, n_out, Y, n_out, c)
            _bias_act_rows(Y, b, Z, c * rows, gemm_stop(batch, macs, c), n_out, act, alpha)
        return
    for c in prange(nc, nogil=True, schedule="dynamic", num_threads=nt):
        gemm_chunk(False, False, batch, n_out, n_in, X, n_in, W, n_out, Y, n_out, c)
        _bias_act_rows(Y, b, Z, c * rows, gemm_stop(batch, macs, c), n_out, act, alpha)


cdef void column_sums(const floating* A, floating* out, Py_ssize_t rows,
                      Py_ssize_t cols) noexcept nogil:
    """out := A.sum(0), rows added in order so the result never depends on threads."""
    cdef Py_ssize_t i, j
    memset(out, 0, cols * sizeof(floating))
    for i in range(rows):
        for j in range(cols):
            out[j] += A[i * cols + j]


# The `_into` functions run on arrays the caller made and checked (a layer's own weights
# and buffers): they only read the data pointers. Contract: every array is C-contiguous
# and of W's dtype (float32 or float64), with the shapes `dense_forward` and
# `dense_backward` document; alpha as `activations.alpha_array` makes it; an optional
# array may be None.

cdef inline void* _data(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def forward_into(cnp.ndarray X, cnp.ndarray W, b, cnp.ndarray Y, Z, int act,
                 cnp.ndarray alpha, int n_threads):
    """Y := act(X @ W + b); Z := X @ W + b when Z is given. Unchecked (see above)."""
    cdef Py_ssize_t batch = cnp.PyArray_DIM(X, 0), n_in = cnp.PyArray_DIM(X, 1)
    cdef Py_ssize_t n_out = cnp.PyArray_DIM(W, 1)
    cdef void* x = _data(X)
    cdef void* w = _data(W)
    cdef void* bp = _data(b)
    cdef void* z = _data(Z)
    cdef void* y = _data(Y)
    cdef void* a = _data(alpha)
    if batch == 0 or n_out == 0:
        return
    blas_serial_enter()
    if cnp.PyArray_TYPE(W) == cnp.NPY_FLOAT:
        with nogil:
            dense_forward_core(<const float*>x, <const float*>w, <const float*>bp, <float*>z,
                               <float*>y, batch, n_in, n_out, act, <const float*>a, n_threads)
    else:
        with nogil:
            dense_forward_core(<const double*>x, <const double*>w, <const double*>bp,
                               <double*>z, <double*>y, batch, n_in, n_out, act,
                               <const double*>a, n_threads)
    blas_serial_exit()


cdef struct ChainLayer:
    const void* W
    const void* b
    const void* alpha
    Py_ssize_t n_in
    Py_ssize_t n_out
    int act


cdef void _chain_run(const ChainLayer* layers, Py_ssize_t n_layers, const floating* X,
                     floating* Y, floating* scratch, Py_ssize_t half, Py_ssize_t batch,
                     int n_threads) noexcept nogil:
    """Y := layer_k(... layer_1(X)), each layer `dense_forward_core`; the outputs between
    layers alternate between the two halves of `scratch` (`half` elements apart)."""
    cdef Py_ssize_t i, n_in, n_out
    cdef const floating* src = X
    cdef const floating* W
    cdef const floating* b
    cdef const floating* alpha
    cdef floating* dst
    for i in range(n_layers):
        dst = Y if i == n_layers - 1 else scratch + (i % 2) * half
        W, b = <const floating*>layers[i].W, <const floating*>layers[i].b
        alpha, n_in, n_out = <const floating*>layers[i].alpha, layers[i].n_in, layers[i].n_out
        dense_forward_core(src, W, b, <floating*>NULL, dst, batch, n_in, n_out,
                           layers[i].act, alpha, n_threads)
        src = dst


cdef class DenseChain:
    """Dense layers run one after another in one call: Y := f_k(... f_1(X)), f_i(X) :=
    act_i(X @ W_i + b_i), each layer as `forward_into` runs it (the same results, bit for
    bit), with no return to Python between layers.

    Built from (W, b, act, alpha) per layer under the contract of `forward_into` (b and
    alpha may be None), the widths chained; it reads those arrays themselves, never
    copies, so writes into them are seen by the next call. It keeps no buffer between
    calls, so several threads may run one chain at once.
    """
    cdef ChainLayer* layers
    cdef Py_ssize_t n_layers, n_in, n_out, width
    cdef int typenum
    cdef tuple arrays  # keeps alive the arrays `layers` points into

    def __cinit__(self, steps):
        cdef Py_ssize_t i
        cdef cnp.ndarray W
        steps = tuple(tuple(step) for step in steps)
        if not steps:
            raise ValueError("a chain needs at least one layer")
        self.layers = <ChainLayer*>malloc(len(steps) * sizeof(ChainLayer))
        if self.layers == NULL:
            raise MemoryError()
        self.arrays = steps
        self.n_layers = len(steps)
        self.typenum = cnp.PyArray_TYPE(<cnp.ndarray>steps[0][0])
        self.width = 0
        for i, (W, b, act, alpha) in enumerate(steps):
            self.layers[i].W = _data(W)
            self.layers[i].b = _data(b)
            self.layers[i].alpha = _data(alpha)
            self.layers[i].n_in = cnp.PyArray_DIM(W, 0)
            self.layers[i].n_out = cnp.PyArray_DIM(W, 1)
            self.layers[i].act = act
            if i < self.n_layers - 1 and self.layers[i].n_out > self.width:
                self.width = self.layers[i].n_out
        self.n_in = self.layers[0].n_in
        self.n_out = self.layers[self.n_layers - 1].n_out

    def __dealloc__(self):
        free(self.layers)

    def predict(self, object X, int n_threads):
        """The chain's output for X, or None when X is not ready to run: ready is a
        C-ordered 2-D array of the weights' dtype and the first layer's width, with no NaN
        and no infinity (the caller converts or rejects anything else)."""
        cdef cnp.ndarray x, y
        cdef cnp.npy_intp dims[2]
        cdef Py_ssize_t batch, half
        cdef void* xp
        cdef void* scratch = NULL
        cdef bint finite
        if not rows_ready(X, self.typenum, self.n_in):
            return None
        x = <cnp.ndarray>X
        batch = cnp.PyArray_DIM(x, 0)
        xp = cnp.PyArray_DATA(x)
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                finite = all_finite(<const float*>xp, batch * self.n_in)
            else:
                finite = all_finite(<const double*>xp, batch * self.n_in)
        if not finite:
            return None
        dims[0] = batch
        dims[1] = self.n_out
        y = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        if batch == 0:
            return y
        # Two halves for the outputs between layers, 64 bytes or a multiple apart.
        half = (batch * self.width + 15) // 16 * 16
        if self.n_layers > 1:
            scratch = malloc(2 * half * cnp.PyArray_ITEMSIZE(y))
            if scratch == NULL:
                raise MemoryError()
        blas_serial_enter()
        with nogil:
            if self.typenum == cnp.NPY_FLOAT:
                _chain_run(self.layers, self.n_layers, <const float*>xp,
                           <float*>cnp.PyArray_DATA(y), <float*>scratch, half, batch, n_threads)
            else:
                _chain_run(self.layers, self.n_layers, <const double*>xp,
                           <double*>cnp.PyArray_DATA(y), <double*>scratch, half, batch,
                           n_threads)
        blas_serial_exit()
        free(scratch)
        return y


cdef void dense_backward_core(const floating* dY, const floating* X, const floating* W,
                              const floating* Z, const floating* Y, floating* dZ, floating* dW,
                              floating* db, floating* dX, Py_ssize_t batch, Py_ssize_t n_in,
                              Py_ssize_t n_out, int act, const floating* alpha,
                              int n_threads) noexcept nogil:
    """dZ := dY * act'(Z); dW := X.T @ dZ; db := dZ.sum(0); dX := dZ @ W.T when dX is not
    NULL."""
    if batch == 0 or n_out == 0:
        memset(dW, 0, n_in * n_out * sizeof(floating))
        memset(db, 0, n_out * sizeof(floating))
        if dX != NULL:
            memset(dX, 0, batch * n_in * sizeof(floating))
        return
    cdef Py_ssize_t c, macs = batch * n_in * n_out, nw = gemm_chunks(n_in, macs)
    cdef Py_ssize_t nx = gemm_chunks(batch, macs) if dX != NULL else 0
    cdef int nt = gemm_threads((1 + (dX != NULL)) * batch * n_in * n_out, nw + nx + 1,
                               n_threads)
    act_backward_rows(act, Z, Y, dY, dZ, batch, n_out, alpha, n_threads)
    # One loop for both products, in chunks of rows of dW (whose rows are X's columns)
    # and of dX, and the bias gradient as one more item.
    for c in prange(nw + nx + 1, nogil=True, schedule="dynamic", num_threads=nt,
                    use_threads_if=nt > 1):
        if c < nw:
            gemm_chunk(True, False, n_in, n_out, batch, X, n_in, dZ, n_out, dW, n_out, c)
        elif c < nw + nx:
            gemm_chunk(False, True, batch, n_in, n_out, dZ, n_out, W, n_out, dX, n_in, c - nw)
        else:
            column_sums(dZ, db, batch, n_out)


def backward_into(cnp.ndarray dY, cnp.ndarray X, cnp.ndarray W, cnp.ndarray Z, cnp.ndarray Y,
                  cnp.ndarray dZ, cnp.ndarray dW, cnp.ndarray db, dX, int act,
                  cnp.ndarray alpha, int n_threads):
    """dZ := dY * act'(Z); dW := X.T @ dZ; db := dZ.sum(0); dX := dZ @ W.T when dX is
    given. Unchecked (see above); dZ may be dY."""
    cdef Py_ssize_t batch = cnp.PyArray_DIM(dY, 0), n_out = cnp.PyArray_DIM(dY, 1)
    cdef Py_ssize_t n_in = cnp.PyArray_DIM(X, 1)
    cdef void* p[10]
    p[:] = [_data(dY), _data(X), _data(W), _data(Z), _data(Y), _data(dZ), _data(dW), _data(db),
            _data(dX), _data(alpha)]
    blas_serial_enter()
    if cnp.PyArray_TYPE(W) == cnp.NPY_FLOAT:
        with nogil:
            dense_backward_core(<const float*>p[0], <const float*>p[1], <const float*>p[2],
                                <const float*>p[3], <const float*>p[4], <float*>p[5],
                                <float*>p[6], <float*>p[7], <float*>p[8], batch, n_in, n_out,
                                act, <const float*>p[9], n_threads)
    else:
        with nogil:
            dense_backward_core(<const double*>p[0], <const double*>p[1], <const double*>p[2],
                                <const double*>p[3], <const double*>p[4], <double*>p[5],
                                <double*>p[6], <double*>p[7], <double*>p[8], batch, n_in, n_out,
                                act, <const double*>p[9], n_threads)
    blas_serial_exit()


def _check_dense(X, W):
    W = as_float_array(W, "W", ndim=2)
    X = as_float_array(X, "X", dtype=W.dtype, ndim=2)
    if X.shape[1] != W.shape[0]:
        raise ValueError(f"X has shape {X.shape} but W has shape {W.shape}: "
                         f"X needs {W.shape[0]} columns")
    return X, W


def dense_forward(X, W, b=None, activation="linear", alpha=None, *, out=None, preact=None,
                  n_threads=None):
    """Y := act(X @ W + b)

    One GEMM, then one pass per row that adds the bias and applies the activation.

    Parameters
    ----------
    X : ndarray of shape (batch, n_in)
    W : ndarray of shape (n_in, n_out), float32 or float64; sets the dtype
    b : ndarray of shape (n_out,), optional
    activation : str
        A name from ``fastnn._kernels.activations.CODES``.
    alpha : float or ndarray of shape (n_out,), optional
        The activation's slope (see `activation_forward`).
    out : ndarray of shape (batch, n_out), optional
    preact : ndarray of shape (batch, n_out), optional
        Receives ``X @ W + b``, which backward needs for some activations.

    Returns
    -------
    Y : ndarray of shape (batch, n_out)
    """
    code = activation_code(activation)
    X, W = _check_dense(X, W)
    shape = (X.shape[0], W.shape[1])
    if b is not None:
        b = as_float_array(b, "b", dtype=W.dtype, ndim=1)
        if b.shape[0] != W.shape[1]:
            raise ValueError(f"b has shape {b.shape} but W has shape {W.shape}")
    Y = check_out(out, "out", shape, W.dtype)
    if preact is not None:
        check_out(preact, "preact", shape, W.dtype)
    a = alpha_array(activation, alpha, W.shape[1], W.dtype)
    forward_into(X, W, b, Y, preact, code, a, resolve_threads(n_threads))
    return Y


def dense_backward(dY, X, W, Z, Y, activation="linear", alpha=None, *, need_dX=True,
                   dZ=None, dW=None, db=None, dX=None, n_threads=None):
    """dZ := dY * act'(Z);  dW := X.T @ dZ;  db := dZ.sum(0);  dX := dZ @ W.T

    Parameters
    ----------
    dY : ndarray of shape (batch, n_out)
    X : ndarray of shape (batch, n_in), the forward input
    W : ndarray of shape (n_in, n_out)
    Z, Y : ndarray of shape (batch, n_out)
        Pre-activation and output of the forward pass. Activations whose derivative
        follows from Y alone (linear, sigmoid, tanh, softmax, ...) accept Y for Z.
    need_dX : bool
        False skips ``dX`` (the first layer has no use for it).
    dZ, dW, db, dX : ndarray, optional
        Output buffers; ``dZ`` may be ``dY`` itself.

    Returns
    -------
    dX : ndarray of shape (batch, n_in), or None
    dW : ndarray of shape (n_in, n_out)
    db : ndarray of shape (n_out,)
    """
    code = activation_code(activation)
    X, W = _check_dense(X, W)
    shape = (X.shape[0], W.shape[1])
    dY = as_float_array(dY, "dY", dtype=W.dtype, ndim=2)
    Z = as_float_array(Z, "Z", dtype=W.dtype, ndim=2)
    Y = as_float_array(Y, "Y", dtype=W.dtype, ndim=2)
    for arr, name in ((dY, "dY"), (Z, "Z"), (Y, "Y")):
        if arr.shape != shape:
            raise ValueError(f"{name} has shape {arr.shape} but X @ W has shape {shape}")
    dZ = check_out(dZ, "dZ", shape, W.dtype)
    dW = check_out(dW, "dW", W.shape, W.dtype)
    db = check_out(db, "db", (W.shape[1],), W.dtype)
    if need_dX:
        dX = check_out(dX, "dX", X.shape, W.dtype)
    else:
        dX = None
    a = alpha_array(activation, alpha, W.shape[1], W.dtype)
    backward_into(dY, X, W, Z, Y, dZ, dW, db, dX, code, a, resolve_threads(n_threads))
    return dX, dW, db
