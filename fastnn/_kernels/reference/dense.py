"""Numpy twins of the dense kernels."""
from fastnn._kernels.reference import activations as ref_act


def forward(X, W, b, activation, alpha=None):
    """(Y, Z) with Z = X @ W + b and Y = act(Z)."""
    Z = X @ W
    if b is not None:
        Z = Z + b
    return ref_act.forward(activation, Z, alpha), Z


def backward(dY, X, W, Z, activation, alpha=None):
    """(dX, dW, db) for Y = act(X @ W + b)."""
    dZ = ref_act.backward(activation, dY, Z, alpha)
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)
