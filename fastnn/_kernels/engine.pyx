"""Compiled plan of an inference engine: every layer of a network in one call without the GIL.

A `Plan` holds one C descriptor per layer (pointers into arrays the plan keeps
alive) and runs the whole network inside a single ``with nogil:`` block. Scratch
memory comes from a small pool of preallocated sets; a lock is taken only to pick
a set, so many Python threads can run one plan at once, each on its own set.

Large chunks of a float32 plan whose dense layers all run on packed weights (see
`fastnn._kernels.dense.packed_forward`) or quantized ones (no BLAS call, no sparse form
that runs for a chunk of that size) are shared out among the threads in blocks of
up to BLOCK_ROWS rows, each block through every layer on one thread: one parallel region
per batch instead of one per layer and chunk (blocks need no chunk-sized buffers), and a
thread that falls behind (descheduled on a busy machine) delays only the blocks it has
taken. One thread runs such chunks block by block too, so a block's activations stay in
its cache. Every row's result is the same as in a whole-chunk run.

With two threads or more, such blocks run on fastnn's own worker threads (workers.h) rather
than an OpenMP team, so that the calling thread never waits for a worker the scheduler has
put aside on a busy machine: the caller and the workers take blocks as they come free, and
the caller computes itself a block a worker is late with; the plan keeps the input of a call
alive while a late worker still reads it. Where workers.h is unavailable (FNW_AVAILABLE is
0), or while another call holds the workers, the blocks run in an OpenMP team.

Activations flow in one of two layouts: rows (batch, width), or transposed
(width, batch) when a batched sparse layer needs the batch contiguous. A plan
transposes only where a layer needs the other layout: before the first batched
sparse layer, before a softmax (it needs whole rows) and at the end. Dense layers
and affine layers work in either layout; block-sparse and quantized layers take rows.
For one row both layouts are the same memory and nothing is ever transposed.
"""
cimport cython
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t
from libc.stdlib cimport calloc, free, malloc
from libc.string cimport memcpy
from cpython.pythread cimport (PyThread_type_lock, PyThread_allocate_lock, PyThread_free_lock,
                               PyThread_acquire_lock, PyThread_release_lock, WAIT_LOCK)

cimport numpy as cnp

from fastnn._kernels._finite cimport all_finite
from fastnn._kernels._openmp cimport omp_get_thread_num
from fastnn._kernels._parallel cimport ROW_BLOCK, threads_for
from fastnn._kernels._threads cimport blas_serial_enter, blas_serial_exit
from fastnn._kernels.blocksparse cimport bsr_forward_rows
from fastnn._kernels.activations cimport (act_forward_row, act_forward_rows, ACT_LINEAR, ACT_PRELU,
                                          ACT_LEAKY_RELU, ACT_SOFTMAX)
from fastnn._kernels.dense cimport (bias_act_row, dense_forward_core, gemm, gemm_parallel,
                                    packed_forward, rows_ready)
from fastnn._kernels.sparse cimport csr_matvec, csr_forward_t, transpose
from fastnn._kernels.quant cimport QWeights, QuantDense, qdense_forward, qdense_scratch_bytes

from fastnn._kernels.workers cimport (FNW_AVAILABLE, FNW_BAD, FNW_CALLER, FNW_DONE,
    FNW_OPEN, fnw_close, fnw_count_redone, fnw_count_taken, fnw_enter, fnw_exit,
    fnw_finish, fnw_finished, fnw_job, fnw_job_new, fnw_mark, fnw_now, fnw_owner,
    fnw_owner_free, fnw_owner_here, fnw_owner_new, fnw_pool, fnw_pool_get, fnw_post,
    fnw_readers, fnw_redone, fnw_relax, fnw_release, fnw_sleep, fnw_state, fnw_take,
    fnw_taken, fnw_wait, fnw_withdraw, fnw_work_fn)

import sys

import numpy as np

from fastnn._kernels._memory import aligned_size, gather
from fastnn._kernels.dense import pack_panels, packed_path

cnp.import_array()

cdef enum:
    KIND_DENSE = 0
    KIND_AFFINE = 1

KINDS = {"dense": KIND_DENSE, "affine": KIND_AFFINE}
"""Kernel code of each layer kind, by name."""
BLOCKWISE_ROWS = BLOCKWISE_MIN_ROWS
"""Chunks of this many rows and more run blockwise (unless a layer runs sparse there)."""

# Floats per scratch buffer at most: wide networks run in smaller chunks of rows.
SCRATCH_ELEMENTS = 1 << 21
# Rows from which a float32 dense layer in the row layout runs on its packed weights
# (where the CPU allows: `fastnn._kernels.dense.packed_path`) instead of BLAS. On one
# thread (Zen 4, OpenBLAS) BLAS with 5-15 rows ran 1.1-5x slower than packed (784x256 at
# 8 rows: 94 us against 31); with 2-4 rows BLAS ran up to 1.5x faster there. On Zen 5,
# 784-256-128-10 with 2, 3 and 4 rows ran in 7.9-8.3, 9.3-10.0 and 11.6-12.3 us packed,
# against 10.0-10.5, 16.3-17.1 and 10.7-11.1 us in OpenBLAS 0.3.30 with its AVX-512
# (SkylakeX) kernels, and 80-110 us with its AVX2 (Haswell) ones (OPENBLAS_CORETYPE).
cdef Py_ssize_t PACKED_MIN_ROWS = 2

cdef enum:
    # Rows per block of a chunk shared out among threads (see the module docstring): two
    # tiles of the packed kernel. The packed kernel streams a layer's panels once per
    # tile of 12 rows whatever the block, so on one thread (Zen 4) blocks of 12, 24 and
    # 48 rows ran within 1% of each other; smaller blocks leave less to wait for at the
    # end of a batch, when one thread takes the last block and the others are done.
    BLOCK_ROWS = 24
    # Chunks of fewer rows run layer by layer (the packed kernel's blocks of 48 rows make
    # that one thread). On two threads (Zen 5) 784-256-128-10 ran 40-95 rows blockwise in
    # 65-120 us; layer by layer, 49-95 rows, two blocks of the packed kernel per layer on
    # an OpenMP team, took 176-216 us, slower than one thread (102-174 us); 32 rows
    # blockwise took 64-67 us against 59-62 on one thread.
    BLOCKWISE_MIN_ROWS = 40

# A block a worker took is computed by the caller itself when the worker has not finished
# it PATIENCE times the caller's mean block time after the caller finished its own blocks
# (quiet, a worker finishes its last block within one block time of the caller).
cdef double PATIENCE = 1.5
# It waits for them spinning for the first SPIN_SECONDS (a worker's last block often ends
# about when the caller's does), then asleep: spinning longer would take the core from a
# worker that shares it, on a machine busier than its cores.
cdef double SPIN_SECONDS = 20e-6
# Seconds a worker sleeps after it took a block (tests: a worker the scheduler put aside
# in the middle of a block).
cdef double _worker_delay = 0  # see _delay_workers


def _delay_workers(double seconds):
    """Make every worker sleep `seconds` when it has taken a block, as if descheduled there
    (for tests; 0 to stop)."""
    global _worker_delay
    _worker_delay = seconds


cdef extern from "subnormal.h" nogil:
    unsigned int fastnn_float_mode()
    void fastnn_set_float_mode(unsigned int mode)
    enum:
        FASTNN_FTZ_DAZ


def _flush_subnormals(bint on):
    """Set or clear flush-to-zero and denormals-are-zero in the calling thread's
    floating-point mode (x86; elsewhere nothing); returns whether they were set (for
    tests: a caller in such a mode, which the workers take on)."""
    cdef unsigned int mode = fastnn_float_mode()
    fastnn_set_float_mode(mode | FASTNN_FTZ_DAZ if on else mode & ~FASTNN_FTZ_DAZ)
    return FASTNN_FTZ_DAZ != 0 and mode & FASTNN_FTZ_DAZ == FASTNN_FTZ_DAZ


def _blocks_taken_by_workers():
    """Blocks the workers of this process have taken so far (for tests)."""
    return fnw_taken()


def _blocks_redone_by_callers():
    """Blocks of late workers that callers of this process computed themselves (for tests)."""
    return fnw_redone()


def chunk_rows(Py_ssize_t max_batch, Py_ssize_t max_width):
    """Rows per chunk of a plan whose widest layer has `max_width` units: at most
    `max_batch`, and few enough that a scratch buffer holds SCRATCH_ELEMENTS floats."""
    return max(1, min(max_batch, SCRATCH_ELEMENTS // max(1, max_width)))


cdef struct Layer:
    int kind
    int act
    int pieces
    Py_ssize_t n_in
    Py_ssize_t n_z              # width before maxout (n_out * pieces)
    Py_ssize_t n_out
    Py_ssize_t sparse_min_batch  # the sparse form runs for chunks of sparse_min_batch to
    Py_ssize_t sparse_max_batch  # sparse_max_batch rows, the dense form for the others
    bint sparse_one_row         # and for a chunk of one row (CSR), below that range
    void* W                     # (n_in, n_z) row-major, or NULL
    void* Wp                    # W as packed panels (float32, see dense.pack_panels), or NULL
    int block                   # 0: the sparse form is CSR of W.T; else W in blocks of
    int64_t* indptr             # `block` outputs (see fastnn._kernels.blocksparse); or NULL
    void* indices
    bint wide_indices           # int32 indices, else uint16
    void* data                  # (nnz,) for CSR, (nnzb, block) for blocks
    void* b                     # (n_z,) or NULL
    void* alpha                 # (n_out,) for prelu, else (1,)
    void* scale                 # affine only, (n_in,)
    void* shift
    const QWeights* q           # int8 or bf16 weights (float32 plans), else NULL


cdef inline void* _ptr(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)




cdef inline void _bias_act_trow(floating* y, floating bias, Py_ssize_t nb, int act,
                                const floating* alpha, Py_ssize_t r) noexcept nogil:
    """One row r of the transposed layout: its bias and slope are scalars."""
    cdef Py_ssize_t j
    if bias != 0:
        for j in range(nb):
            y[j] = y[j] + bias
    if act == ACT_PRELU:
        act_forward_row(ACT_LEAKY_RELU, y, y, nb, alpha + r)
    elif act != ACT_SOFTMAX and act != ACT_LINEAR:
        act_forward_row(act, y, y, nb, alpha)


cdef void _bias_act(floating* Z, const floating* b, Py_ssize_t nb, Py_ssize_t n, bint t,
                    Py_ssize_t ld, int act, const floating* alpha, int n_threads) noexcept nogil:
    """Z := act(Z + b) in either layout (transposed rows ld apart); softmax is skipped in
    the transposed one."""
    cdef Py_ssize_t i
    cdef int nt = threads_for(nb * n, n_threads)
    if nt == 1:
        # One thread runs without an OpenMP region: even with its `if` false, a region
        # makes and frees a team of one and meets at its barriers, 0.3-0.8 us in all, more
        # than a small layer's work (a 128x10 layer in blocks, two rows: 1.07 us, against
        # 0.34 for one row).
        if t:
            for i in range(n):
                _bias_act_trow(Z + i * ld, b[i] if b != NULL else 0, nb, act, alpha, i)
        else:
            for i in range(nb):
                bias_act_row(Z + i * n, b, <floating*>NULL, n, act, alpha)
        return
    if t:
        for i in prange(n, nogil=True, schedule="dynamic", chunksize=ROW_BLOCK, num_threads=nt,
                        use_threads_if=nt > 1):
            _bias_act_trow(Z + i * ld, b[i] if b != NULL else 0, nb, act, alpha, i)
    else:
        for i in prange(nb, nogil=True, schedule="dynamic", chunksize=ROW_BLOCK, num_threads=nt,
                        use_threads_if=nt > 1):
            bias_act_row(Z + i * n, b, <floating*>NULL, n, act, alpha)


cdef bint _dense_layer(const Layer* L, const floating* X, floating* Z, Py_ssize_t nb, bint t,
                       Py_ssize_t ld, bint use_sparse, int act, int n_threads,
                       bint packed_only) noexcept nogil:
    """Z := act(X @ W + b) for one layer, in the layout of X (t: transposed, rows ld apart);
    packed_only: on the packed weights whatever nb (a block, inside a parallel loop).
    False when the packed kernel met a NaN or an infinity among the sums X @ W + b (as it
    does whenever X holds one); the other kernels do not tell and return True."""
    cdef const floating* b = <const floating*>L.b
    cdef const floating* alpha = <const floating*>L.alpha
    if use_sparse and L.block:  # rows only (t is False)
        if L.wide_indices:
            bsr_forward_rows(X, L.n_in, nb, L.indptr, <const int*>L.indices,
                             <const floating*>L.data, L.block, b, Z, L.n_z, n_threads)
        else:
            bsr_forward_rows(X, L.n_in, nb, L.indptr, <const unsigned short*>L.indices,
                             <const floating*>L.data, L.block, b, Z, L.n_z, n_threads)
        _bias_act(Z, <const floating*>NULL, nb, L.n_z, False, 1, act, alpha, n_threads)
    elif use_sparse:
        if nb == 1:
            if L.wide_indices:
                csr_matvec(X, L.indptr, <const int*>L.indices, <const floating*>L.data, b, Z,
                           L.n_z, act, alpha, n_threads)
            else:
                csr_matvec(X, L.indptr, <const unsigned short*>L.indices,
                           <const floating*>L.data, b, Z, L.n_z, act, alpha, n_threads)
        elif L.wide_indices:
            csr_forward_t(X, ld, L.indptr, <const int*>L.indices, <const floating*>L.data, b,
                          Z, ld, L.n_z, nb, act, alpha, n_threads)
        else:
            csr_forward_t(X, ld, L.indptr, <const unsigned short*>L.indices,
                          <const floating*>L.data, b, Z, ld, L.n_z, nb, act, alpha, n_threads)
    elif L.Wp != NULL and not t and (nb >= PACKED_MIN_ROWS or packed_only):
        if floating is float:
            return packed_forward(X, <const float*>L.Wp, b, Z, nb, L.n_in, L.n_z, act, alpha,
                                  n_threads)
    elif nb == 1:
        gemm(False, False, 1, <int>L.n_z, <int>L.n_in, X, <int>L.n_in,
             <const floating*>L.W, <int>L.n_z, <floating>0, Z, <int>L.n_z)  # a GEMV
        _bias_act(Z, b, 1, L.n_z, False, 1, act, alpha, 1)
    elif t:
        gemm_parallel(True, False, L.n_z, nb, L.n_in, <const floating*>L.W, L.n_z, X, ld, Z,
                      ld, n_threads)
        _bias_act(Z, b, nb, L.n_z, t, ld, act, alpha, n_threads)
    else:
        dense_forward_core(X, <const floating*>L.W, b, <floating*>NULL, Z, nb, L.n_in, L.n_z,
                           act, alpha, n_threads)
    return True


cdef void _affine_layer(const Layer* L, const floating* X, floating* Y, Py_ssize_t nb, bint t,
                        Py_ssize_t ld, int act, int n_threads) noexcept nogil:
    """Y := act(X * scale + shift), per feature, in the layout of X."""
    cdef const floating* scale = <const floating*>L.scale
    cdef const floating* shift = <const floating*>L.shift
    cdef Py_ssize_t i, j, n = L.n_in
    cdef floating s, c
    if t:
        for i in range(n):
            s = scale[i]
            c = shift[i]
            for j in range(nb):
                Y[i * ld + j] = X[i * ld + j] * s + c
    else:
        for i in range(nb):
            for j in range(n):
                Y[i * n + j] = X[i * n + j] * scale[j] + shift[j]
    _bias_act(Y, <const floating*>NULL, nb, n, t, ld, act, <const floating*>L.alpha, n_threads)


cdef void _maxout(const floating* Z, floating* Y, Py_ssize_t nb, Py_ssize_t units, int pieces,
                  bint t, Py_ssize_t ld) noexcept nogil:
    """Y[., u] := max_p Z[., u * pieces + p], in either layout."""
    cdef Py_ssize_t i, u, j
    cdef int p
    cdef const floating* z
    cdef floating* y
    cdef floating v
    if t:
        for u in range(units):
            y = Y + u * ld
            z = Z + u * pieces * ld
            memcpy(y, z, nb * sizeof(floating))
            for p in range(1, pieces):
                for j in range(nb):
                    v = z[p * ld + j]
                    y[j] = v if v > y[j] else y[j]
    else:
        for i in range(nb):
            for u in range(units):
                z = Z + (i * units + u) * pieces
                v = z[0]
                for p in range(1, pieces):
                    v = z[p] if z[p] > v else v
                Y[i * units + u] = v


cdef inline floating* _other(floating** bufs, const floating* cur) noexcept nogil:
    return bufs[1] if cur == bufs[0] else bufs[0]


cdef bint _run_chunk(const Layer* layers, int n_layers, const floating* X, floating* Y,
                     Py_ssize_t nb, floating** bufs, char* qscratch, int n_threads,
                     int q_threads, bint packed_only) noexcept nogil:
    """Y := network(X) for nb rows; bufs holds three scratch buffers of
    (nb + 16) * max_width elements (nb * max_width below 16 rows), qscratch the
    scratch of quantized layers for up to q_threads threads; packed_only for a block of
    a blockwise chunk (see `_run_blocks`): dense layers on packed weights, no sparse form.
    False when the first layer's kernel met a non-finite sum (see `_dense_layer`)."""
    cdef const floating* cur = X
    cdef floating* dst
    cdef floating* z
    cdef bint t = False, use_sparse, last, first_finite = True
    cdef Py_ssize_t width = layers[0].n_in
    cdef int l, act
    cdef const Layer* L
    # Row stride of the transposed layout: one cache line more than nb, so that rows
    # a power of two apart do not all fall into the same cache sets.
    cdef Py_ssize_t ld = nb + 64 // sizeof(floating) if nb >= 16 else nb
    for l in range(n_layers):
        L = &layers[l]
        last = l == n_layers - 1
        use_sparse = (L.kind == KIND_DENSE and not packed_only
                      and (L.sparse_min_batch <= nb <= L.sparse_max_batch
                           or (nb == 1 and L.sparse_one_row)))
        if nb > 1 and use_sparse and L.block == 0 and not t:
            dst = _other(bufs, cur)
            transpose(cur, width, dst, ld, nb, width, n_threads)
            cur = dst
            t = True
        elif (L.q != NULL or (use_sparse and L.block)) and t:  # these layers take rows
            dst = _other(bufs, cur)
            transpose(cur, ld, dst, width, width, nb, n_threads)
            cur = dst
            t = False
        dst = Y if last and not t else _other(bufs, cur)
        # With maxout the activation follows the max; otherwise it is fused.
        z = bufs[2] if L.pieces > 1 else dst
        act = ACT_LINEAR if L.pieces > 1 else L.act
        if L.q != NULL:
            if floating is float:
                qdense_forward(L.q, cur, L.n_in, nb, <const float*>L.b, act,
                               <const float*>L.alpha, z, L.n_z, qscratch,
                               n_threads if n_threads < q_threads else q_threads)
        elif L.kind == KIND_DENSE:
            if not _dense_layer(L, cur, z, nb, t, ld, use_sparse, act, n_threads, packed_only):
                first_finite = first_finite and l > 0
        else:
            _affine_layer(L, cur, z, nb, t, ld, act, n_threads)
        if L.pieces > 1:
            _maxout(z, dst, nb, L.n_out, L.pieces, t, ld)
            _bias_act(dst, <const floating*>NULL, nb, L.n_out, t, ld, L.act,
                      <const floating*>L.alpha, n_threads)
        cur = dst
        width = L.n_out
        if t and L.act == ACT_SOFTMAX:
            dst = Y if last else _other(bufs, cur)
            transpose(cur, ld, dst, width, width, nb, n_threads)
            act_forward_rows(ACT_SOFTMAX, dst, dst, nb, width, <const floating*>L.alpha,
                             threads_for(nb * width, n_threads))
            cur = dst
            t = False
    if cur != Y:
        if t:
            transpose(cur, ld, Y, width, width, nb, n_threads)
        else:
            memcpy(Y, cur, nb * width * sizeof(floating))
    return first_finite


cdef bint _run_block(const Layer* layers, int n_layers, const floating* X, floating* Y,
                     Py_ssize_t nb, floating* scratch, Py_ssize_t part,
                     Py_ssize_t qpart) noexcept nogil:
    """One block of a blockwise chunk on the calling thread, in its own three buffers of
    `part` elements and, after them, `qpart` elements of scratch for its quantized layers
    (see `_block_scratch`); False when the first layer met a non-finite sum
    (`_run_chunk`)."""
    cdef floating* bufs[3]
    bufs[0] = scratch
    bufs[1] = scratch + part
    bufs[2] = scratch + 2 * part
    return _run_chunk(layers, n_layers, X, Y, nb, bufs,
                      <char*>(scratch + 3 * part) if qpart > 0 else NULL, 1, 1, True)


cdef inline Py_ssize_t _block_scratch(Py_ssize_t part, Py_ssize_t qpart) noexcept nogil:
    """Elements of a thread's scratch for blocks: three buffers and its quantized layers'."""
    return 3 * part + qpart


cdef inline Py_ssize_t _block_start(Py_ssize_t q, Py_ssize_t nb, Py_ssize_t blocks) noexcept nogil:
    """The first row of block q of nb rows in `blocks` blocks (see `_run_blocks`)."""
    return q * nb // blocks


cdef inline Py_ssize_t _block_rows(Py_ssize_t q, Py_ssize_t nb, Py_ssize_t blocks) noexcept nogil:
    """Rows of block q of nb rows in `blocks` blocks."""
    return _block_start(q + 1, nb, blocks) - _block_start(q, nb, blocks)


cdef bint _scan_run_block(const Layer* layers, int n_layers, const floating* X, floating* Y,
                          Py_ssize_t rows, floating* scratch, Py_ssize_t part,
                          Py_ssize_t qpart, bint scan) noexcept nogil:
    """`_run_block`; with `scan`, False when its rows hold a NaN or an infinity (then Y is
    partly written). A first dense layer (on packed weights, as every dense layer of a
    blockwise plan) checks the block's rows as it multiplies them: only a block whose
    sums came out NaN or infinite is scanned, to tell a NaN or infinity of X from an
    overflow. Any other first layer (a quantized one too): the block's rows are scanned
    just before they run, on the thread that runs them, while they come into cache."""
    cdef Py_ssize_t n = rows * layers[0].n_in
    if (scan and (layers[0].kind != KIND_DENSE or layers[0].q != NULL)
            and not all_finite(X, n)):
        return False
    if not _run_block(layers, n_layers, X, Y, rows, scratch, part, qpart) and scan:
        return all_finite(X, n)
    return True


cdef void _worker_blocks(fnw_job* job, void** scratch, size_t* scratch_bytes) noexcept nogil:
    """A worker's part of a job (workers.h): blocks as it takes them, each run on the
    caller's input into the job's output buffer, as a reader of the input (fnw_enter)."""
    cdef size_t size = sizeof(double) if job.dbl else sizeof(float)
    cdef size_t need = _block_scratch(job.part, job.qpart) * size
    cdef const char* x
    cdef long q
    cdef Py_ssize_t rows
    cdef bint ok
    if scratch_bytes[0] < need:
        free(scratch[0])
        scratch[0] = malloc(need)
        scratch_bytes[0] = need if scratch[0] != NULL else 0
        if scratch[0] == NULL:
            return
    while fnw_enter(job):
        q = fnw_take(job)
        if q < 0:
            fnw_exit(job)
            return
        fnw_count_taken()
        if _worker_delay > 0:
            fnw_sleep(_worker_delay)
        rows = _block_rows(q, job.rows, job.blocks)
        x = job.x + _block_start(q, job.rows, job.blocks) * job.x_block
        if job.dbl:
            ok = _scan_run_block(<const Layer*>job.layers, job.n_layers, <const double*>x,
                                 <double*>(job.y + q * job.y_block), rows,
                                 <double*>scratch[0], job.part, job.qpart, job.scan)
        else:
            ok = _scan_run_block(<const Layer*>job.layers, job.n_layers, <const float*>x,
                                 <float*>(job.y + q * job.y_block), rows,
                                 <float*>scratch[0], job.part, job.qpart, job.scan)
        fnw_exit(job)
        fnw_finish(job, q, FNW_DONE if ok else FNW_BAD)


cdef bint _pooled_blocks(fnw_job* job, const floating* X, floating* Y,
                         floating* scratch) noexcept nogil:
    """The caller's part of a job the workers were offered (workers.h): it runs blocks as
    it takes them on X into Y; then it copies the workers' finished blocks into Y, and
    computes itself those still unfinished PATIENCE mean block times later (see
    SPIN_SECONDS); then it closes the job. False when a block holds a NaN or an infinity
    (with job.scan)."""
    cdef const Layer* layers = <const Layer*>job.layers
    cdef Py_ssize_t n_in = job.n_in, n_out = job.n_out, nb = job.rows
    cdef long blocks = job.blocks, q
    cdef Py_ssize_t r0, rows
    cdef bint ok = True
    cdef int state
    cdef double start = fnw_now(), deadline, now, spin
    cdef int seen
    cdef long mine = 0
    while True:
        q = fnw_take(job)
        if q < 0:
            break
        fnw_mark(job, q, FNW_CALLER)
        if not _scan_run_block(layers, job.n_layers, X + _block_start(q, nb, blocks) * n_in,
                               Y + _block_start(q, nb, blocks) * n_out,
                               _block_rows(q, nb, blocks), scratch, job.part, job.qpart,
                               job.scan):
            ok = False
        mine += 1
    now = fnw_now()
    deadline = now + PATIENCE * (now - start) / (mine if mine > 0 else 1)
    spin = now + SPIN_SECONDS
    for q in range(blocks):
        r0 = _block_start(q, nb, blocks)
        rows = _block_rows(q, nb, blocks)
        state = fnw_state(job, q)
        while state == FNW_OPEN:
            now = fnw_now()
            if now >= deadline:
                break
            if now < spin:
                fnw_relax()
            else:
                seen = fnw_finished(job)
                if fnw_state(job, q) == FNW_OPEN:
                    fnw_wait(job, seen, deadline - now)
            state = fnw_state(job, q)
        if state == FNW_CALLER:
            continue
        if state == FNW_DONE:
            memcpy(Y + r0 * n_out, job.y + q * job.y_block,
                   rows * n_out * sizeof(floating))
        elif state == FNW_BAD:
            ok = False
        else:
            fnw_count_redone()
            if not _scan_run_block(layers, job.n_layers, X + r0 * n_in, Y + r0 * n_out, rows,
                                   scratch, job.part, job.qpart, job.scan):
                ok = False
    fnw_close(job)
    return ok


cdef bint _run_blocks(const Layer* layers, int n_layers, const floating* X, floating* Y,
                      Py_ssize_t nb, floating* scratch, Py_ssize_t part, Py_ssize_t qpart,
                      int n_threads, bint scan, fnw_pool* pool, fnw_owner* owner,
                      fnw_job** late) noexcept nogil:
    """Y := network(X) for nb rows in blocks of at most BLOCK_ROWS, taken by n_threads
    threads as they come free: the caller and pool's workers (`_pooled_blocks`; a job whose
    late worker still reads X is left in `late` with the caller's reference), else an
    OpenMP team whose thread i works in its `_block_scratch(part, qpart)` elements from
    scratch + i * _block_scratch(part, qpart), in the caller's floating-point mode (as
    workers are, see workers.h). The blocks are a multiple of n_threads in number and
    within a row of each other in size, so that the threads run out of blocks together:
    1024 rows on two threads run as 44 blocks of 23 or 24 rows, not as 42 of 24 and a tail
    of 16 that one thread runs while the other waits.
    A row's result does not depend on its block. With `scan`, False when X holds a NaN or
    an infinity (then Y is partly written): see `_scan_run_block`."""
    cdef Py_ssize_t blocks = (nb + BLOCK_ROWS - 1) // BLOCK_ROWS
    cdef Py_ssize_t q
    cdef Py_ssize_t n_in = layers[0].n_in, n_out = layers[n_layers - 1].n_out
    blocks = min(nb, (blocks + n_threads - 1) // n_threads * n_threads)
    cdef char* bad
    cdef bint ok = True
    cdef fnw_job* job = NULL
    cdef unsigned int mode
    if pool != NULL and n_threads > 1 and blocks > 1:
        job = fnw_job_new(owner, blocks, n_in * sizeof(floating),
                          BLOCK_ROWS * n_out * sizeof(floating), n_threads - 1,
                          <fnw_work_fn>_worker_blocks)
    if job != NULL:
        job.layers = layers
        job.n_layers = n_layers
        job.rows = nb
        job.n_in = n_in
        job.n_out = n_out
        job.part = part
        job.qpart = qpart
        job.scan = scan
        job.dbl = floating is double
        job.x = <const char*>X
        if fnw_post(pool, job):
            ok = _pooled_blocks(job, X, Y, scratch)
            fnw_withdraw(pool, job)
            if fnw_readers(job) != 0:
                late[0] = job
            else:
                fnw_release(job)
            return ok
        fnw_release(job)  # another call holds the workers: an OpenMP team
    # one flag per block: no two threads share one
    bad = <char*>calloc(blocks, 1) if scan else NULL
    mode = fastnn_float_mode()
    if scan and bad == NULL:  # no memory for the flags: scan first
        if not all_finite(X, nb * n_in):
            return False
    for q in prange(blocks, nogil=True, schedule="dynamic", num_threads=n_threads,
                    use_threads_if=n_threads > 1):
        fastnn_set_float_mode(mode)  # a team's thread keeps the mode of its own start
        if not _scan_run_block(layers, n_layers, X + _block_start(q, nb, blocks) * n_in,
                               Y + _block_start(q, nb, blocks) * n_out,
                               _block_rows(q, nb, blocks),
                               scratch + omp_get_thread_num() * _block_scratch(part, qpart),
                               part, qpart, bad != NULL):
            bad[q] = 1
    if bad != NULL:
        for q in range(blocks):
            if bad[q]:
                ok = False
        free(bad)
    return ok


cdef inline bint _blockwise(Py_ssize_t rows, Py_ssize_t blockwise_from) noexcept nogil:
    """Whether a chunk of `rows` rows runs blockwise (`_run`)."""
    return rows >= blockwise_from and rows >= BLOCKWISE_MIN_ROWS


cdef bint _run(const Layer* layers, int n_layers, const floating* X, floating* Y,
               Py_ssize_t batch, Py_ssize_t chunk, floating* scratch, Py_ssize_t stride,
               Py_ssize_t width, Py_ssize_t blockwise_from, int n_threads,
               int q_threads, Py_ssize_t qpart, bint scan, fnw_pool* pool,
               fnw_owner* owner, fnw_job** late) noexcept nogil:
    """Y := network(X). With `scan`, False when X holds a NaN or an infinity (then Y is
    partly written): chunks are scanned before they run, blocks as they run
    (`_run_blocks`, on pool's workers where given); without, X is known to be finite."""
    cdef floating* bufs[3]
    cdef Py_ssize_t c0, nb, last
    cdef Py_ssize_t n_in = layers[0].n_in, n_out = layers[n_layers - 1].n_out
    # A thread's block scratch (`_block_scratch`) comes out of the chunk's three buffers.
    cdef Py_ssize_t part = (BLOCK_ROWS + 16) * width
    cdef Py_ssize_t fits = 3 * stride // _block_scratch(part, qpart)
    cdef int block_threads = n_threads if n_threads < fits else <int>fits
    bufs[0] = scratch
    bufs[1] = scratch + stride
    bufs[2] = scratch + 2 * stride
    c0 = 0
    if block_threads >= 1 and _blockwise(chunk, blockwise_from):
        # Whole chunks run blockwise; blocks need only a thread's buffers, not a chunk's,
        # so all the rows that would run blockwise run as one: one parallel region and one
        # tail of blocks, on one thread as on several.
        last = batch - (batch - 1) // chunk * chunk
        c0 = batch if _blockwise(last, blockwise_from) else batch - last
        if c0 > 0 and not _run_blocks(layers, n_layers, X, Y, c0, scratch, part, qpart,
                                      block_threads, scan, pool, owner, late):
            return False
    while c0 < batch:
        nb = chunk if c0 + chunk <= batch else batch - c0
        if scan and not all_finite(X + c0 * n_in, nb * n_in):
            return False
        _run_chunk(layers, n_layers, X + c0 * n_in, Y + c0 * n_out, nb, bufs,
                   <char*>(scratch + 3 * stride), n_threads, q_threads, False)
        c0 += nb
    return True


cdef _check_out(cnp.ndarray X, cnp.ndarray Y, Py_ssize_t n_in, int typenum):
    """ValueError when the C-ordered `Y` overlaps `X`, or when X holds a NaN or an
    infinity: checked before the run, so that `Y` is left as it was."""
    cdef char* x = <char*>cnp.PyArray_DATA(X)
    cdef char* y = <char*>cnp.PyArray_DATA(Y)
    cdef Py_ssize_t n = cnp.PyArray_DIM(X, 0) * n_in
    cdef bint ok
    if x < y + cnp.PyArray_NBYTES(Y) and y < x + cnp.PyArray_NBYTES(X):
        raise ValueError("out must not share memory with X")
    with nogil:
        if typenum == cnp.NPY_DOUBLE:
            ok = all_finite(<const double*>x, n)
        else:
            ok = all_finite(<const float*>x, n)
    if not ok:
        raise ValueError("X contains NaN or infinite values")


@cython.no_gc_clear  # a late worker reads the arrays it keeps (see __dealloc__), so the
                     # collector must not clear them: tuples, and no tp_clear of the plan
cdef class Plan:
    """The compiled network: layer descriptors, the arrays behind them and a scratch pool.

    Parameters
    ----------
    layers : list of dict
        Already validated: ``kind`` (a `KINDS` code), ``act`` (an activation code),
        ``pieces``, ``n_in``, ``n_z``, ``sparse_batches`` (the range of chunk sizes for
        which the sparse form runs; (1, 0) for none), ``sparse_one_row`` (optional: CSR
        for a chunk of one row as well), ``block`` (0 when the sparse form
        is CSR of W.T, else its block width) and the C-contiguous arrays
        ``W``, ``indptr``, ``indices``, ``data``, ``b``, ``alpha``, ``scale``, ``shift``
        (None where absent), all of `dtype` but the index arrays; ``quant``, a
        `QuantDense` that replaces W (float32 plans only), or None.
    dtype : float32 or float64
    max_batch : int
        Rows per chunk; bigger batches run chunk by chunk through the same scratch.
    max_pool : int
        Scratch sets kept for reuse; callers beyond this allocate per call.
    """
    cdef Layer* layers
    cdef int n_layers
    cdef int typenum
    cdef readonly Py_ssize_t n_in, n_out, chunk, stride, width
    cdef readonly Py_ssize_t blockwise_from  # chunks of this many rows and more run blockwise
    cdef object dtype
    cdef tuple _keep  # the arrays the layers point into (tuples: the collector never clears them)
    cdef list _pool
    cdef int max_pool
    cdef int q_threads
    cdef Py_ssize_t q_elements
    cdef Py_ssize_t qpart  # elements of one thread's scratch for quantized layers in a block
    cdef PyThread_type_lock _lock
    cdef fnw_owner* _owner  # keeps the plan alive while a worker runs one of its blocks
    cdef tuple _pinned  # (job, X) of calls whose late worker still reads X (`_let_go`)

    def __cinit__(self):
        self.layers = NULL
        self._lock = PyThread_allocate_lock()
        if self._lock == NULL:
            raise MemoryError()
        self._owner = fnw_owner_new()  # NULL without workers: OpenMP teams only
        self._pinned = ()

    def __init__(self, list layers, dtype, Py_ssize_t max_batch, int max_pool=4):
        cdef Py_ssize_t i, max_width
        cdef Layer* L
        if not layers:
            raise ValueError("a plan needs at least one layer")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"a plan computes in float32 or float64, not {self.dtype}")
        self.typenum = self.dtype.num
        self.n_layers = len(layers)
        self.layers = <Layer*>calloc(self.n_layers, sizeof(Layer))
        if self.layers == NULL:
            raise MemoryError()
        self._keep = ()
        keep = []
        max_width = 1
        # Quantized layers get scratch for as many threads as there are CPUs.
        self.q_threads = max(1, max_pool)
        q_bytes = 0
        q1_bytes = 0
        # The float32 layers' packed panels, in one block on huge pages (see _memory.py).
        packed = {i: pack_panels(spec["W"]) for i, spec in enumerate(layers)
                  if self.dtype == np.float32 and spec.get("W") is not None and packed_path()}
        packed = dict(zip(packed, gather(list(packed.values()))))
        for i, spec in enumerate(layers):
            L = &self.layers[i]
            L.kind = spec["kind"]
            L.act = spec["act"]
            L.pieces = spec["pieces"]
            L.n_in = spec["n_in"]
            L.n_z = spec["n_z"]
            L.n_out = L.n_z // L.pieces
            L.sparse_min_batch, L.sparse_max_batch = spec["sparse_batches"]
            L.sparse_one_row = spec.get("sparse_one_row", False)
            for name in ("W", "indptr", "indices", "data", "b", "alpha", "scale", "shift"):
                a = spec.get(name)
                if a is not None:
                    if not (isinstance(a, np.ndarray) and a.flags.c_contiguous):
                        raise TypeError(f"layer {i}: {name} must be a C-contiguous array")
                    keep.append(a)
            L.W = _ptr(spec.get("W"))
            L.block = spec.get("block", 0)
            L.Wp = NULL
            if i in packed:
                keep.append(packed[i])
                L.Wp = _ptr(packed[i])
            L.indptr = <int64_t*>_ptr(spec.get("indptr"))
            L.indices = _ptr(spec.get("indices"))
            L.wide_indices = spec.get("indices") is not None and spec["indices"].dtype == np.int32
            L.data = _ptr(spec.get("data"))
            L.b = _ptr(spec.get("b"))
            L.alpha = _ptr(spec["alpha"])
            L.scale = _ptr(spec.get("scale"))
            L.shift = _ptr(spec.get("shift"))
            quant = spec.get("quant")
            L.q = NULL
            if quant is not None:
                if not isinstance(quant, QuantDense) or self.dtype != np.float32:
                    raise TypeError(f"layer {i}: quant must be a QuantDense in a float32 plan")
                keep.append(quant)
                L.q = (<QuantDense>quant).weights_ptr()
                q_bytes = max(q_bytes, qdense_scratch_bytes(L.q, self.q_threads))
                q1_bytes = max(q1_bytes, qdense_scratch_bytes(L.q, 1))
            max_width = max(max_width, L.n_in, L.n_z)
        self._keep = tuple(keep)
        self.n_in = self.layers[0].n_in
        self.n_out = self.layers[self.n_layers - 1].n_out
        self.width = max_width
        self.blockwise_from = 0
        for i in range(self.n_layers):
            L = &self.layers[i]
            if L.q == NULL and L.kind == KIND_DENSE and L.Wp == NULL:
                self.blockwise_from = sys.maxsize
            elif L.sparse_min_batch <= L.sparse_max_batch:
                self.blockwise_from = max(self.blockwise_from,
                                          min(L.sparse_max_batch, sys.maxsize - 1) + 1)
        self.chunk = chunk_rows(max_batch, max_width)
        # Room for the padded rows of the transposed layout (see _run_chunk).
        self.stride = (self.chunk + (16 if self.chunk >= 16 else 0)) * max_width
        self.max_pool = max_pool
        self.q_elements = -(-q_bytes // self.dtype.itemsize)
        self.qpart = aligned_size(q1_bytes) // self.dtype.itemsize
        self._pool = [self._new_scratch()]

    def __dealloc__(self):
        # A worker late with a block of this plan's still reads its layers and the inputs
        # in _pinned: the plan's references to those jobs go, then it waits for the workers.
        cdef object entry
        for entry in self._pinned:
            fnw_release(<fnw_job*><size_t>entry[0])
        with nogil:
            fnw_owner_free(self._owner)
        free(self.layers)
        if self._lock != NULL:
            PyThread_free_lock(self._lock)

    cdef _let_go(self):
        """Drops the inputs of late jobs that no worker reads any more (with their jobs)."""
        cdef list still = []
        cdef object entry
        for entry in self._pinned:
            if fnw_readers(<fnw_job*><size_t>entry[0]) != 0:
                still.append(entry)
            else:
                fnw_release(<fnw_job*><size_t>entry[0])
        self._pinned = tuple(still)

    def _late_inputs(self):
        """The inputs kept alive for late workers (for tests)."""
        return [entry[1] for entry in self._pinned]

    def _new_scratch(self):
        return np.empty(3 * self.stride + self.q_elements, dtype=self.dtype)

    def predict(self, object X, object out, int n_threads):
        """network(X) into `out` (made when None), or None when X is not ready to run.

        X is ready when it is a C-ordered 2-D array of the plan's dtype and width;
        otherwise the caller converts it and calls again. A ready X with a NaN or an
        infinity raises ValueError (the rule of `fastnn._kernels._checks.as_input`).
        A given `out` must be a writeable C-ordered array of shape (batch, n_out) and
        the plan's dtype, apart from X's memory; X is then scanned whole before the run,
        so that a ValueError leaves `out` as it was (without `out`, the blocks scan their
        rows as they run).
        """
        cdef cnp.ndarray x, y
        cdef cnp.npy_intp dims[2]
        if not rows_ready(X, self.typenum, self.n_in):
            return None
        x = <cnp.ndarray>X
        dims[0] = cnp.PyArray_DIM(x, 0)
        dims[1] = self.n_out
        if out is None:
            y = cnp.PyArray_EMPTY(2, dims, self.typenum, 0)
        elif (cnp.PyArray_Check(out) and cnp.PyArray_TYPE(<cnp.ndarray>out) == self.typenum
              and cnp.PyArray_NDIM(<cnp.ndarray>out) == 2
              and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>out)
              and cnp.PyArray_ISWRITEABLE(<cnp.ndarray>out)
              and cnp.PyArray_DIM(<cnp.ndarray>out, 0) == dims[0]
              and cnp.PyArray_DIM(<cnp.ndarray>out, 1) == dims[1]):
            y = <cnp.ndarray>out
            _check_out(x, y, self.n_in, self.typenum)
        else:
            raise ValueError(f"out must be a writeable C-contiguous {self.dtype.name} array "
                             f"of shape {(dims[0], dims[1])}")
        self._run(x, y, n_threads, out is None)  # _check_out scanned X already
        return y

    cdef _run(self, cnp.ndarray X, cnp.ndarray Y, int n_threads, bint scan):
        cdef Py_ssize_t batch = cnp.PyArray_DIM(X, 0)
        cdef object scratch = None
        cdef void* xp = cnp.PyArray_DATA(X)
        cdef void* yp = cnp.PyArray_DATA(Y)
        cdef void* sp
        cdef bint ok
        cdef fnw_pool* pool = NULL
        cdef fnw_job* late = NULL
        if batch == 0:
            return
        if self._pinned:
            self._let_go()
        if (n_threads > 1 and self._owner != NULL and _blockwise(batch, self.blockwise_from)
                and _blockwise(self.chunk, self.blockwise_from)):  # as `_run` decides
            fnw_owner_here(self._owner)  # (the GIL orders these calls)
            pool = fnw_pool_get(n_threads - 1)
        # The lock guards only the choice of a scratch set.
        PyThread_acquire_lock(self._lock, WAIT_LOCK)
        if self._pool:
            scratch = self._pool.pop()
        PyThread_release_lock(self._lock)
        if scratch is None:
            scratch = self._new_scratch()
        sp = cnp.PyArray_DATA(<cnp.ndarray>scratch)
        blas_serial_enter()
        with nogil:
            if self.typenum == cnp.NPY_DOUBLE:
                ok = _run(self.layers, self.n_layers, <const double*>xp, <double*>yp, batch,
                          self.chunk, <double*>sp, self.stride, self.width,
                          self.blockwise_from, n_threads, self.q_threads, self.qpart, scan,
                          pool, self._owner, &late)
            else:
                ok = _run(self.layers, self.n_layers, <const float*>xp, <float*>yp, batch,
                          self.chunk, <float*>sp, self.stride, self.width,
                          self.blockwise_from, n_threads, self.q_threads, self.qpart, scan,
                          pool, self._owner, &late)
        blas_serial_exit()
        if late != NULL:
            # A worker late with a block still reads X (its result is not used): X and
            # the job stay alive until it is done (`_let_go`, at a later call).
            self._pinned += ((<size_t>late, X),)
        PyThread_acquire_lock(self._lock, WAIT_LOCK)
        if len(self._pool) < self.max_pool:
            self._pool.append(scratch)
        PyThread_release_lock(self._lock)
        if not ok:
            raise ValueError("X contains NaN or infinite values")

