"""The scan for NaN and infinity that every check of floats uses: the input rule of the
model and the engine, and the optimizer step's check of the parameters it wrote."""
from cython cimport floating
from cython.parallel cimport prange

cimport numpy as cnp

from fastnn._kernels._parallel cimport threads_for

import numpy as np

from fastnn._kernels._threads import get_num_threads

cnp.import_array()


cdef bint all_finite(const floating* x, Py_ssize_t n) noexcept nogil:
    """True when no x[i] is NaN or infinite: x - x is 0 exactly for the finite values.
    The flags are or-ed, which the compiler vectorizes (a sum of floats it may not
    reorder)."""
    cdef Py_ssize_t i
    cdef int bad = 0
    for i in range(n):
        bad = bad | (x[i] - x[i] != 0)
    return bad == 0


cdef enum:
    # Elements per block of the scan of an array (256 KB of float32)
    SCAN_BLOCK = 1 << 16


cdef bint _blocks_finite(const floating* x, Py_ssize_t n, int nt) noexcept nogil:
    """all_finite over blocks of SCAN_BLOCK elements on up to nt threads."""
    cdef Py_ssize_t q, start, nb = (n + SCAN_BLOCK - 1) // SCAN_BLOCK
    cdef int bad = 0
    for q in prange(nb, schedule="dynamic", num_threads=nt, use_threads_if=nt > 1):
        start = q * SCAN_BLOCK
        bad += not all_finite(x + start, min(n - start, <Py_ssize_t>SCAN_BLOCK))
    return bad == 0


def is_finite(cnp.ndarray X):
    """True when the array X holds no NaN and no infinity.

    A C-contiguous float32 or float64 array is scanned in place, without the temporary
    array of ``np.isfinite(X).all()``, on the kernels' threads (the scan is bound by the
    memory's bandwidth: 188 MB of float32 took 6.0 ms on one thread of a 2-core Zen 5,
    4.7-5.3 on two); any other array goes through numpy.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(X)
    cdef void* xp = cnp.PyArray_DATA(X)
    cdef int typenum = cnp.PyArray_TYPE(X)
    cdef bint ok
    cdef int nt
    if not cnp.PyArray_IS_C_CONTIGUOUS(X) or typenum not in (cnp.NPY_FLOAT, cnp.NPY_DOUBLE):
        return bool(np.isfinite(X).all())
    nt = threads_for(n, get_num_threads())
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            ok = _blocks_finite(<const float*>xp, n, nt)
        else:
            ok = _blocks_finite(<const double*>xp, n, nt)
    return ok
