from libc.stdint cimport uint16_t, int32_t, int64_t

cdef enum:
    PREC_INT8 = 1
    PREC_BF16 = 2

# A quantized (n_in, n_out) weight matrix, packed for the products of quant.h.
cdef struct QWeights:
    int precision
    Py_ssize_t n_in, n_out
    Py_ssize_t nkb          # steps of the inner dimension (4 inputs int8, 2 bf16)
    Py_ssize_t n_panels     # panels of 16 output units
    Py_ssize_t row_bytes    # bytes of one converted input row (padded to nkb steps)
    const void* packed
    const int32_t* corr     # int8: 128 * column sums of W, for signed inputs
    const float* w_scale    # int8: per output unit
    float x_scale           # int8: static input scale, or 0 for one per row and call
    float x_inv             # 1 / x_scale
    bint x_signed           # int8: inputs quantized signed (else unsigned, non-negative)
    int block               # int8: 0 for dense, else W in quads of 1 x block blocks and
    Py_ssize_t n_cols       # n_cols block columns (see quant.h): `packed` holds the
    const int64_t* qptr     # quads' weights, qptr (n_cols + 1) each column's quads and
    const uint16_t* qidx    # qidx (4 per quad) their input rows


cdef Py_ssize_t qdense_scratch_bytes(const QWeights* q, int n_threads) noexcept nogil

cdef void qdense_forward(const QWeights* q, const float* X, Py_ssize_t ldx, Py_ssize_t m,
                         const float* b, int act, const float* alpha, float* Y, Py_ssize_t ldy,
                         char* scratch, int n_threads) noexcept nogil


cdef class QuantDense:
    cdef QWeights w
    cdef readonly object precision, weights, w_scale, packed, corr, qptr, qidx
    cdef _bind(self)
    cdef const QWeights* weights_ptr(self)
