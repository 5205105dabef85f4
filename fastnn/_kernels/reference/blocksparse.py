"""Numpy twins of the block-sparse kernel and its format."""
import numpy as np

from fastnn._kernels.reference import activations as ref_act


def bsr_from_dense(W, block):
    """(indptr, indices, values) of W in blocks of `block` consecutive outputs, block
    column by block column, each column's input rows ascending; padded with zeros."""
    W = np.asarray(W)
    n_in, n_out = W.shape
    n_cols = -(-n_out // block)
    indptr, indices, values = [0], [], []
    for c in range(n_cols):
        for i in range(n_in):
            chunk = W[i, c * block:(c + 1) * block]
            if np.any(chunk != 0):
                indices.append(i)
                values.append(np.concatenate([chunk, np.zeros(block - chunk.size, W.dtype)]))
        indptr.append(len(indices))
    return (np.array(indptr, dtype=np.int64), np.array(indices, dtype=np.int64),
            np.array(values, dtype=W.dtype).reshape(-1, block))


def dense_from_bsr(indptr, indices, values, n_in, n_out):
    """W of shape (n_in, n_out) from its block-sparse arrays."""
    block = values.shape[1]
    W = np.zeros((n_in, (len(indptr) - 1) * block), dtype=values.dtype)
    for c in range(len(indptr) - 1):
        for k in range(indptr[c], indptr[c + 1]):
            W[indices[k], c * block:(c + 1) * block] = values[k]
    return W[:, :n_out]


def forward(X, indptr, indices, values, n_out, b, activation, alpha=None):
    """act(X @ W + b) with W = dense_from_bsr(indptr, indices, values)."""
    Z = X @ dense_from_bsr(indptr, indices, values, X.shape[1], n_out)
    if b is not None:
        Z = Z + b
    return ref_act.forward(activation, Z, alpha)
