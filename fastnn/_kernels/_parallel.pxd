# The threading rules of every kernel, in one place: how much work a thread must have,
# how elementwise work is cut into blocks, and how many threads a call uses.
#
# Every parallel loop is written once, as
#     for i in prange(n, nogil=True, schedule=..., num_threads=nt, use_threads_if=nt > 1)
# with nt = threads_for(work, n_threads), so the serial and the parallel paths run the same
# body. Work is partitioned by output (rows, or blocks of BLOCK elements) independently of
# the thread count, so results are bitwise the same whatever the number of threads.

cdef enum:
    # Work below this many elements (or multiply-adds) per thread runs on fewer threads.
    # Idle OpenMP threads sleep (fastnn sets OMP_WAIT_POLICY=PASSIVE, see
    # fastnn/__init__.py), and waking one was measured at 50-100 us on a 2-core virtual
    # machine, so a second thread must have at least that much work to gain anything.
    MIN_WORK_PER_THREAD = 1 << 18
    # Elementwise work is cut into blocks of this many elements, whatever the thread count.
    BLOCK = 4096


cdef inline int threads_for(Py_ssize_t work, int n_threads) noexcept nogil:
    """Threads worth using for `work` elements, at most `n_threads`."""
    cdef Py_ssize_t useful = work // MIN_WORK_PER_THREAD
    if useful < 1:
        return 1
    if useful < n_threads:
        return <int>useful
    return n_threads
