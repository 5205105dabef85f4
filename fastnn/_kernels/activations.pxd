from cython cimport floating

# Activation codes shared by every kernel family that fuses an activation.
cdef enum:
    ACT_LINEAR = 0
    ACT_BINARY_STEP = 1
    ACT_BINARY_STEP_STE = 2
    ACT_SIGMOID = 3
    ACT_TANH = 4
    ACT_RELU = 5
    ACT_LEAKY_RELU = 6
    ACT_PRELU = 7
    ACT_ELU = 8
    ACT_SELU = 9
    ACT_GELU = 10
    ACT_GELU_TANH = 11
    ACT_SWISH = 12
    ACT_SOFTPLUS = 13
    ACT_SOFTMAX = 14

cdef void act_forward_row(int act, const floating* z, floating* y, Py_ssize_t n,
                          const floating* alpha) noexcept nogil

cdef void act_backward_row(int act, const floating* z, const floating* y,
                           const floating* dy, floating* dz, Py_ssize_t n,
                           const floating* alpha) noexcept nogil

cdef void act_forward_rows(int act, const floating* z, floating* y, Py_ssize_t rows,
                           Py_ssize_t cols, const floating* alpha, int n_threads) noexcept nogil

cdef void act_backward_rows(int act, const floating* z, const floating* y, const floating* dy,
                            floating* dz, Py_ssize_t rows, Py_ssize_t cols,
                            const floating* alpha, int n_threads) noexcept nogil
