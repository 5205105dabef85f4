"""Loss kernels: softmax cross-entropy from the logits, value and gradient in one pass.

The gradient with respect to the logits is ``(p * sum(t) - t) * w / n`` per row, with
``p`` the softmax the forward pass already computed, ``t`` the targets (one-hot rows of
integer labels, or given rows) and ``w`` the sample weight; the value is the weighted mean
of ``-sum_j t_j log_softmax(z)_j``, taken from the logits so that saturated outputs never
give inf or NaN. Rows are taken in order and the value is summed in float64, so the
result does not depend on threads.
"""
from cython cimport floating

cimport numpy as cnp

from libc.math cimport log

import numpy as np

from fastnn._kernels._checks import as_float_array, check_out

cnp.import_array()


cdef inline double _log(double x) noexcept nogil:
    return log(x)


cdef Py_ssize_t softmax_xent_rows(const floating* Z, const floating* P,
                                  const cnp.int64_t* labels, const floating* T, const double* w,
                                  floating* G, Py_ssize_t n, Py_ssize_t k, Py_ssize_t n_mean,
                                  double* value) noexcept nogil:
    """G := (P * sum(t) - t) * w / n_mean row by row over n rows, with t the one-hot row of
    `labels` (when not NULL) or the row of T; value := sum_i w_i (-sum_j t_ij
    log_softmax(Z)_ij), the sum over these rows (the loss of a batch of n_mean rows is the
    sum over all its rows divided by n_mean). w NULL: weights of 1. Returns -1, or the
    first row whose label is outside [0, k) (G and value are then not all written).

    log_softmax(z)_j = z_j - logsumexp(z), and logsumexp(z) = z_a - log(p_a) for a
    largest logit z_a, whose probability p_a is at least 1 / k: one log per row instead
    of an exp per logit, with no overflow for any finite logits.
    """
    cdef Py_ssize_t i, j, a
    cdef double total = 0, per, lse
    cdef floating s, tsum, one = 1
    cdef floating* g
    cdef const floating* p
    cdef const floating* z
    cdef const floating* t
    for i in range(n):
        g = G + i * k
        p = P + i * k
        z = Z + i * k
        a = 0
        for j in range(1, k):
            if z[j] > z[a]:
                a = j
        lse = <double>z[a] - _log(<double>p[a])
        s = <floating>((1.0 if w == NULL else w[i]) / n_mean)
        if labels != NULL:
            if labels[i] < 0 or labels[i] >= k:
                return i
            per = lse - <double>z[labels[i]]
            for j in range(k):
                g[j] = p[j] * s
            g[labels[i]] = (p[labels[i]] - one) * s
        else:
            t = T + i * k
            per = 0
            tsum = 0
            for j in range(k):
                per += <double>t[j] * (lse - <double>z[j])
                tsum = tsum + t[j]
            for j in range(k):
                g[j] = (p[j] * tsum - t[j]) * s
        total += per if w == NULL else per * w[i]
    value[0] = total
    return -1


cdef inline void* _data(object a) noexcept:
    return NULL if a is None else cnp.PyArray_DATA(<cnp.ndarray>a)


def softmax_xent_into(cnp.ndarray Z, cnp.ndarray P, labels, T, weights, cnp.ndarray G):
    """G := d loss / d Z; returns the loss (see `softmax_cross_entropy`). Unchecked: every
    array is C-contiguous and made by the caller; Z, P, T and G of one shape (n, k) and
    dtype (float32 or float64), `labels` int64 of shape (n,) or None, T None when labels
    are given, `weights` float64 of shape (n,) or None. A label outside [0, k) raises
    IndexError."""
    cdef Py_ssize_t n = cnp.PyArray_DIM(Z, 0), k = cnp.PyArray_DIM(Z, 1), bad
    cdef void* p[6]
    cdef double value = 0
    p[:] = [_data(Z), _data(P), _data(labels), _data(T), _data(weights), _data(G)]
    if n == 0 or k == 0:
        return 0.0
    if cnp.PyArray_TYPE(Z) == cnp.NPY_FLOAT:
        with nogil:
            bad = softmax_xent_rows(<const float*>p[0], <const float*>p[1],
                                    <const cnp.int64_t*>p[2], <const float*>p[3],
                                    <const double*>p[4], <float*>p[5], n, k, n, &value)
    else:
        with nogil:
            bad = softmax_xent_rows(<const double*>p[0], <const double*>p[1],
                                    <const cnp.int64_t*>p[2], <const double*>p[3],
                                    <const double*>p[4], <double*>p[5], n, k, n, &value)
    if bad >= 0:
        raise IndexError(f"label {labels[bad]} of row {bad} is outside [0, {k - 1}]")
    return value / n


def softmax_cross_entropy(logits, probs, labels=None, targets=None, weights=None, *, out=None):
    """loss := sum_i w_i (-sum_j t_ij log_softmax(z_i)_j) / n;  G := (p * sum(t) - t) w / n

    Parameters
    ----------
    logits : ndarray of shape (n, k), float32 or float64; sets the dtype
    probs : ndarray of shape (n, k), softmax(logits) as the forward pass made it
    labels : integer ndarray of shape (n,) with values in [0, k), optional
        The targets as class indices (t is their one-hot rows).
    targets : ndarray of shape (n, k), optional
        The targets as rows (one-hot or soft); exactly one of labels and targets.
    weights : ndarray of shape (n,), optional
        Per-sample weights (float64).
    out : ndarray of shape (n, k), optional
        Receives the gradient.

    Returns
    -------
    value : float
    grad : ndarray of shape (n, k), the gradient with respect to the logits
    """
    Z = as_float_array(logits, "logits", ndim=2)
    P = as_float_array(probs, "probs", dtype=Z.dtype, ndim=2)
    n, k = Z.shape
    if P.shape != Z.shape:
        raise ValueError(f"probs has shape {P.shape} but logits has shape {Z.shape}")
    if (labels is None) == (targets is None):
        raise ValueError("give exactly one of labels and targets")
    T = None
    if labels is not None:
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu" or labels.shape != (n,):
            raise ValueError(f"labels must be integers of shape ({n},), got {labels.dtype} "
                             f"{labels.shape}")
        labels = np.ascontiguousarray(labels, dtype=np.int64)
    else:
        T = as_float_array(targets, "targets", dtype=Z.dtype, ndim=2, cast=True)
        if T.shape != Z.shape:
            raise ValueError(f"targets has shape {T.shape} but logits has shape {Z.shape}")
    if weights is not None:
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        if weights.shape != (n,):
            raise ValueError(f"weights has shape {weights.shape}; expected ({n},)")
    G = check_out(out, "out", Z.shape, Z.dtype)
    return softmax_xent_into(Z, P, labels, T, weights, G), G
