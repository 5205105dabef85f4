"""The scan for NaN and infinity that every check of floats uses: the input rule of the
model and the engine, and the optimizer step's check of the parameters it wrote."""
from cython cimport floating

cimport numpy as cnp

import numpy as np

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


def is_finite(cnp.ndarray X):
    """True when the array X holds no NaN and no infinity.

    A C-contiguous float32 or float64 array is scanned in place, without the temporary
    array of ``np.isfinite(X).all()``; any other array goes through numpy.
    """
    cdef Py_ssize_t n = cnp.PyArray_SIZE(X)
    cdef void* xp = cnp.PyArray_DATA(X)
    cdef int typenum = cnp.PyArray_TYPE(X)
    cdef bint ok
    if not cnp.PyArray_IS_C_CONTIGUOUS(X) or typenum not in (cnp.NPY_FLOAT, cnp.NPY_DOUBLE):
        return bool(np.isfinite(X).all())
    with nogil:
        if typenum == cnp.NPY_FLOAT:
            ok = all_finite(<const float*>xp, n)
        else:
            ok = all_finite(<const double*>xp, n)
    return ok
