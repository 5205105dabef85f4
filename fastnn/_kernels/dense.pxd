from cython cimport floating

cimport numpy as cnp

cdef void gemm(bint trans_a, bint trans_b, int m, int n, int k, const floating* A, int lda,
               const floating* B, int ldb, floating beta, floating* C, int ldc) noexcept nogil

cdef void gemm_parallel(bint trans_a, bint trans_b, Py_ssize_t m, Py_ssize_t n, Py_ssize_t k,
                        const floating* A, Py_ssize_t lda, const floating* B, Py_ssize_t ldb,
                        floating* C, Py_ssize_t ldc, int n_threads) noexcept nogil

cdef void dense_forward_core(const floating* X, const floating* W, const floating* b,
                             floating* Z, floating* Y, Py_ssize_t batch, Py_ssize_t n_in,
                             Py_ssize_t n_out, int act, const floating* alpha,
                             int n_threads) noexcept nogil

cdef void bias_act_row(floating* y, const floating* b, floating* z, Py_ssize_t n, int act,
                       const floating* alpha) noexcept nogil

cdef bint packed_forward(const float* X, const float* Wp, const float* b, float* Y,
                         Py_ssize_t batch, Py_ssize_t n_in, Py_ssize_t n_out, int act,
                         const float* alpha, int n_threads) noexcept nogil


cdef inline bint rows_ready(object X, int typenum, Py_ssize_t width) noexcept:
    """Whether X can run as it is: a C-ordered 2-D array of `typenum` with `width` columns."""
    return (cnp.PyArray_Check(X) and cnp.PyArray_TYPE(<cnp.ndarray>X) == typenum
            and cnp.PyArray_NDIM(<cnp.ndarray>X) == 2
            and cnp.PyArray_IS_C_CONTIGUOUS(<cnp.ndarray>X)
            and cnp.PyArray_DIM(<cnp.ndarray>X, 1) == width)

cdef void column_sums(const floating* A, floating* out, Py_ssize_t rows,
                      Py_ssize_t cols) noexcept nogil
