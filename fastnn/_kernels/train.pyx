"""The training step of a model of Dense layers in one parallel region (two for losses
other than softmax cross-entropy).

A step of `Sequential.fit` layer by layer opens a parallel region per product (and one
for the update), and every region wakes the sleeping OpenMP threads (50-100 us each on
a 2-core virtual machine, see `_parallel.MIN_WORK_PER_THREAD`). `DenseTrainer.train_step`
runs a whole step with softmax cross-entropy in one region, in three phases:

1. the batch's rows gathered from the training data and the float32 kernels packed into
   panels (`dense_packed.h`; W, and W.T for every layer but the first), by the first
   thread while the others wake up;
2. the batch in chunks of rows, each chunk through every layer (product, bias,
   activation), then its loss and the gradient of every layer's pre-activation (dZ) down
   to the first layer (dX of a layer is dZ @ W.T, then the activation's derivative):
   rows do not depend on each other;
3. when the loss is finite, the weight gradients in chunks of rows of each kernel
   (X.T @ dZ, plus the L2 term), each chunk updated by the optimizer right after its
   gradient, while it is in cache, and the bias gradients (column sums of dZ) with
   their updates.

A phase starts as soon as the pieces of the one before it are done (`team_sync.h`):
threads wait for work in progress, spinning briefly, never for a thread still waking up.
Other losses run `forward` (phases 1 and 2 without the loss), the loss in Python, then
`backward_step` (the dZ chunk by chunk, then phase 3).

Chunks depend on the shapes alone, never on the thread count, so neither do the results.
Where the CPU has AVX-512F, the float32 products are the packed kernel's tiles: X @ W and
dZ @ W.T on the panels, X.T @ dZ reading X and dZ in place (a layer of fewer than 32
units takes BLAS for the last): 784-256-128-10 at batch 128 on one Zen 5 thread took
0.68 ms a step, against 0.78-0.80 with X.T @ dZ and dZ @ W.T through OpenBLAS's AVX-512
kernels. Elsewhere, and in float64, the products are `dense.gemm`'s (one BLAS call per
chunk, the BLAS on one thread). The updates are those of the optimizer's plan
(`optim.span_step`), undo record included.
"""
from cython cimport floating
from cython.parallel cimport parallel, prange
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.math cimport isfinite
from libc.string cimport memcpy, memset

cimport numpy as cnp

from fastnn._kernels._openmp cimport omp_get_num_threads, omp_get_thread_num
from fastnn._kernels._parallel cimport (MACS_PER_WORK, gemm_chunks, gemm_rows, gemm_stop,
                                        n_chunks, threads_for)
from fastnn._kernels._threads cimport blas_serial_enter, blas_serial_exit
from fastnn._kernels.activations cimport ACT_RELU, ACT_SOFTMAX, act_backward_row
from fastnn._kernels.dense cimport bias_act_row, column_sums, gemm, rows_ready
from fastnn._kernels.losses cimport softmax_xent_rows
from fastnn._kernels.optim cimport Hyper, OptimHyper, Plan, Span, span_step

import numpy as np

from fastnn._kernels._memory import aligned_empty
from fastnn._kernels.dense import packed_path

cnp.import_array()

cdef extern from "team_sync.h" nogil:
    int FASTNN_TEAM_SYNC
    ctypedef struct fastnn_counter_t:
        pass
    int fastnn_counter_take(fastnn_counter_t* c)
    void fastnn_counter_init(fastnn_counter_t* c)
    void fastnn_counter_add(fastnn_counter_t* c)
    void fastnn_counter_wait(fastnn_counter_t* c, int target)
    void fastnn_team_end(fastnn_counter_t* arrived, int n, int thread)

from fastnn._kernels.workers cimport (fnw_close, fnw_closed, fnw_count_late,
    fnw_count_taken, fnw_job, fnw_job_new, fnw_late, fnw_pool, fnw_pool_get, fnw_post,
    fnw_release, fnw_sleep, fnw_taken, fnw_withdraw, fnw_work_fn)

cdef extern from "dense_packed.h" nogil:
    int FASTNN_PANEL
    void fastnn_pack_panels(const float* W, Py_ssize_t k, Py_ssize_t n, float* Wp,
                            Py_ssize_t p0, Py_ssize_t p1, int t)
    int fastnn_packed_rows(const float* X, Py_ssize_t ldx, Py_ssize_t m, Py_ssize_t k,
                           const float* Wp, Py_ssize_t n, const float* b, int relu,
                           float* Y, Py_ssize_t ldy)
    void fastnn_weight_grad_rows(const float* X, Py_ssize_t ldx, Py_ssize_t m, Py_ssize_t k,
                                 const float* dZ, Py_ssize_t n, float* dW, Py_ssize_t ldy)

cdef enum:
    # Rows of a chunk of the batch: about TRAIN_CHUNKS chunks of at least
    # TRAIN_MIN_ROWS rows (batch 128: 4 chunks of 32; 200: 4 of 50).
    TRAIN_CHUNKS = 4
    TRAIN_MIN_ROWS = 32
    # Panels of 32 columns of a kernel packed as one piece of work.
    PANELS_PER_PACK = 2


cdef struct TLayer:
    Py_ssize_t n_in, n_out
    int act
    char* W
    char* b        # NULL: no bias
    char* dW
    char* db
    char* alpha
    char* X        # the layer's input rows: the batch, or the previous layer's Y
    char* Z        # pre-activation rows, or NULL when the activation's derivative reads Y
    char* Y
    char* dZ       # gradient of the pre-activation rows
    float* panels  # float32 on AVX-512F: the kernel packed for `fastnn_packed_rows`, else NULL
    float* tpanels  # the same for W.T (dZ @ W.T), in every layer but the first, else NULL
    Py_ssize_t span_w, span_b  # the kernel's and the bias's place in the optimizer's plan
    double l2      # the gradient gets 2 l2 W added


cdef struct XentLoss:
    # Softmax cross-entropy of the last layer, computed chunk by chunk in the forward pass
    # (`DenseTrainer.train_step`): targets as labels or as rows, optional weights; per
    # chunk the loss summed over its rows and the first row of a label out of range.
    const cnp.int64_t* labels
    const char* T
    const double* w
    double* totals
    Py_ssize_t* bad


cdef struct Item:
    # One piece of the update: rows [r0, r1) of layer l's kernel, or its bias (r0 < 0);
    # or of the packing: panels [r0, r1) of layer l's kernel, or of its transpose (t).
    Py_ssize_t l, r0, r1
    bint t


cdef struct StepJob:
    # A step (`_step`) run by the caller and fastnn's worker threads (workers.h), in the
    # job's own memory: a worker that joins after the step ended reads only this. Pieces
    # of each phase are taken from the `next_*` counters and counted done in the others;
    # the step's arrays are touched only by the thread that took a piece, and the caller
    # returns when every piece is done, so a worker the scheduler put aside delays the
    # step only by a piece it took, never by not having started.
    const TLayer* L
    Py_ssize_t nl, batch, n_packs, n_items, fresh_from
    const void* data
    const Py_ssize_t* rows
    const Item* packs
    const XentLoss* loss
    double penalty
    const Item* items
    const Span* spans
    const OptimHyper* h
    const OptimHyper* h_fresh
    Py_ssize_t* bad
    bint dbl
    int ok  # the loss is finite: set by the caller before `decided`
    fastnn_counter_t next_prep, prepared, next_chunk, chunks, decided, next_item, items_done


cdef inline Py_ssize_t chunk_rows(Py_ssize_t batch) noexcept nogil:
    """Rows per chunk of a batch: at most TRAIN_CHUNKS chunks."""
    cdef Py_ssize_t rows = (batch + TRAIN_CHUNKS - 1) // TRAIN_CHUNKS
    return rows if rows > TRAIN_MIN_ROWS else TRAIN_MIN_ROWS


cdef void _forward_chunk(const TLayer* L, Py_ssize_t nl, Py_ssize_t r0, Py_ssize_t r1,
                         Py_ssize_t batch, const XentLoss* loss, Py_ssize_t c,
                         floating dummy) noexcept nogil:
    """Rows [r0, r1) (chunk c) of the batch through every layer; with `loss`, then their
    loss and every layer's dZ."""
    cdef Py_ssize_t l, i, n_in, n_out, k, bad
    cdef floating* Y
    cdef floating* Z
    cdef bint relu
    for l in range(nl):
        n_in = L[l].n_in
        n_out = L[l].n_out
        Y = <floating*>L[l].Y
        Z = <floating*>L[l].Z
        if floating is float and L[l].panels != NULL:
            relu = L[l].act == ACT_RELU and Z == NULL
            fastnn_packed_rows(<const float*>L[l].X + r0 * n_in, n_in, r1 - r0, n_in,
                               L[l].panels, n_out, <const float*>L[l].b, relu,
                               Y + r0 * n_out, n_out)
            if not relu:
                for i in range(r0, r1):
                    bias_act_row(Y + i * n_out, <const floating*>NULL,
                                 NULL if Z == NULL else Z + i * n_out, n_out, L[l].act,
                                 <const floating*>L[l].alpha)
            continue
        gemm(False, False, <int>(r1 - r0), <int>n_out, <int>n_in,
             <const floating*>L[l].X + r0 * n_in, <int>n_in, <const floating*>L[l].W,
             <int>n_out, <floating>0, Y + r0 * n_out, <int>n_out)
        for i in range(r0, r1):
            bias_act_row(Y + i * n_out, <const floating*>L[l].b,
                         NULL if Z == NULL else Z + i * n_out, n_out, L[l].act,
                         <const floating*>L[l].alpha)
    if loss == NULL:
        return
    k = L[nl - 1].n_out
    bad = softmax_xent_rows(<const floating*>L[nl - 1].Z + r0 * k,
                            <const floating*>L[nl - 1].Y + r0 * k,
                            NULL if loss.labels == NULL else loss.labels + r0,
                            NULL if loss.T == NULL else <const floating*>loss.T + r0 * k,
                            NULL if loss.w == NULL else loss.w + r0,
                            <floating*>L[nl - 1].dZ + r0 * k, r1 - r0, k, batch,
                            loss.totals + c)
    loss.bad[c] = -1 if bad < 0 else r0 + bad
    if bad < 0:
        _backward_chunk(L, nl, r0, r1, <const floating*>L[nl - 1].dZ, True)


cdef inline void _pack(const TLayer* L, const Item* it) noexcept nogil:
    """Panels [r0, r1) of layer l's kernel or of its transpose (an `Item` of the packing)."""
    fastnn_pack_panels(<const float*>L[it.l].W, L[it.l].n_in, L[it.l].n_out,
                       L[it.l].tpanels if it.t else L[it.l].panels, it.r0, it.r1, it.t)


cdef void _backward_chunk(const TLayer* L, Py_ssize_t nl, Py_ssize_t r0, Py_ssize_t r1,
                          const floating* dY, bint linear) noexcept nogil:
    """dZ of rows [r0, r1) of every layer, from dY, the loss's gradient of the last
    layer's output (of its pre-activation when `linear`)."""
    cdef Py_ssize_t l, i, n
    cdef const floating* z
    cdef floating* dz
    l = nl - 1
    n = L[l].n_out
    dz = <floating*>L[l].dZ
    for i in range(r0, r1):
        _act_backward(&L[l], dY + i * n, dz + i * n, i, linear)
    for l in range(nl - 1, 0, -1):
        # dZ of layer l - 1 := (dZ_l @ W_l.T) * act'
        n = L[l - 1].n_out
        dz = <floating*>L[l - 1].dZ
        if floating is float and L[l].tpanels != NULL:
            fastnn_packed_rows(<const float*>L[l].dZ + r0 * L[l].n_out, L[l].n_out, r1 - r0,
                               L[l].n_out, L[l].tpanels, n, NULL, 0, dz + r0 * n, n)
        else:
            gemm(False, True, <int>(r1 - r0), <int>n, <int>L[l].n_out,
                 <const floating*>L[l].dZ + r0 * L[l].n_out, <int>L[l].n_out,
                 <const floating*>L[l].W, <int>L[l].n_out, <floating>0, dz + r0 * n, <int>n)
        for i in range(r0, r1):
            _act_backward(&L[l - 1], dz + i * n, dz + i * n, i, False)


cdef inline void _act_backward(const TLayer* t, const floating* dy, floating* dz, Py_ssize_t i,
                               bint linear) noexcept nogil:
    """dz := dy * act'(row i of the layer), in place when dz is dy."""
    cdef Py_ssize_t j, n = t.n_out
    cdef const floating* z = <const floating*>(t.Y if t.Z == NULL else t.Z) + i * n
    if linear:
        if dz != dy:
            for j in range(n):
                dz[j] = dy[j]
        return
    act_backward_row(t.act, z, <const floating*>t.Y + i * n, dy, dz, n,
                     <const floating*>t.alpha)


cdef Py_ssize_t _update_item(const TLayer* L, const Item* it, Py_ssize_t batch,
                             const Span* spans, const OptimHyper* h,
                             const OptimHyper* h_fresh, Py_ssize_t fresh_from,
                             floating dummy) noexcept nogil:
    """The gradient of one piece of the parameters and its update; 1 when the update made
    a parameter NaN or infinite, else 0."""
    cdef const TLayer* t = &L[it.l]
    cdef Py_ssize_t n = t.n_out, j, k
    cdef floating c
    cdef floating* dW
    cdef const floating* W
    if it.r0 < 0:
        k = t.span_b
        column_sums(<const floating*>t.dZ, <floating*>t.db, batch, n)
        return span_step(h_fresh if k >= fresh_from else h, spans + k, 0, n)
    # dW[r0:r1] := X[:, r0:r1].T @ dZ (+ 2 l2 W[r0:r1])
    dW = <floating*>t.dW + it.r0 * n
    if floating is float and t.panels != NULL and n >= FASTNN_PANEL:
        fastnn_weight_grad_rows(<const float*>t.X + it.r0, t.n_in, it.r1 - it.r0, batch,
                                <const float*>t.dZ, n, dW, n)
    else:
        gemm(True, False, <int>(it.r1 - it.r0), <int>n, <int>batch,
             <const floating*>t.X + it.r0, <int>t.n_in, <const floating*>t.dZ, <int>n,
             <floating>0, dW, <int>n)
    if t.l2 != 0:
        c = <floating>(2.0 * t.l2)
        W = <const floating*>t.W + it.r0 * n
        for j in range((it.r1 - it.r0) * n):
            dW[j] = dW[j] + c * W[j]
    k = t.span_w
    return span_step(h_fresh if k >= fresh_from else h, spans + k, it.r0 * n, it.r1 * n)


cdef void _forward(const TLayer* L, Py_ssize_t nl, Py_ssize_t batch, const Item* packs,
                   Py_ssize_t n_packs, int nt, floating dummy) noexcept nogil:
    """The kernels packed (`packs`: float32 on AVX-512F), then the batch chunk by chunk."""
    cdef Py_ssize_t c, q, rows = chunk_rows(batch), nc = n_chunks(batch, rows)
    cdef fastnn_counter_t packed, arrived
    if nt == 1:  # no team of one (see _step)
        for q in range(n_packs):
            _pack(L, packs + q)
        for c in range(nc):
            _forward_chunk(L, nl, c * rows, min(batch, (c + 1) * rows), batch, NULL, c, dummy)
        return
    fastnn_counter_init(&arrived)
    fastnn_counter_init(&packed)
    with parallel(num_threads=nt):
        for q in prange(n_packs, schedule="dynamic"):
            _pack(L, packs + q)
            fastnn_counter_add(&packed)
        fastnn_counter_wait(&packed, <int>n_packs)
        for c in prange(nc, schedule="dynamic"):
            _forward_chunk(L, nl, c * rows, min(batch, (c + 1) * rows), batch, NULL, c, dummy)
        fastnn_team_end(&arrived, omp_get_num_threads(), omp_get_thread_num())


cdef void _backward(const TLayer* L, Py_ssize_t nl, Py_ssize_t batch, const floating* dY,
                    bint linear, const Item* items, Py_ssize_t n_items, const Span* spans,
                    const OptimHyper* h, const OptimHyper* h_fresh, Py_ssize_t fresh_from,
                    Py_ssize_t* bad, int nt) noexcept nogil:
    """Every layer's dZ from dY chunk by chunk, then the updates."""
    cdef Py_ssize_t c, q, rows = chunk_rows(batch), nc = n_chunks(batch, rows)
    cdef floating dummy = 0
    cdef fastnn_counter_t chunks, arrived
    if nt == 1:  # no team of one (see _step)
        for c in range(nc):
            _backward_chunk(L, nl, c * rows, min(batch, (c + 1) * rows), dY, linear)
        for q in range(n_items):
            bad[q] = _update_item(L, items + q, batch, spans, h, h_fresh, fresh_from, dummy)
        return
    fastnn_counter_init(&arrived)
    fastnn_counter_init(&chunks)
    with parallel(num_threads=nt):
        for c in prange(nc, schedule="dynamic"):
            _backward_chunk(L, nl, c * rows, min(batch, (c + 1) * rows), dY, linear)
            fastnn_counter_add(&chunks)
        fastnn_counter_wait(&chunks, <int>nc)
        for q in prange(n_items, schedule="dynamic"):
            bad[q] = _update_item(L, items + q, batch, spans, h, h_fresh, fresh_from, dummy)
        fastnn_team_end(&arrived, omp_get_num_threads(), omp_get_thread_num())


cdef inline void _gather(const floating* data, const Py_ssize_t* rows, floating* X,
                         Py_ssize_t n_in, Py_ssize_t r0, Py_ssize_t r1) noexcept nogil:
    """Rows [r0, r1) of the batch X := rows `rows[r0:r1]` of the training data."""
    cdef Py_ssize_t i
    for i in range(r0, r1):
        memcpy(X + i * n_in, data + rows[i] * n_in, n_in * sizeof(floating))


cdef bint _loss_ok(const XentLoss* loss, Py_ssize_t nc, Py_ssize_t batch, double penalty,
                   double* value) noexcept nogil:
    """Whether the batch's loss (chunk sums added in order) plus penalty is finite and
    every label was in range; value (unless NULL) := that loss."""
    cdef Py_ssize_t c
    cdef double total = 0, v
    cdef bint ok = True
    for c in range(nc):
        total += loss.totals[c]
        ok = ok and loss.bad[c] < 0
    v = (total / batch if batch > 0 else 0.0) + penalty
    if value != NULL:
        value[0] = v
    return ok and isfinite(v)


cdef double _worker_delay = 0  # see _delay_workers
cdef bint _delay_in_piece = False


def _delay_workers(double seconds, bint in_piece=False):
    """Make a worker sleep `seconds` before it joins a step (`in_piece`: after it takes its
    first piece of one), as if descheduled there (for tests; 0 to stop)."""
    global _worker_delay, _delay_in_piece
    _worker_delay = seconds
    _delay_in_piece = in_piece


def _worker_counts():
    """(pieces of steps the workers took, steps they joined only after the caller had
    closed them) in this process so far (for tests)."""
    return fnw_taken(), fnw_late()


cdef inline void _took(bint caller, bint* delayed) noexcept nogil:
    """A piece taken: by a worker, counted (and the test delay, once a step)."""
    if caller:
        return
    fnw_count_taken()
    if _worker_delay > 0 and _delay_in_piece and not delayed[0]:
        delayed[0] = True
        fnw_sleep(_worker_delay)


cdef void _step_pieces(StepJob* j, bint caller, floating dummy) noexcept nogil:
    """The caller's or a worker's part of a pooled step (`StepJob`), in the order of
    `_step`'s parallel region."""
    cdef Py_ssize_t q, c, batch = j.batch, rows_c = chunk_rows(batch)
    cdef Py_ssize_t nc = n_chunks(batch, rows_c)
    cdef Py_ssize_t ng = nc if j.rows != NULL else 0
    cdef bint delayed = False
    while True:
        q = fastnn_counter_take(&j.next_prep)
        if q >= ng + j.n_packs:
            break
        _took(caller, &delayed)
        if q < ng:
            _gather(<const floating*>j.data, j.rows, <floating*>j.L[0].X, j.L[0].n_in,
                    q * rows_c, min(batch, (q + 1) * rows_c))
        else:
            _pack(j.L, j.packs + q - ng)
        fastnn_counter_add(&j.prepared)
    fastnn_counter_wait(&j.prepared, <int>(ng + j.n_packs))
    while True:
        c = fastnn_counter_take(&j.next_chunk)
        if c >= nc:
            break
        _took(caller, &delayed)
        _forward_chunk(j.L, j.nl, c * rows_c, min(batch, (c + 1) * rows_c), batch, j.loss, c,
                       <floating>0)
        fastnn_counter_add(&j.chunks)
    if caller:
        fastnn_counter_wait(&j.chunks, <int>nc)
        j.ok = _loss_ok(j.loss, nc, batch, j.penalty, NULL)
        fastnn_counter_add(&j.decided)
    else:
        fastnn_counter_wait(&j.decided, 1)
    if not j.ok:
        return
    while True:
        q = fastnn_counter_take(&j.next_item)
        if q >= j.n_items:
            break
        _took(caller, &delayed)
        j.bad[q] = _update_item(j.L, j.items + q, batch, j.spans, j.h, j.h_fresh,
                                j.fresh_from, <floating>0)
        fastnn_counter_add(&j.items_done)
    if caller:
        fastnn_counter_wait(&j.items_done, <int>j.n_items)


cdef void _step_worker(fnw_job* job, void** scratch, size_t* scratch_bytes) noexcept nogil:
    """A worker's part of a pooled step (nothing once the caller closed it)."""
    cdef StepJob* j = <StepJob*>job.y
    if _worker_delay > 0 and not _delay_in_piece:
        fnw_sleep(_worker_delay)
    if fnw_closed(job):
        fnw_count_late()
        return
    if j.dbl:
        _step_pieces(j, False, <double>0)
    else:
        _step_pieces(j, False, <float>0)


cdef bint _pooled_step(const TLayer* L, Py_ssize_t nl, Py_ssize_t batch, const floating* data,
                       const Py_ssize_t* rows, const Item* packs, Py_ssize_t n_packs,
                       const XentLoss* loss, double penalty, const Item* items,
                       Py_ssize_t n_items, const Span* spans, const OptimHyper* h,
                       const OptimHyper* h_fresh, Py_ssize_t fresh_from, Py_ssize_t* bad,
                       int nt, fnw_pool* pool) noexcept nogil:
    """`_step` on the caller and up to nt - 1 of pool's workers; False when the workers
    are not to be had (out of memory, or busy with another call's job). The job has no
    owner: a worker that took no piece touches nothing but the job (see workers.h)."""
    cdef fnw_job* job = fnw_job_new(NULL, 1, 0, sizeof(StepJob), nt - 1,
                                    <fnw_work_fn>_step_worker)
    cdef StepJob* j
    if job == NULL:
        return False
    j = <StepJob*>job.y
    j.L = L
    j.nl = nl
    j.batch = batch
    j.data = data
    j.rows = rows
    j.packs = packs
    j.n_packs = n_packs
    j.loss = loss
    j.penalty = penalty
    j.items = items
    j.n_items = n_items
    j.spans = spans
    j.h = h
    j.h_fresh = h_fresh
    j.fresh_from = fresh_from
    j.bad = bad
    j.dbl = floating is double
    j.ok = 0
    fastnn_counter_init(&j.next_prep)
    fastnn_counter_init(&j.prepared)
    fastnn_counter_init(&j.next_chunk)
    fastnn_counter_init(&j.chunks)
    fastnn_counter_init(&j.decided)
    fastnn_counter_init(&j.next_item)
    fastnn_counter_init(&j.items_done)
    if not fnw_post(pool, job):
        fnw_release(job)
        return False
    _step_pieces(j, True, <floating>0)
    fnw_close(job)
    fnw_withdraw(pool, job)
    fnw_release(job)
    return True


cdef void _step(const TLayer* L, Py_ssize_t nl, Py_ssize_t batch, const floating* data,
                const Py_ssize_t* rows, const Item* packs, Py_ssize_t n_packs,
                const XentLoss* loss, double penalty, const Item* items, Py_ssize_t n_items,
                const Span* spans, const OptimHyper* h, const OptimHyper* h_fresh,
                Py_ssize_t fresh_from, Py_ssize_t* bad, int nt,
                fnw_pool* pool) noexcept nogil:
    """A whole step (`DenseTrainer.train_step`) in one parallel region: the batch gathered
    from `data` (when `rows` is not NULL) and the kernels packed; the chunks of rows
    through every layer, the loss and the dZ; then, when the loss is finite, the updates.
    With `pool`, on the caller and pool's workers (`_pooled_step`), else (or when the
    workers are busy) in an OpenMP team."""
    cdef Py_ssize_t c, q, n_in = L[0].n_in, rows_c = chunk_rows(batch)
    cdef Py_ssize_t nc = n_chunks(batch, rows_c)
    cdef Py_ssize_t ng = nc if rows != NULL else 0
    cdef floating* X = <floating*>L[0].X
    cdef fastnn_counter_t prepared, chunks, arrived
    if nt == 1:
        # The same pieces in order, without an OpenMP team: a team of one costs 2-2.5 us a
        # step (64-64-64-10 at 32 rows: 31.5 us against 29.3).
        for c in range(ng):
            _gather(data, rows, X, n_in, c * rows_c, min(batch, (c + 1) * rows_c))
        for q in range(n_packs):
            _pack(L, packs + q)
        for c in range(nc):
            _forward_chunk(L, nl, c * rows_c, min(batch, (c + 1) * rows_c), batch, loss, c,
                           <floating>0)
        if _loss_ok(loss, nc, batch, penalty, NULL):
            for q in range(n_items):
                bad[q] = _update_item(L, items + q, batch, spans, h, h_fresh, fresh_from,
                                      <floating>0)
        return
    if pool != NULL and _pooled_step(L, nl, batch, data, rows, packs, n_packs, loss, penalty,
                                     items, n_items, spans, h, h_fresh, fresh_from, bad, nt,
                                     pool):
        return
    fastnn_counter_init(&arrived)
    fastnn_counter_init(&prepared)
    fastnn_counter_init(&chunks)
    with parallel(num_threads=nt):
        # The first thread gathers and packs, and goes on, while the others wake up.
        for q in prange(ng + n_packs, schedule="dynamic"):
            if q < ng:
                _gather(data, rows, X, n_in, q * rows_c, min(batch, (q + 1) * rows_c))
            else:
                _pack(L, packs + q - ng)
            fastnn_counter_add(&prepared)
        fastnn_counter_wait(&prepared, <int>(ng + n_packs))
        for c in prange(nc, schedule="dynamic"):
            _forward_chunk(L, nl, c * rows_c, min(batch, (c + 1) * rows_c), batch, loss, c,
                           <floating>0)
            fastnn_counter_add(&chunks)
        fastnn_counter_wait(&chunks, <int>nc)
        if _loss_ok(loss, nc, batch, penalty, NULL):  # the same answer in every thread
            for q in prange(n_items, schedule="dynamic"):
                bad[q] = _update_item(L, items + q, batch, spans, h, h_fresh, fresh_from,
                                      <floating>0)
        fastnn_team_end(&arrived, omp_get_num_threads(), omp_get_thread_num())


def _check_layers(layers):
    """ValueError unless the layers' arrays are what `DenseTrainer` reads: a chain of
    C-ordered arrays of one float dtype, each of its documented shape."""
    if not layers:
        raise ValueError("a trainer needs at least one layer")
    dtype = layers[0][0].dtype if isinstance(layers[0][0], np.ndarray) else None
    if dtype not in (np.float32, np.float64):
        raise ValueError("kernels must be float32 or float64 arrays")
    width = None
    for l, (W, b, dW, db, act, alpha, keep_z, span_w, span_b) in enumerate(layers):
        if not (isinstance(W, np.ndarray) and W.ndim == 2) or (width is not None
                                                               and W.shape[0] != width):
            raise ValueError(f"layer {l}: the kernel must be 2-D with the previous layer's "
                             f"{width} outputs as rows")
        n_out = W.shape[1]
        want = [(W, W.shape), (dW, W.shape), (alpha, None)]
        if b is not None or db is not None:
            want += [(b, (n_out,)), (db, (n_out,))]
        for a, shape in want:
            if not (isinstance(a, np.ndarray) and a.dtype == dtype and a.flags.c_contiguous
                    and (a.shape == shape if shape else a.ndim == 1 and a.size in (1, n_out))):
                raise ValueError(f"layer {l}: every array must be C-ordered {dtype} of the "
                                 f"kernel's shape (bias and its gradient: ({n_out},); alpha: "
                                 f"1 or {n_out} values)")
        width = n_out


cdef inline bint _vector(object a, int typenum, Py_ssize_t n) noexcept:
    """Whether `a` is a C-ordered 1-D array of `typenum` with n elements (any n when n < 0)."""
    return (cnp.PyArray_Check(a) and cnp.PyArray_TYPE(<cnp.ndarray>a) == typenum
            and cnp.PyArray_NDIM(<cnp.ndarray>a) == 1
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>a)
            and (n < 0 or cnp.PyArray_DIM(<cnp.ndarray>a, 0) == n))


cdef inline bint _updates(Plan plan, Py_ssize_t k, char* p, char* g, Py_ssize_t n) noexcept:
    """Whether span k of the plan is the parameter p with gradient g, of n elements."""
    return 0 <= k < plan.n_spans and plan.spans[k].p == p and plan.spans[k].g == g \
        and plan.spans[k].n == n


cdef inline void* _data(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


cdef class DenseTrainer:
    """Training steps of a stack of Dense layers on the layers' own arrays.

    `layers`: per layer ``(kernel, bias or None, kernel gradient, bias gradient or None,
    activation code, alpha array, keep_z, span_w, span_b)``: arrays of one dtype
    (float32 or float64), C-contiguous, as `Dense` builds them; `keep_z` when the
    pre-activation must be kept (the activation's derivative or the loss reads it);
    span_w and span_b the places of the kernel and bias in the optimizer's parameter
    list (-1: none). The trainer holds references to the arrays, which are updated in
    place, never replaced; it checks them once, here, and every batch and plan it is
    given on each call.

    `train_step` runs a whole step of softmax cross-entropy; `forward` then
    `backward_step` a step of any other loss, computed by the caller in between.
    """
    cdef TLayer* layers
    cdef Item* items
    cdef Item* packs
    cdef Py_ssize_t n_layers, n_items, n_packs, capacity, items_batch, batch
    cdef bint is_double
    cdef int typenum
    cdef object arrays, buffers, bad, keep, _x, panels, gathered

    def __cinit__(self, layers):
        cdef Py_ssize_t l, q
        self.n_layers = len(layers)
        self.layers = <TLayer*>PyMem_Malloc(max(self.n_layers, 1) * sizeof(TLayer))
        self.items = NULL
        self.packs = NULL
        if self.layers == NULL:
            raise MemoryError()
        memset(self.layers, 0, max(self.n_layers, 1) * sizeof(TLayer))
        self.arrays = tuple(tuple(layer) for layer in layers)
        _check_layers(self.arrays)
        self.typenum = cnp.PyArray_TYPE(<cnp.ndarray>layers[0][0])
        self.is_double = self.typenum == cnp.NPY_DOUBLE
        for l, (W, b, dW, db, act, alpha, keep_z, span_w, span_b) in enumerate(layers):
            self.layers[l].n_in = cnp.PyArray_DIM(<cnp.ndarray>W, 0)
            self.layers[l].n_out = cnp.PyArray_DIM(<cnp.ndarray>W, 1)
            self.layers[l].act = act
            self.layers[l].W = <char*>_data(W)
            self.layers[l].b = <char*>_data(b)
            self.layers[l].dW = <char*>_data(dW)
            self.layers[l].db = <char*>_data(db)
            self.layers[l].alpha = <char*>_data(alpha)
            self.layers[l].span_w = span_w
            self.layers[l].span_b = span_b if b is not None else -1
        self.keep = [bool(layer[6]) for layer in layers]
        # Packed kernels for the float32 products, a pack item per PANELS_PER_PACK panels:
        # W for the forward pass, W.T for dZ @ W.T in the backward pass (all layers but
        # the first, whose dX no one needs).
        self.panels = []
        packs = []
        if self.typenum == cnp.NPY_FLOAT and packed_path():
            for l, layer in enumerate(layers):
                n_in, n_out = layer[0].shape
                for t in ([False, True] if l else [False]):
                    n_panels = -(-(n_in if t else n_out) // FASTNN_PANEL)
                    panels = aligned_empty(n_panels * (n_out if t else n_in) * FASTNN_PANEL,
                                           np.float32)
                    self.panels.append(panels)
                    if t:
                        self.layers[l].tpanels = <float*>cnp.PyArray_DATA(panels)
                    else:
                        self.layers[l].panels = <float*>cnp.PyArray_DATA(panels)
                    packs += [(l, p, min(p + PANELS_PER_PACK, n_panels), t)
                              for p in range(0, n_panels, PANELS_PER_PACK)]
        self.packs = <Item*>PyMem_Malloc(max(len(packs), 1) * sizeof(Item))
        if self.packs == NULL:
            raise MemoryError()
        for q, (l, r0, r1, t) in enumerate(packs):
            self.packs[q].l = l
            self.packs[q].r0 = r0
            self.packs[q].r1 = r1
            self.packs[q].t = t
        self.n_packs = len(packs)
        self.capacity = 0
        self.items_batch = -1

    def __dealloc__(self):
        PyMem_Free(self.layers)
        PyMem_Free(self.items)
        PyMem_Free(self.packs)

    cdef _ensure(self, Py_ssize_t batch):
        """Buffers for `batch` rows (kept, and grown when a batch is larger) and the
        update's pieces for this batch size."""
        cdef Py_ssize_t l, n, q, c, macs, r0, r1
        cdef TLayer* t
        if batch > self.capacity:
            dtype = np.float64 if self.is_double else np.float32
            self.gathered = aligned_empty((batch, self.layers[0].n_in), dtype)
            self.buffers = []
            for l in range(self.n_layers):
                n = self.layers[l].n_out
                Y = aligned_empty((batch, n), dtype)
                dZ = aligned_empty((batch, n), dtype)
                Z = aligned_empty((batch, n), dtype) if self.keep[l] else None
                self.buffers.append((Y, Z, dZ))
                self.layers[l].Y = <char*>_data(Y)
                self.layers[l].Z = <char*>_data(Z)
                self.layers[l].dZ = <char*>_data(dZ)
                if l + 1 < self.n_layers:
                    self.layers[l + 1].X = <char*>_data(Y)
            self.capacity = batch
        if batch != self.items_batch:
            pieces = []  # (cost, layer, r0, r1)
            for l in range(self.n_layers - 1, -1, -1):
                t = &self.layers[l]
                if t.span_b >= 0:
                    pieces.append((batch * t.n_out // 16, l, -1, -1))
                macs = batch * t.n_in * t.n_out
                for c in range(gemm_chunks(t.n_in, macs)):
                    r0 = c * gemm_rows(t.n_in, macs)
                    r1 = gemm_stop(t.n_in, macs, c)
                    pieces.append((batch * (r1 - r0) * t.n_out, l, r0, r1))
            # Largest first: the threads share out the small ones at the end.
            pieces.sort(key=lambda p: -p[0])
            PyMem_Free(self.items)
            self.items = <Item*>PyMem_Malloc(max(len(pieces), 1) * sizeof(Item))
            if self.items == NULL:
                raise MemoryError()
            for q, (_, l, r0, r1) in enumerate(pieces):
                self.items[q].l = l
                self.items[q].r0 = r0
                self.items[q].r1 = r1
                self.items[q].t = False
            self.n_items = len(pieces)
            self.bad = np.zeros(max(self.n_items, 1), dtype=np.intp)
            self.items_batch = batch

    cdef _check_plan(self, Plan plan):
        """ValueError unless the plan updates these very arrays."""
        cdef Py_ssize_t l
        cdef TLayer* t
        for l in range(self.n_layers):
            t = &self.layers[l]
            if not (_updates(plan, t.span_w, t.W, t.dW, t.n_in * t.n_out)
                    and (t.b == NULL or _updates(plan, t.span_b, t.b, t.db, t.n_out))):
                raise ValueError(f"the optimizer's plan does not update layer {l}'s arrays")

    cdef _set_l2(self, l2):
        """Each layer's L2 coefficient, from a sequence of one float per layer."""
        cdef Py_ssize_t l
        if len(l2) != self.n_layers:
            raise ValueError(f"l2 needs one coefficient per layer ({self.n_layers})")
        for l in range(self.n_layers):
            self.layers[l].l2 = l2[l]

    cdef bint _all_finite(self):
        """Whether no piece of the last update made a parameter NaN or infinite."""
        cdef Py_ssize_t q
        cdef Py_ssize_t[::1] bad = self.bad
        for q in range(self.n_items):
            if bad[q]:
                return False
        return True

    cdef Py_ssize_t _macs(self, Py_ssize_t batch):
        cdef Py_ssize_t l, total = 0
        for l in range(self.n_layers):
            total += batch * self.layers[l].n_in * self.layers[l].n_out
        return total

    def forward(self, cnp.ndarray X, int n_threads):
        """The outputs of the batch X (C-contiguous, of the layers' dtype and width):
        ``(Y, Z)``, the last layer's output and pre-activation (Z is Y when not kept).
        The arrays are the trainer's buffers, valid until the next call."""
        cdef Py_ssize_t batch, nc
        cdef int nt
        if not rows_ready(X, self.typenum, self.layers[0].n_in):
            raise ValueError(f"X must be a C-ordered 2-D array of {self.layers[0].n_in} "
                             f"columns of the layers' dtype")
        batch = cnp.PyArray_DIM(X, 0)
        if batch == 0:
            raise ValueError("an empty batch")
        self._ensure(batch)
        self.layers[0].X = <char*>cnp.PyArray_DATA(X)
        nc = n_chunks(batch, chunk_rows(batch))
        nt = threads_for(self._macs(batch) // MACS_PER_WORK, n_threads)
        nt = <int>nc if nt > nc else nt
        self._x = X  # kept for the weight gradients of backward_step
        self.batch = batch
        blas_serial_enter()
        with nogil:
            if self.is_double:
                _forward(self.layers, self.n_layers, batch, self.packs, self.n_packs, nt,
                         <double>0)
            else:
                _forward(self.layers, self.n_layers, batch, self.packs, self.n_packs, nt,
                         <float>0)
        blas_serial_exit()
        Y, Z, _ = self.buffers[self.n_layers - 1]
        return Y[:batch], (Y if Z is None else Z)[:batch]

    def train_step(self, cnp.ndarray X, rows, labels, targets, weights, double penalty,
                   Plan plan, Hyper hyper, Py_ssize_t fresh_from, l2, int n_threads):
        """A whole training step of softmax cross-entropy on the last layer's
        pre-activation (its activation must be softmax), in one parallel region.

        The batch is X (C-contiguous, of the layers' dtype and width), or with `rows`
        (intp, C-contiguous, valid row indices of X) the rows `rows` of X. Targets are
        `labels` (int64, one per row) or `targets` (rows of the layers' dtype),
        C-contiguous; `weights` float64 per row or None. `penalty` is added to the loss;
        `plan`, `hyper`, `fresh_from` and `l2` as `backward_step` takes them.

        Returns ``(loss, updated, Y)``: the weighted mean over the batch plus `penalty`;
        None when the loss is not finite (nothing was updated), else True when every
        updated parameter is finite (False: the caller undoes the step); the last layer's
        output (the trainer's buffer, valid until the next call). A label out of range
        raises IndexError, nothing updated.
        """
        cdef XentLoss loss
        cdef double totals[TRAIN_CHUNKS]  # a batch is at most TRAIN_CHUNKS chunks
        cdef Py_ssize_t bad[TRAIN_CHUNKS]
        cdef Py_ssize_t batch, k = self.layers[self.n_layers - 1].n_out, c, nc
        cdef OptimHyper h = hyper.h, h_fresh = hyper.h
        cdef Py_ssize_t[::1] bad_items
        cdef int nt
        cdef double value
        cdef void* data
        cdef Py_ssize_t* row_index = NULL
        cdef fnw_pool* pool = NULL
        if not rows_ready(X, self.typenum, self.layers[0].n_in):
            raise ValueError(f"X must be a C-ordered 2-D array of {self.layers[0].n_in} "
                             f"columns of the layers' dtype")
        if self.layers[self.n_layers - 1].act != ACT_SOFTMAX or not self.keep[self.n_layers - 1]:
            raise ValueError("train_step needs a last layer of softmax whose pre-activation "
                             "is kept")
        if rows is not None:
            if not _vector(rows, cnp.NPY_INTP, -1):
                raise ValueError("rows must be a C-ordered 1-D intp array")
            batch = cnp.PyArray_DIM(rows, 0)
            row_index = <Py_ssize_t*>cnp.PyArray_DATA(rows)
            for c in range(batch):
                if not 0 <= row_index[c] < cnp.PyArray_DIM(X, 0):
                    raise IndexError(f"rows must lie in [0, {cnp.PyArray_DIM(X, 0)})")
        else:
            batch = cnp.PyArray_DIM(X, 0)
        if (labels is None) == (targets is None):
            raise ValueError("give exactly one of labels and targets")
        if labels is not None and not _vector(labels, cnp.NPY_INT64, batch):
            raise ValueError(f"labels must be a C-ordered int64 array of shape ({batch},)")
        if targets is not None and not (rows_ready(targets, self.typenum, k)
                                        and cnp.PyArray_DIM(targets, 0) == batch):
            raise ValueError(f"targets must be a C-ordered array of shape ({batch}, {k}) of "
                             f"the layers' dtype")
        if weights is not None and not _vector(weights, cnp.NPY_DOUBLE, batch):
            raise ValueError(f"weights must be a C-ordered float64 array of shape ({batch},)")
        self._check_plan(plan)
        self._set_l2(l2)
        if batch == 0:
            raise ValueError("an empty batch")
        self._ensure(batch)
        if row_index != NULL:
            data = cnp.PyArray_DATA(X)
            self._x = self.gathered
        else:
            data = NULL
            self._x = X
        self.layers[0].X = <char*>cnp.PyArray_DATA(<cnp.ndarray>self._x)
        self.batch = batch
        nc = n_chunks(batch, chunk_rows(batch))
        for c in range(nc):
            totals[c] = 0
            bad[c] = -1
        bad_items = self.bad
        bad_items[:] = 0
        loss.labels = <const cnp.int64_t*>_data(labels)
        loss.T = <const char*>_data(targets)
        loss.w = <const double*>_data(weights)
        loss.totals = totals
        loss.bad = bad
        h.first = False
        h_fresh.first = True
        nt = threads_for(3 * self._macs(batch) // MACS_PER_WORK, n_threads)
        nt = <int>max(nc, self.n_items) if nt > max(nc, self.n_items) else nt
        if nt > 1 and FASTNN_TEAM_SYNC:
            pool = fnw_pool_get(nt - 1)  # NULL without workers: an OpenMP team
        blas_serial_enter()
        with nogil:
            if self.is_double:
                _step(self.layers, self.n_layers, batch, <const double*>data, row_index,
                      self.packs, self.n_packs, &loss, penalty, self.items, self.n_items,
                      plan.spans, &h, &h_fresh, fresh_from, &bad_items[0], nt, pool)
            else:
                _step(self.layers, self.n_layers, batch, <const float*>data, row_index,
                      self.packs, self.n_packs, &loss, penalty, self.items, self.n_items,
                      plan.spans, &h, &h_fresh, fresh_from, &bad_items[0], nt, pool)
        blas_serial_exit()
        for c in range(nc):
            if bad[c] >= 0:
                raise IndexError(f"label {labels[bad[c]]} of row {bad[c]} is outside "
                                 f"[0, {k - 1}]")
        Y = self.buffers[self.n_layers - 1][0][:batch]
        if not _loss_ok(&loss, nc, batch, penalty, &value):
            return value, None, Y
        return value, self._all_finite(), Y

    def backward_step(self, cnp.ndarray dY, bint linear, Plan plan, Hyper hyper,
                      Py_ssize_t fresh_from, l2, int n_threads):
        """Gradients of the batch of the last `forward` from dY (the loss's gradient of the
        last layer's output, or of its pre-activation when `linear`; C-contiguous, of the
        layers' dtype), and the optimizer's update of every parameter through `plan`
        (`Optimizer.begin_step`). `l2`: per layer, the coefficient of an L2 penalty on the
        kernel (0: none). Returns True when every updated parameter is finite."""
        cdef Py_ssize_t batch = self.batch, l, nc
        cdef OptimHyper h = hyper.h, h_fresh = hyper.h
        cdef Py_ssize_t[::1] bad
        cdef int nt
        cdef TLayer* t
        cdef void* dy = _data(dY)
        if self._x is None:
            raise RuntimeError("backward_step needs a forward pass first")
        if not rows_ready(dY, self.typenum, self.layers[self.n_layers - 1].n_out) \
                or cnp.PyArray_DIM(dY, 0) != batch:
            raise ValueError(f"dY must be a C-ordered array of the last forward pass's shape "
                             f"({batch}, {self.layers[self.n_layers - 1].n_out}) and the "
                             f"layers' dtype")
        self._check_plan(plan)
        bad = self.bad
        h.first = False
        h_fresh.first = True
        self._set_l2(l2)
        self.layers[0].X = <char*>cnp.PyArray_DATA(<cnp.ndarray>self._x)
        nc = n_chunks(batch, chunk_rows(batch))
        nt = threads_for(2 * self._macs(batch) // MACS_PER_WORK, n_threads)
        nt = <int>max(nc, self.n_items) if nt > max(nc, self.n_items) else nt
        blas_serial_enter()
        with nogil:
            if self.is_double:
                _backward(self.layers, self.n_layers, batch, <const double*>dy,
                          linear, self.items, self.n_items, plan.spans, &h, &h_fresh,
                          fresh_from, &bad[0], nt)
            else:
                _backward(self.layers, self.n_layers, batch, <const float*>dy,
                          linear, self.items, self.n_items, plan.spans, &h, &h_fresh,
                          fresh_from, &bad[0], nt)
        blas_serial_exit()
        return self._all_finite()
