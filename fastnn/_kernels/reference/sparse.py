"""Numpy/scipy twins of the sparse kernels."""
import numpy as np
import scipy.sparse as sp

from fastnn._kernels.reference import activations as ref_act


def csr_from_dense(W):
    """(indptr, indices, data) of W.T in CSR, keeping W's nonzero entries."""
    m = sp.csr_matrix(np.asarray(W).T)
    m.sort_indices()
    return m.indptr.astype(np.int64), m.indices, m.data


def _matrix(indptr, indices, data, n_in):
    return sp.csr_matrix((data, indices.astype(np.int64), indptr), shape=(len(indptr) - 1, n_in))


def forward(X, indptr, indices, data, b, activation, alpha=None):
    """act(X @ W + b) with W.T = csr(indptr, indices, data) of shape (n_out, n_in)."""
    Z = (_matrix(indptr, indices, data, X.shape[1]) @ X.T).T
    if b is not None:
        Z = Z + b
    return ref_act.forward(activation, np.asarray(Z), alpha)


def forward_t(XT, indptr, indices, data, b, activation, alpha=None):
    """act(W.T @ XT + b[:, None]), elementwise; prelu's alpha has one slope per row of W.T."""
    Z = np.asarray(_matrix(indptr, indices, data, XT.shape[0]) @ XT)
    if b is not None:
        Z = Z + b[:, None]
    if activation == "prelu":
        return np.where(Z > 0, Z, np.asarray(alpha)[:, None] * Z)
    return ref_act.forward(activation, Z, alpha)
