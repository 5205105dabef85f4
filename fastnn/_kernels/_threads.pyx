"""Thread control for the kernels, and whether OpenMP was compiled in."""
from fastnn._kernels._openmp cimport FASTNN_OPENMP_ENABLED, omp_get_max_threads

from fastnn._kernels._blas_threads import set_blas_threads

cdef int _user_threads = 0


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(FASTNN_OPENMP_ENABLED)


def set_num_threads(n):
    """Use at most `n` threads in the kernels; ``None`` returns to the default.

    This covers the kernels' OpenMP loops and the BLAS their matrix products call
    (scipy's OpenBLAS, whose thread count is process-wide). The default is OpenMP's own
    (``OMP_NUM_THREADS`` when set, else the core count) and the BLAS's own.
    """
    global _user_threads
    if n is None:
        _user_threads = 0
        set_blas_threads(None)
        return
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer or None, got {n!r}")
    _user_threads = n
    set_blas_threads(n)


def get_num_threads():
    """The number of threads the kernels use (1 on a build without OpenMP)."""
    if not FASTNN_OPENMP_ENABLED:
        return 1
    if _user_threads > 0:
        return _user_threads
    return omp_get_max_threads()
