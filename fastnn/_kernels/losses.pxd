from cython cimport floating

cimport numpy as cnp

cdef Py_ssize_t softmax_xent_rows(const floating* Z, const floating* P,
                                  const cnp.int64_t* labels, const floating* T, const double* w,
                                  floating* G, Py_ssize_t n, Py_ssize_t k, Py_ssize_t n_mean,
                                  double* value) noexcept nogil
