import json
import math

import numpy as np
import pytest

from conftest import numeric_gradient
from fastnn import regularizers as R

W = np.array([[1.0, -2.0], [0.0, 3.0]])


@pytest.mark.parametrize("reg, expected", [
    (R.L1(0.1), 0.1 * 6),
    (R.L2(0.01), 0.01 * 14),
    (R.L1L2(l1=0.1, l2=0.01), 0.1 * 6 + 0.01 * 14),
    (R.L1L2(), 0.0),
    (R.GroupLasso(0.5), 0.5 * (1.0 + math.sqrt(13.0))),
])
def test_penalty_by_hand(reg, expected):
    assert reg.penalty(W) == pytest.approx(expected, rel=1e-12)
    assert isinstance(reg.penalty(W), float)


def test_group_lasso_of_1d_is_its_norm():
    assert R.GroupLasso(2.0).penalty(np.array([3.0, 4.0])) == pytest.approx(10.0)


def test_gradients_by_hand():
    np.testing.assert_array_equal(R.L1(0.1).gradient(W), 0.1 * np.array([[1, -1], [0, 1]]))
    np.testing.assert_allclose(R.L2(0.01).gradient(W), 0.02 * W)
    g = R.GroupLasso(0.5).gradient(W)
    np.testing.assert_allclose(g, 0.5 * np.array([[1.0, -2.0 / math.sqrt(13)],
                                                  [0.0, 3.0 / math.sqrt(13)]]))


def test_group_lasso_zero_column_has_zero_gradient():
    w = np.array([[0.0, 1.0], [0.0, -1.0]])
    g = R.GroupLasso(1.0).gradient(w)
    np.testing.assert_array_equal(g[:, 0], [0.0, 0.0])
    np.testing.assert_allclose(g[:, 1], [1 / math.sqrt(2), -1 / math.sqrt(2)])


def away_from_zero(shape, seed=0):
    w = np.random.default_rng(seed).normal(size=shape)
    return w + 0.2 * np.sign(w)


@pytest.mark.parametrize("reg", [R.L1(0.3), R.L2(0.2), R.L1L2(0.1, 0.4), R.GroupLasso(0.7)],
                         ids=lambda r: type(r).__name__)
@pytest.mark.parametrize("shape", [(5, 3), (7,), (1, 4)])
def test_gradient_matches_finite_differences(reg, shape):
    w = away_from_zero(shape)
    numeric = numeric_gradient(lambda: reg.penalty(w), w, 1e-6)
    np.testing.assert_allclose(reg.gradient(w), numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("reg", [R.L1L2(0.1, 0.2), R.GroupLasso(0.5)],
                         ids=lambda r: type(r).__name__)
def test_gradient_keeps_dtype_and_shape(reg):
    w = away_from_zero((4, 3)).astype(np.float32)
    g = reg.gradient(w)
    assert g.dtype == np.float32 and g.shape == w.shape
    np.testing.assert_allclose(g, reg.gradient(w.astype(np.float64)), rtol=1e-6)


@pytest.mark.parametrize("reg", [R.L1(0.2), R.L2(0.3), R.L1L2(0.1, 0.05), R.GroupLasso(0.4)],
                         ids=lambda r: type(r).__name__)
def test_config_round_trip(reg):
    rebuilt = R.get(json.loads(json.dumps(R.serialize(reg))))
    assert type(rebuilt) is type(reg)
    assert rebuilt.get_config() == reg.get_config()
    assert rebuilt.penalty(W) == reg.penalty(W)


def test_configs_hold_only_their_arguments():
    assert R.L1().get_config() == {"l1": 0.01}
    assert R.L2().get_config() == {"l2": 0.01}
    assert R.L1L2().get_config() == {"l1": 0.0, "l2": 0.0}
    assert R.GroupLasso().get_config() == {"g": 0.01}


@pytest.mark.parametrize("name, cls", [("l1", R.L1), ("l2", R.L2), ("l1l2", R.L1L2),
                                       ("l1_l2", R.L1L2), ("group_lasso", R.GroupLasso),
                                       ("grouplasso", R.GroupLasso), ("L2", R.L2)])
def test_registry_names(name, cls):
    assert type(R.get(name)) is cls


def test_get_none_instance_unknown():
    assert R.get(None) is None
    reg = R.L2()
    assert R.get(reg) is reg
    with pytest.raises(ValueError, match="valid names: .*group_lasso.*l1"):
        R.get("l3")


@pytest.mark.parametrize("make", [lambda: R.L1(-0.1), lambda: R.L2(float("nan")),
                                  lambda: R.L1L2(l2=-1.0), lambda: R.GroupLasso(-0.5)])
def test_negative_or_nan_coefficient_rejected(make):
    with pytest.raises(ValueError, match="non-negative"):
        make()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reg", [R.L1(0.2), R.L2(0.3), R.L1L2(0.1, 0.05), R.GroupLasso(0.4)],
                         ids=lambda r: type(r).__name__)
def test_add_gradient_adds_the_gradient_in_place(reg, dtype):
    w = away_from_zero((4, 3)).astype(dtype)
    out = np.arange(12, dtype=dtype).reshape(4, 3)
    expected = out + reg.gradient(w)
    reg.add_gradient(w, out)
    assert out.dtype == dtype
    np.testing.assert_allclose(out, expected, rtol={np.float32: 1e-6, np.float64: 1e-12}[dtype])


def test_l2_penalty_of_float32_weights_is_close_to_float64():
    w = np.random.default_rng(0).normal(size=(256, 128)).astype(np.float32)
    assert R.L2(0.01).penalty(w) == pytest.approx(
        0.01 * float(np.square(w.astype(np.float64)).sum()), rel=1e-5)
