from cython cimport floating

cdef bint all_finite(const floating* x, Py_ssize_t n) noexcept nogil
