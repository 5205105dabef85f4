import numpy as np
import pytest

from fastnn._kernels._finite import is_finite


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 3, 17, 1000])
def test_is_finite_finds_every_nan_and_infinity(dtype, n):
    x = np.linspace(-1, 1, n).astype(dtype)
    assert is_finite(x)
    for bad in (np.nan, np.inf, -np.inf):
        for pos in {0, n // 2, n - 1} if n else ():
            y = x.copy()
            y[pos] = bad
            assert not is_finite(y)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_is_finite_accepts_the_extremes(dtype):
    info = np.finfo(dtype)
    assert is_finite(np.array([info.max, -info.max, info.tiny, -0.0], dtype=dtype))


def test_is_finite_on_other_layouts_and_dtypes():
    x = np.ones((4, 6))
    x[1, 3] = np.nan
    assert not is_finite(x[:, 1::2])  # a strided view: numpy's path
    assert is_finite(x[:, ::2])
    assert not is_finite(np.asfortranarray(x))
    assert is_finite(np.arange(5))
    assert is_finite(np.ones(3, np.float16)) and not is_finite(np.array([np.inf], np.float16))
