"""Thread control for the kernels, and whether OpenMP was compiled in.

No call uses more threads than the CPUs this process may run on: its affinity mask,
capped by its cgroup CPU quota (`cpu_limit`). More threads than that only wait for one
another, and a thread the scheduler has put aside stalls every thread that waits for it.

The kernels' matrix products run on fastnn's own threads, in chunks each thread takes
when it is free, every chunk one BLAS call on one thread. The BLAS's own threads wait
for one another at barriers, spinning, so one descheduled BLAS thread stalls a product
for a whole time slice; hence the BLAS runs on one thread while a kernel runs
(`blas_serial_enter`), and the caller's setting is back as soon as none runs.
"""
import math
import os

from fastnn._kernels._openmp cimport FASTNN_OPENMP_ENABLED, omp_get_max_threads

from fastnn._kernels import _blas_threads

# cgroup v2 writes "max 100000" or "<quota> <period>" in one file; v1 uses two files.
_QUOTA_V2 = "/sys/fs/cgroup/cpu.max"
_QUOTA_V1 = ("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _affinity():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def _quota_cpus(read):
    """CPUs the cgroup quota allows (rounded up), or None when there is no quota."""
    text = read(_QUOTA_V2)
    if text is not None:
        fields = text.split()
    else:
        quota, period = read(_QUOTA_V1[0]), read(_QUOTA_V1[1])
        fields = [] if quota is None or period is None else [quota.strip(), period.strip()]
    # (No indexing past the end: the kernels are compiled without bounds checks.)
    if len(fields) != 2 or not (fields[0].isdigit() and fields[1].isdigit()):
        return None  # "max", "-1", no file, or a format not known here
    quota, period = int(fields[0]), int(fields[1])
    if quota == 0 or period == 0:
        return None
    return max(1, math.ceil(quota / period))


def cpu_limit(affinity=_affinity, read=_read):
    """The CPUs this process may run on: its affinity mask capped by its cgroup CPU quota.

    Parameters
    ----------
    affinity : callable, optional
        Returns the number of CPUs in the affinity mask.
    read : callable, optional
        ``read(path)`` returns a file's text, or None when it cannot be read.
    """
    cpus = max(1, int(affinity()))
    quota = _quota_cpus(read)
    return cpus if quota is None else min(cpus, quota)


CPU_LIMIT = cpu_limit()
cdef int _user_threads = 0


def capped(n):
    """`n` threads, or as many as the process has CPUs when that is fewer."""
    return min(int(n), CPU_LIMIT)


ctypedef void (*_set_fn)(int) noexcept nogil
ctypedef int (*_get_fn)() noexcept nogil
cdef _set_fn _blas_set = NULL
cdef _get_fn _blas_get = NULL
if _blas_threads.ADDRESSES is not None:  # else the BLAS's thread count cannot be set
    _blas_set = <_set_fn><size_t>_blas_threads.ADDRESSES[0]
    _blas_get = <_get_fn><size_t>_blas_threads.ADDRESSES[1]
cdef int _blas_depth = 0   # kernels running now, in any Python thread
cdef int _blas_saved = 0   # the BLAS's thread count before the first of them


cdef void blas_serial_enter() noexcept:
    """The BLAS on one thread until the matching `blas_serial_exit`.

    Called with the GIL held, which orders the calls of every Python thread; a kernel
    started while another runs finds the BLAS already on one thread. Between the two
    calls, a BLAS call of the program's own (scipy.linalg, from another Python thread)
    runs on one thread too.
    """
    global _blas_depth, _blas_saved
    if _blas_set == NULL:
        return
    if _blas_depth == 0:
        _blas_saved = _blas_get()
        if _blas_saved != 1:
            _blas_set(1)
    _blas_depth += 1


cdef void blas_serial_exit() noexcept:
    """The BLAS back on its thread count when no kernel runs any more."""
    global _blas_depth
    if _blas_set == NULL:
        return
    _blas_depth -= 1
    if _blas_depth == 0 and _blas_saved != 1:
        _blas_set(_blas_saved)


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTNN_OPENMP_ENABLED)


def set_num_threads(n):
    """Use at most `n` threads in the kernels; ``None`` returns to the default.

    This covers every thread of the kernels, their matrix products included (each runs
    on these threads, the BLAS on one thread per call; the BLAS's own thread count, which
    the program's other BLAS calls use, is left as it is). The default is OpenMP's own
    (``OMP_NUM_THREADS`` when set, else the core count). Either way no more threads are
    used than `cpu_limit()` (the affinity mask and the cgroup CPU quota).
    """
    global _user_threads
    if n is None:
        _user_threads = 0
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    _user_threads = n


def get_num_threads():
    """The number of threads the kernels use (1 on a build without OpenMP)."""
    if not FASTNN_OPENMP_ENABLED:
        return 1
    return capped(_user_threads if _user_threads > 0 else omp_get_max_threads())
