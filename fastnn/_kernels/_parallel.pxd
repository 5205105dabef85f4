# The threading rules of every kernel, in one place: how much work a thread must have,
# how elementwise work is cut into blocks, and how many threads a call uses.
#
# Every parallel loop is written once, as
#     for i in prange(n, nogil=True, schedule=..., num_threads=nt, use_threads_if=nt > 1)
# with nt = threads_for(work, n_threads), so the serial and the parallel paths run the same
# body. Work is partitioned by output (rows, or blocks of BLOCK elements) independently of
# the thread count, so results are bitwise the same whatever the number of threads.
# Loops run schedule="dynamic": a thread takes the next block when it is free, so the
# blocks a descheduled thread has not started go to the others instead of waiting for it.

cdef enum:
    # Work below this many elements (or multiply-adds) per thread runs on fewer threads.
    # Idle OpenMP threads sleep (fastnn sets OMP_WAIT_POLICY=PASSIVE, see
    # fastnn/__init__.py), and waking one was measured at 50-100 us on a 2-core virtual
    # machine, so a second thread must have at least that much work to gain anything.
    MIN_WORK_PER_THREAD = 1 << 18
    # Elementwise work is cut into blocks of this many elements, whatever the thread count.
    BLOCK = 4096
    # Rows of a block in loops over rows (a softmax, a bias and activation pass).
    ROW_BLOCK = 16
    # A matrix product runs in chunks of rows of its output, each one BLAS call on one
    # thread (see `gemm_rows`). Each call packs again the operand all chunks share: on one
    # thread, (256, 784) @ (784, 256) in 32-row chunks measured 1.34x one call, in 64-row
    # chunks 1.10x, in 128-row chunks 0.99-1.09x. About GEMM_CHUNKS chunks leave some to
    # share out when a thread stalls. A tail shorter than a quarter chunk joins the last
    # chunk (200 rows: 64, 64, 72, not 64, 64, 64, 8): a call on 8 rows packs the shared
    # operand as a full chunk does.
    # A product too small to ever take a second thread (`gemm_threads`) is one chunk:
    # chunks there would only pack the shared operand again ((200, 100) @ (100, 256) and
    # (200, 256) @ (256, 128) in chunks of 64, 64 and 72 rows took 1.15x and 1.18x the
    # CPU time of one call).
    GEMM_CHUNKS = 4
    GEMM_MIN_ROWS = 64
    GEMM_MAX_ROWS = 256
    # A multiply-add of a product costs about a sixteenth of an elementwise operation.
    MACS_PER_WORK = 16


cdef inline int threads_for(Py_ssize_t work, int n_threads) noexcept nogil:
    """Threads worth using for `work` elements, at most `n_threads`."""
    cdef Py_ssize_t useful = work // MIN_WORK_PER_THREAD
    if useful < 1:
        return 1
    if useful < n_threads:
        return <int>useful
    return n_threads


cdef inline Py_ssize_t n_chunks(Py_ssize_t n, Py_ssize_t size) noexcept nogil:
    """Chunks of `size` that cover `n`."""
    return (n + size - 1) // size


cdef inline int gemm_threads(Py_ssize_t macs, Py_ssize_t chunks, int n_threads) noexcept nogil:
    """Threads for a product of `macs` multiply-adds in `chunks` chunks."""
    cdef int nt = threads_for(macs // MACS_PER_WORK, n_threads)
    return nt if nt < chunks else <int>chunks


cdef inline Py_ssize_t gemm_rows(Py_ssize_t m, Py_ssize_t macs) noexcept nogil:
    """Rows per chunk of a product with `m` rows of output and `macs` multiply-adds:
    about GEMM_CHUNKS chunks of GEMM_MIN_ROWS to GEMM_MAX_ROWS rows, a multiple of 16, or
    all m rows when the product is too small for two threads. It depends on the shape
    alone, never on the thread count."""
    cdef Py_ssize_t rows = (n_chunks(m, GEMM_CHUNKS) + 15) // 16 * 16
    if macs // MACS_PER_WORK < 2 * MIN_WORK_PER_THREAD:
        return m if m > 0 else 1
    if rows < GEMM_MIN_ROWS:
        return GEMM_MIN_ROWS
    return rows if rows < GEMM_MAX_ROWS else GEMM_MAX_ROWS


cdef inline Py_ssize_t gemm_chunks(Py_ssize_t m, Py_ssize_t macs) noexcept nogil:
    """The number of chunks of such a product (see `gemm_stop`)."""
    cdef Py_ssize_t rows = gemm_rows(m, macs), nc = n_chunks(m, rows)
    if nc > 1 and m - (nc - 1) * rows < rows // 4:
        return nc - 1
    return nc


cdef inline Py_ssize_t gemm_stop(Py_ssize_t m, Py_ssize_t macs, Py_ssize_t c) noexcept nogil:
    """The end of chunk c of such a product: chunk c covers rows c gemm_rows(m, macs) to
    this, the last chunk running to m."""
    cdef Py_ssize_t stop = (c + 1) * gemm_rows(m, macs)
    return m if c + 1 == gemm_chunks(m, macs) or stop > m else stop
