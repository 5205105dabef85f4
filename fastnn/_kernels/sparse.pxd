from cython cimport floating
from libc.stdint cimport int64_t

# Column indices of a CSR matrix: uint16 when the fan-in is at most 65536, else int32.
ctypedef fused index_t:
    unsigned short
    int

cdef void csr_matvec(const floating* x, const int64_t* indptr, const index_t* indices,
                     const floating* data, const floating* b, floating* y, Py_ssize_t n_out,
                     int act, const floating* alpha, int n_threads) noexcept nogil

cdef void csr_forward_t(const floating* XT, Py_ssize_t ldx, const int64_t* indptr,
                        const index_t* indices, const floating* data, const floating* b,
                        floating* YT, Py_ssize_t ldy, Py_ssize_t n_out, Py_ssize_t batch,
                        int act, const floating* alpha, int n_threads) noexcept nogil


cdef void transpose(const floating* A, Py_ssize_t lda, floating* B, Py_ssize_t ldb,
                    Py_ssize_t rows, Py_ssize_t cols, int n_threads) noexcept nogil
