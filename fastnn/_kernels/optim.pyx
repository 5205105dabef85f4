"""Optimizer kernels: torch.optim's update rules as one fused, in-place pass per parameter.

Each rule reads an element of the gradient once and updates the parameter and its
state buffers in the same loop, in the parameter's precision. Scalars that depend
only on the step (bias corrections, a decayed learning rate) are computed by the
caller once per step and passed in. The formulas follow torch.optim term by term,
so a run can be checked against torch step by step.

Work is cut into blocks of a fixed size, independent of the thread count, so the
result is bitwise the same whatever the number of threads.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.string cimport memcpy

cimport numpy as cnp

from fastnn._kernels._finite cimport all_finite
from fastnn._kernels._parallel cimport BLOCK, threads_for

import numpy as np

from fastnn._kernels._checks import FLOAT_DTYPES, as_float_array, check_out, resolve_threads

cnp.import_array()

cdef extern from "subnormal.h" nogil:
    int FASTNN_FLUSHES_SUBNORMALS
    unsigned int fastnn_subnormals_off()
    void fastnn_subnormals_restore(unsigned int mode)

cdef enum:
    # The work of one element of an update, in the elementwise operations `threads_for`
    # counts. A rule reads and writes four to eight arrays, and its time is that of the
    # memory traffic: Adam over the 235,000 weights of a 784-256-128-10 network measured
    # 0.21-0.31 ms on one thread and 0.23-0.34 ms on two (waking the second thread
    # included, on a shared 2-core machine), so a second thread waits for 2**19 elements.
    RULE_WORK = 1

FLUSHES_SUBNORMALS = bool(FASTNN_FLUSHES_SUBNORMALS)
"""Whether the rules compute with subnormal values as zero (x86: `subnormal.h`)."""

RULES = {"sgd": RULE_SGD, "adagrad": RULE_ADAGRAD, "rmsprop": RULE_RMSPROP,
         "adadelta": RULE_ADADELTA, "adam": RULE_ADAM}
"""Kernel code of each update rule, by name."""


cdef inline floating _sqrt(floating x) noexcept nogil:
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void _sgd_span(const OptimHyper* h, floating* p, const floating* g, const floating* buf,
                    floating* buf_out, Py_ssize_t n) noexcept nogil:
    """d := g + wd p; buf := d on the first step, else momentum buf + (1 - dampening) d;
    p := p - lr (d + momentum buf if nesterov else buf), or p - lr d without momentum."""
    cdef floating lr = <floating>h.lr, wd = <floating>h.weight_decay
    cdef floating mu = <floating>h.momentum, keep = <floating>(1 - h.dampening)
    cdef bint first = h.first, nesterov = h.nesterov
    cdef Py_ssize_t j
    cdef floating d, b
    for j in range(n):
        d = g[j]
        if wd != 0:
            d = d + wd * p[j]
        if buf != NULL:
            b = d if first else mu * buf[j] + keep * d
            buf_out[j] = b
            d = d + mu * b if nesterov else b
        p[j] = p[j] - lr * d


cdef void _adagrad_span(const OptimHyper* h, floating* p, const floating* g,
                        const floating* acc, floating* acc_out, Py_ssize_t n) noexcept nogil:
    """d := g + wd p; acc := acc + d^2; p := p - lr d / (sqrt(acc) + eps)."""
    cdef floating lr = <floating>h.lr, wd = <floating>h.weight_decay, eps = <floating>h.eps
    cdef Py_ssize_t j
    cdef floating d, s
    for j in range(n):
        d = g[j]
        if wd != 0:
            d = d + wd * p[j]
        s = acc[j] + d * d
        acc_out[j] = s
        p[j] = p[j] - lr * (d / (_sqrt(s) + eps))


cdef void _rmsprop_span(const OptimHyper* h, floating* p, const floating* g,
                        const floating* sq, const floating* ga, const floating* buf,
                        floating* sq_out, floating* ga_out, floating* buf_out,
                        Py_ssize_t n) noexcept nogil:
    """d := g + wd p; sq := alpha sq + (1 - alpha) d^2; ga := ga + (1 - alpha) (d - ga);
    r := d / (sqrt(sq - ga^2 if centered else sq) + eps);
    buf := momentum buf + r; p := p - lr (buf if momentum else r)."""
    cdef floating lr = <floating>h.lr, wd = <floating>h.weight_decay, eps = <floating>h.eps
    cdef floating alpha = <floating>h.alpha, w = <floating>(1 - h.alpha)
    cdef floating mu = <floating>h.momentum
    cdef Py_ssize_t j
    cdef floating d, s, a, r
    for j in range(n):
        d = g[j]
        if wd != 0:
            d = d + wd * p[j]
        s = alpha * sq[j] + w * (d * d)
        sq_out[j] = s
        if ga != NULL:
            a = ga[j] + w * (d - ga[j])
            ga_out[j] = a
            s = s - a * a
        r = d / (_sqrt(s) + eps)
        if buf != NULL:
            r = mu * buf[j] + r
            buf_out[j] = r
        p[j] = p[j] - lr * r


cdef void _adadelta_span(const OptimHyper* h, floating* p, const floating* g,
                         const floating* sq, const floating* acc, floating* sq_out,
                         floating* acc_out, Py_ssize_t n) noexcept nogil:
    """d := g + wd p; sq := rho sq + (1 - rho) d^2; u := sqrt(acc + eps) / sqrt(sq + eps) d;
    acc := rho acc + (1 - rho) u^2; p := p - lr u."""
    cdef floating lr = <floating>h.lr, wd = <floating>h.weight_decay, eps = <floating>h.eps
    cdef floating rho = <floating>h.rho, w = <floating>(1 - h.rho)
    cdef Py_ssize_t j
    cdef floating d, s, u
    for j in range(n):
        d = g[j]
        if wd != 0:
            d = d + wd * p[j]
        s = rho * sq[j] + w * (d * d)
        sq_out[j] = s
        u = _sqrt(acc[j] + eps) / _sqrt(s + eps) * d
        acc_out[j] = rho * acc[j] + w * (u * u)
        p[j] = p[j] - lr * u


cdef void _adam_span(const OptimHyper* h, floating* p, const floating* g, const floating* m,
                     const floating* v, const floating* vmax, floating* m_out, floating* v_out,
                     floating* vmax_out, Py_ssize_t n) noexcept nogil:
    """p := param_scale p; d := g + wd p; m := m + (1 - beta1) (d - m);
    v := beta2 v + (1 - beta2) d^2; vmax := max(vmax, v) with amsgrad;
    p := p - lr m / (sqrt(vmax or v) / sqrt(1 - beta2^t) + eps)."""
    cdef floating lr = <floating>h.lr, wd = <floating>h.weight_decay, eps = <floating>h.eps
    cdef floating scale = <floating>h.param_scale, c2 = <floating>h.bias_correction2_sqrt
    cdef floating w1 = <floating>(1 - h.beta1)
    cdef floating beta2 = <floating>h.beta2, w2 = <floating>(1 - h.beta2)
    cdef Py_ssize_t j
    cdef floating x, d, a, s
    for j in range(n):
        x = p[j]
        if scale != 1:
            x = x * scale
        d = g[j]
        if wd != 0:
            d = d + wd * x
        a = m[j] + w1 * (d - m[j])
        m_out[j] = a
        s = beta2 * v[j] + w2 * (d * d)
        v_out[j] = s
        if vmax != NULL:
            if vmax[j] > s:
                s = vmax[j]
            vmax_out[j] = s
        p[j] = x - lr * (a / (_sqrt(s) / c2 + eps))


cdef inline floating* _at(floating* s, Py_ssize_t offset) noexcept nogil:
    return NULL if s == NULL else s + offset


cdef void _step_span(const OptimHyper* h, floating* p, const floating* g, const floating* s0,
                     const floating* s1, const floating* s2, floating* t0, floating* t1,
                     floating* t2, Py_ssize_t n) noexcept nogil:
    """One rule over n elements: states read from s0, s1, s2 and written to t0, t1, t2 (the
    same arrays for an update in place)."""
    if h.rule == RULE_SGD:
        _sgd_span(h, p, g, s0, t0, n)
    elif h.rule == RULE_ADAGRAD:
        _adagrad_span(h, p, g, s0, t0, n)
    elif h.rule == RULE_RMSPROP:
        _rmsprop_span(h, p, g, s0, s1, s2, t0, t1, t2, n)
    elif h.rule == RULE_ADADELTA:
        _adadelta_span(h, p, g, s0, s1, t0, t1, n)
    elif h.rule == RULE_ADAM:
        _adam_span(h, p, g, s0, s1, s2, t0, t1, t2, n)


cdef Py_ssize_t _step_block(const OptimHyper* h, floating* p, const floating* g, floating* s0,
                            floating* s1, floating* s2, floating* t0, floating* t1,
                            floating* t2, floating* prev, Py_ssize_t start,
                            Py_ssize_t stop) noexcept nogil:
    """Elements [start, stop) of an update, states read from s and written to t; the old
    values of p first copied into prev (unless NULL). 1 when p became NaN or infinite
    there, else 0. Subnormal values count as zero (`subnormal.h`)."""
    cdef Py_ssize_t m = stop - start
    cdef unsigned int mode
    if prev != NULL:
        memcpy(prev + start, p + start, m * sizeof(floating))
    mode = fastnn_subnormals_off()
    _step_span(h, p + start, g + start, _at(s0, start), _at(s1, start), _at(s2, start),
               _at(t0, start), _at(t1, start), _at(t2, start), m)
    fastnn_subnormals_restore(mode)
    return not all_finite(p + start, m)


cdef Py_ssize_t optim_step(const OptimHyper* h, floating* p, const floating* g, floating* s0,
                           floating* s1, floating* s2, floating* prev, Py_ssize_t n,
                           int n_threads) noexcept nogil:
    """p, s0, s1, s2 := rule(p, g, s0, s1, s2) elementwise over n elements, in place.

    With `prev` (not NULL), the old values of p are copied into prev, a block at a time
    just before the block is overwritten (the block is then in cache for the update).
    Returns the number of blocks in which p became NaN or infinite: 0 when the update is
    finite.
    """
    cdef Py_ssize_t i, start, stop, nblocks = (n + BLOCK - 1) // BLOCK
    cdef Py_ssize_t bad = 0
    cdef int nt = threads_for(n * RULE_WORK, n_threads)
    for i in prange(nblocks, nogil=True, schedule="dynamic", num_threads=nt,
                    use_threads_if=nt > 1):
        start = i * BLOCK
        stop = start + BLOCK if start + BLOCK < n else n
        bad += _step_block(h, p, g, s0, s1, s2, s0, s1, s2, prev, start, stop)
    return bad


cdef Py_ssize_t span_step(const OptimHyper* h, const Span* sp, Py_ssize_t start,
                          Py_ssize_t stop) noexcept nogil:
    """Elements [start, stop) of one parameter of a plan, as `optim_step` updates them
    (undo record of p included), the states read from its buffers s and written to its
    buffers t, or the other way round when h.flip; 1 when the parameter became NaN or
    infinite there, else 0."""
    cdef char* a0 = sp.t0 if h.flip else sp.s0
    cdef char* a1 = sp.t1 if h.flip else sp.s1
    cdef char* a2 = sp.t2 if h.flip else sp.s2
    cdef char* b0 = sp.s0 if h.flip else sp.t0
    cdef char* b1 = sp.s1 if h.flip else sp.t1
    cdef char* b2 = sp.s2 if h.flip else sp.t2
    if sp.is_double:
        return _step_block(h, <double*>sp.p, <const double*>sp.g, <double*>a0, <double*>a1,
                           <double*>a2, <double*>b0, <double*>b1, <double*>b2,
                           <double*>sp.prev, start, stop)
    return _step_block(h, <float*>sp.p, <const float*>sp.g, <float*>a0, <float*>a1,
                       <float*>a2, <float*>b0, <float*>b1, <float*>b2, <float*>sp.prev,
                       start, stop)


cdef Py_ssize_t _plan_step(const OptimHyper* h, const OptimHyper* h_fresh, const Span* spans,
                           const Py_ssize_t* blocks, Py_ssize_t nblocks, Py_ssize_t fresh_from,
                           int nt) noexcept nogil:
    """`optim_step` over every span of a plan at once: one parallel loop over the blocks of
    all parameters (block b is elements [blocks[2b + 1], + BLOCK) of span blocks[2b]).
    Spans from `fresh_from` on take `h_fresh` (their state is new)."""
    cdef Py_ssize_t b, k, start, stop, bad = 0
    cdef const Span* sp
    cdef const OptimHyper* hh
    for b in prange(nblocks, nogil=True, schedule="dynamic", num_threads=nt,
                    use_threads_if=nt > 1):
        k = blocks[2 * b]
        start = blocks[2 * b + 1]
        sp = spans + k
        hh = h_fresh if k >= fresh_from else h
        stop = start + BLOCK if start + BLOCK < sp.n else sp.n
        bad += span_step(hh, sp, start, stop)
    return bad


# ---------------------------------------------------------------------------
# Python entry points.

cdef class Hyper:
    """The scalars of one update (see `OptimHyper`), made once per step for all parameters."""

    def __init__(self, int rule, *, double lr=0.0, double momentum=0.0, double dampening=0.0,
                 double alpha=0.0, double rho=0.0, double beta1=0.0, double beta2=0.0,
                 double bias_correction2_sqrt=1.0, double eps=0.0, double weight_decay=0.0,
                 double param_scale=1.0, bint nesterov=False, bint flip=False):
        self.h.rule = rule
        self.h.lr = lr
        self.h.momentum = momentum
        self.h.dampening = dampening
        self.h.alpha = alpha
        self.h.rho = rho
        self.h.beta1 = beta1
        self.h.beta2 = beta2
        self.h.bias_correction2_sqrt = bias_correction2_sqrt
        self.h.eps = eps
        self.h.weight_decay = weight_decay
        self.h.param_scale = param_scale
        self.h.nesterov = nesterov
        self.h.first = False
        self.h.flip = flip


cdef inline void* _data(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def step_into(Hyper hyper, cnp.ndarray param, cnp.ndarray grad, s0, s1, s2, prev, bint first,
              int n_threads):
    """p, states := rule(p, g, states) in place, on arrays the caller made; no checks.

    Contract: `param`, `grad` and the states given (None for a state the rule does not
    use) are C-contiguous float32 or float64 arrays of one shape and dtype; `prev` is None
    or a C-contiguous array like param, which receives param's values before the update.
    `first`: an SGD momentum buffer is new.

    Returns
    -------
    bool
        True when every updated value of param is finite.
    """
    cdef OptimHyper h = hyper.h
    cdef Py_ssize_t n = cnp.PyArray_SIZE(param), bad
    cdef void* p[6]
    p[:] = [_data(param), _data(grad), _data(s0), _data(s1), _data(s2), _data(prev)]
    h.first = first
    if n == 0:
        return True
    if cnp.PyArray_TYPE(param) == cnp.NPY_FLOAT:
        with nogil:
            bad = optim_step(&h, <float*>p[0], <const float*>p[1], <float*>p[2], <float*>p[3],
                             <float*>p[4], <float*>p[5], n, n_threads)
    else:
        with nogil:
            bad = optim_step(&h, <double*>p[0], <const double*>p[1], <double*>p[2],
                             <double*>p[3], <double*>p[4], <double*>p[5], n, n_threads)
    return bad == 0


cdef class Plan:
    """One update of many parameters as one kernel call: `run` steps every parameter in a
    single parallel loop over the blocks of all of them.

    Made once for a list of arrays that the caller made and checked, and kept while they
    stay the same: `params` and `grads` (C-contiguous float32 or float64, one shape and
    dtype per pair), `states` (per parameter a tuple of up to 3 arrays like it, or None
    for a state the rule does not use), `prevs` (per parameter None, or an array like it,
    which receives its values before each update) and `spares` (None: the states are
    updated in place; else per parameter a tuple of arrays like its states: an update
    reads the states from `states` and writes them to `spares`, or the other way round
    when its `Hyper` has ``flip``, so the states before the update stay whole, with no
    copy, for a caller that may take the update back). The plan holds references to the
    arrays.
    """
    def __cinit__(self, params, grads, states, prevs, spares=None):
        cdef Py_ssize_t k, start, n, b = 0
        self.n_spans = len(params)
        self.spans = <Span*>PyMem_Malloc(max(self.n_spans, 1) * sizeof(Span))
        if self.spans == NULL:
            raise MemoryError()
        self.arrays = (list(params), list(grads), [tuple(s) for s in states], list(prevs),
                       None if spares is None else [tuple(t) for t in spares])
        sizes = [cnp.PyArray_SIZE(<cnp.ndarray>p) for p in params]
        self.n_blocks = sum((n + BLOCK - 1) // BLOCK for n in sizes)
        self.total = sum(sizes)
        self.blocks = np.empty(2 * max(self.n_blocks, 1), dtype=np.intp)
        for k in range(self.n_spans):
            s = tuple(states[k]) + (None,) * (3 - len(states[k]))
            n = sizes[k]
            self.spans[k].p = <char*>_data(params[k])
            self.spans[k].g = <char*>_data(grads[k])
            self.spans[k].s0 = <char*>_data(s[0])
            self.spans[k].s1 = <char*>_data(s[1])
            self.spans[k].s2 = <char*>_data(s[2])
            t = s if spares is None else tuple(spares[k]) + (None,) * (3 - len(spares[k]))
            self.spans[k].t0 = <char*>_data(t[0])
            self.spans[k].t1 = <char*>_data(t[1])
            self.spans[k].t2 = <char*>_data(t[2])
            self.spans[k].prev = <char*>_data(prevs[k])
            self.spans[k].n = n
            self.spans[k].is_double = cnp.PyArray_TYPE(<cnp.ndarray>params[k]) == cnp.NPY_DOUBLE
            for start in range(0, n, BLOCK):
                self.blocks[2 * b] = k
                self.blocks[2 * b + 1] = start
                b += 1

    def __dealloc__(self):
        PyMem_Free(self.spans)

    def run(self, Hyper hyper, Py_ssize_t fresh_from, int n_threads):
        """Update every parameter in place and its state (in place, or into the spares:
        see the class); parameters from `fresh_from` on have new state (an SGD momentum
        buffer takes the gradient). Returns True when every updated parameter value is
        finite."""
        cdef OptimHyper h = hyper.h, h_fresh = hyper.h
        cdef Py_ssize_t bad
        cdef int nt = threads_for(self.total * RULE_WORK, n_threads)
        h.first = False
        h_fresh.first = True
        if self.n_blocks == 0:
            return True
        with nogil:
            bad = _plan_step(&h, &h_fresh, self.spans, &self.blocks[0], self.n_blocks,
                             fresh_from, nt)
        return bad == 0


def _run(Hyper hyper, param, grad, states, n_threads, required=0, first=False):
    """Check the arrays, then update param and the state buffers in place; the first
    `required` states must be arrays (the kernel writes them unconditionally)."""
    if not isinstance(param, np.ndarray):
        raise TypeError(f"param must be a numpy array, got {type(param).__name__}")
    if param.dtype not in FLOAT_DTYPES:
        raise TypeError(f"param has dtype {param.dtype}; fastnn computes in float32 or float64")
    check_out(param, "param", param.shape, param.dtype)
    grad = as_float_array(grad, "grad", dtype=param.dtype)
    if grad.shape != param.shape:
        raise ValueError(f"grad has shape {grad.shape} but param has shape {param.shape}")
    for name, s in states[:required]:
        if s is None:
            raise TypeError(f"{name} is required: an array like param")
    flat = [None if s is None else check_out(s, name, param.shape, param.dtype)
            for name, s in states]
    flat += [None] * (3 - len(flat))
    step_into(hyper, param, grad, *flat, None, first, resolve_threads(n_threads))


def sgd_step(param, grad, momentum_buffer=None, *, lr, momentum=0.0, dampening=0.0,
             nesterov=False, weight_decay=0.0, first=False, n_threads=None):
    """d := g + wd p; buf := momentum buf + (1 - dampening) d (buf := d when first);
    p := p - lr (d + momentum buf if nesterov else buf); p := p - lr d without a buffer.

    Parameters
    ----------
    param : ndarray of any shape, float32 or float64, C-contiguous; updated in place.
    grad : ndarray of param's shape and dtype
    momentum_buffer : ndarray like param, optional; updated in place. None: no momentum.
    lr, momentum, dampening, weight_decay : float
    nesterov : bool
    first : bool
        The buffer is new: it takes ``d`` as torch.optim.SGD does on its first step.
    """
    _run(Hyper(RULE_SGD, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
               weight_decay=weight_decay), param, grad, [("momentum_buffer", momentum_buffer)],
         n_threads, first=first)


def adagrad_step(param, grad, state_sum, *, lr, eps=1e-10, weight_decay=0.0, n_threads=None):
    """d := g + wd p; sum := sum + d^2; p := p - lr d / (sqrt(sum) + eps).

    Parameters
    ----------
    param : ndarray of any shape, float32 or float64, C-contiguous; updated in place.
    grad : ndarray of param's shape and dtype
    state_sum : ndarray like param; updated in place.
    lr : float
        The decayed learning rate of this step, ``lr / (1 + (t - 1) * lr_decay)``.
    eps, weight_decay : float
    """
    _run(Hyper(RULE_ADAGRAD, lr=lr, eps=eps, weight_decay=weight_decay), param, grad,
         [("state_sum", state_sum)], n_threads, required=1)


def rmsprop_step(param, grad, square_avg, grad_avg=None, momentum_buffer=None, *, lr,
                 alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, n_threads=None):
    """d := g + wd p; sq := alpha sq + (1 - alpha) d^2; ga := ga + (1 - alpha) (d - ga);
    r := d / (sqrt(sq - ga^2 if centered else sq) + eps); buf := momentum buf + r;
    p := p - lr (buf if momentum else r).

    Parameters
    ----------
    param : ndarray of any shape, float32 or float64, C-contiguous; updated in place.
    grad : ndarray of param's shape and dtype
    square_avg : ndarray like param; updated in place.
    grad_avg : ndarray like param, optional; updated in place. None: not centered.
    momentum_buffer : ndarray like param, optional; updated in place. None: no momentum.
    lr, alpha, eps, weight_decay, momentum : float
    """
    if momentum and momentum_buffer is None:
        raise ValueError("momentum > 0 needs a momentum_buffer")
    _run(Hyper(RULE_RMSPROP, lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
               momentum=momentum), param, grad,
         [("square_avg", square_avg), ("grad_avg", grad_avg), ("momentum_buffer", momentum_buffer)],
         n_threads, required=1)


def adadelta_step(param, grad, square_avg, acc_delta, *, lr=1.0, rho=0.9, eps=1e-6,
                  weight_decay=0.0, n_threads=None):
    """d := g + wd p; sq := rho sq + (1 - rho) d^2; u := sqrt(acc + eps) / sqrt(sq + eps) d;
    acc := rho acc + (1 - rho) u^2; p := p - lr u.

    Parameters
    ----------
    param : ndarray of any shape, float32 or float64, C-contiguous; updated in place.
    grad : ndarray of param's shape and dtype
    square_avg, acc_delta : ndarray like param; updated in place.
    lr, rho, eps, weight_decay : float
    """
    _run(Hyper(RULE_ADADELTA, lr=lr, rho=rho, eps=eps, weight_decay=weight_decay), param, grad,
         [("square_avg", square_avg), ("acc_delta", acc_delta)], n_threads, required=2)


def adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step_size, beta1,
              beta2, bias_correction2_sqrt, eps=1e-8, weight_decay=0.0, param_scale=1.0,
              n_threads=None):
    """p := param_scale p; d := g + wd p; m := m + (1 - beta1) (d - m);
    v := beta2 v + (1 - beta2) d^2; vmax := max(vmax, v);
    p := p - step_size m / (sqrt(vmax if amsgrad else v) / bias_correction2_sqrt + eps).

    Parameters
    ----------
    param : ndarray of any shape, float32 or float64, C-contiguous; updated in place.
    grad : ndarray of param's shape and dtype
    exp_avg, exp_avg_sq : ndarray like param; updated in place.
    max_exp_avg_sq : ndarray like param, optional; updated in place. None: no amsgrad.
    step_size : float
        ``lr / (1 - beta1**t)`` at step t (counted from 1).
    beta1, beta2, eps : float
    bias_correction2_sqrt : float
        ``sqrt(1 - beta2**t)``.
    weight_decay : float
        L2 penalty added to the gradient (Adam's form).
    param_scale : float
        Decoupled weight decay (AdamW's form): ``1 - lr * weight_decay``.
    """
    _run(Hyper(RULE_ADAM, lr=step_size, beta1=beta1, beta2=beta2,
               bias_correction2_sqrt=bias_correction2_sqrt, eps=eps, weight_decay=weight_decay,
               param_scale=param_scale), param, grad,
         [("exp_avg", exp_avg), ("exp_avg_sq", exp_avg_sq), ("max_exp_avg_sq", max_exp_avg_sq)],
         n_threads, required=2)
