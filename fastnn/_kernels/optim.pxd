from cython cimport floating

# Update rules; each reads the parameter, its gradient and up to three state buffers.
cdef enum:
    RULE_SGD = 0        # state: momentum buffer (NULL: no momentum)
    RULE_ADAGRAD = 1    # state: sum of squared gradients
    RULE_RMSPROP = 2    # state: square average, gradient average (NULL: not centered),
                        #        momentum buffer (NULL: no momentum)
    RULE_ADADELTA = 3   # state: square average, accumulated squared update
    RULE_ADAM = 4       # state: first moment, second moment, running max of the second
                        #        moment (NULL: no amsgrad)

cdef struct OptimHyper:
    int rule
    double lr                     # step size: lr, Adagrad's decayed lr, Adam's lr / (1 - beta1^t)
    double momentum               # SGD, RMSprop
    double dampening              # SGD
    double alpha                  # RMSprop smoothing constant
    double rho                    # Adadelta
    double beta1                  # Adam
    double beta2                  # Adam
    double bias_correction2_sqrt  # Adam: sqrt(1 - beta2^t)
    double eps
    double weight_decay           # L2 penalty: the gradient gets weight_decay * p added
    double param_scale            # p := param_scale * p first (AdamW: 1 - lr * weight_decay)
    bint nesterov                 # SGD
    bint first                    # SGD: the momentum buffer is new and takes the gradient
    bint flip                     # a plan's states are read from its spares (see Plan)

cdef Py_ssize_t optim_step(const OptimHyper* h, floating* p, const floating* g, floating* s0,
                           floating* s1, floating* s2, floating* prev, Py_ssize_t n,
                           int n_threads) noexcept nogil

cdef struct Span:
    # One parameter of a `Plan`: data pointers of the parameter, its gradient, its state
    # buffers (NULL where unused), their spares, and the undo record of the parameter, all
    # of n elements of one dtype.
    char* p
    char* g
    char* s0
    char* s1
    char* s2
    char* t0      # where the states go (the spares, or s0, s1, s2 for an update in place)
    char* t1
    char* t2
    char* prev
    Py_ssize_t n
    bint is_double

cdef Py_ssize_t span_step(const OptimHyper* h, const Span* sp, Py_ssize_t start,
                          Py_ssize_t stop) noexcept nogil

cdef class Hyper:
    cdef OptimHyper h

cdef class Plan:
    cdef Span* spans
    cdef Py_ssize_t n_spans, n_blocks, total
    cdef Py_ssize_t[::1] blocks
    cdef object arrays
