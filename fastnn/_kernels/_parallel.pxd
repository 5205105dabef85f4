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
    # A matrix product runs in chunks of GEMM_ROWS rows of its output, each one BLAS call
    # on one thread. Each call packs the operand all chunks share again, which costs
    # about what GEMM_ROWS rows of the product cost over a few: fewer rows lose speed
    # to packing, more leave too few chunks to share out.
    GEMM_ROWS = 32


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
