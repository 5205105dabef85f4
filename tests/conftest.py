import numpy as np
import pytest

DTYPES = [np.float32, np.float64]
# Relative and absolute tolerances per dtype, for kernels held to their numpy twins.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-13}


def assert_close(actual, expected, dtype, scale=1.0):
    """assert_allclose with the per-dtype tolerances (times `scale` for long reductions)."""
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype] * scale, atol=ATOL[dtype] * scale)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def numeric_gradient(f, z, h=1e-6):
    """Central finite differences of the scalar f(z) with respect to every element of z."""
    grad = np.empty_like(z)
    for idx in np.ndindex(z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += h
        down[idx] -= h
        grad[idx] = (f(up) - f(down)) / (2 * h)
    return grad
