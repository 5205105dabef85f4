from cython cimport floating
from libc.stdint cimport int64_t

from fastnn._kernels.sparse cimport index_t

cdef void bsr_forward_rows(const floating* X, Py_ssize_t ldx, Py_ssize_t nb,
                           const int64_t* indptr, const index_t* indices,
                           const floating* values, int block, const floating* b, floating* Y,
                           Py_ssize_t n_out, int n_threads) noexcept nogil
