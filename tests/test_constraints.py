import json

import numpy as np
import pytest

from fastnn import constraints as C


def test_max_norm_rescales_only_long_columns(dtype):
    w = np.array([[3.0, 0.6, 0.0], [4.0, 0.8, 0.0]], dtype=dtype)
    out = C.MaxNorm(2.0)(w)
    assert out is w and w.dtype == dtype
    np.testing.assert_allclose(w[:, 0], [1.2, 1.6], rtol=1e-6)
    np.testing.assert_array_equal(w[:, 1], np.array([0.6, 0.8], dtype=dtype))
    np.testing.assert_array_equal(w[:, 2], [0.0, 0.0])


def test_max_norm_axis_1_works_on_rows():
    w = np.array([[3.0, 4.0], [0.3, 0.4]])
    C.MaxNorm(1.0, axis=1)(w)
    np.testing.assert_allclose(w, [[0.6, 0.8], [0.3, 0.4]])


def test_max_norm_norms_after():
    w = np.random.default_rng(0).normal(size=(50, 20)) * np.linspace(0.1, 1.0, 20)
    before = np.linalg.norm(w, axis=0)
    C.MaxNorm(3.0)(w)
    after = np.linalg.norm(w, axis=0)
    np.testing.assert_allclose(after, np.minimum(before, 3.0), rtol=1e-12)
    assert (before > 3.0).any() and (before < 3.0).any()


def test_non_neg():
    w = np.array([[-1.0, 2.0], [0.5, -0.0]])
    assert C.NonNeg()(w) is w
    np.testing.assert_array_equal(w, [[0.0, 2.0], [0.5, 0.0]])


def test_unit_norm(dtype):
    w = np.array([[3.0, 0.0, 1e-3], [4.0, 0.0, 0.0]], dtype=dtype)
    assert C.UnitNorm()(w) is w
    np.testing.assert_allclose(w, [[0.6, 0.0, 1.0], [0.8, 0.0, 0.0]], rtol=1e-6)


def test_unit_norm_axis_1():
    w = np.random.default_rng(1).normal(size=(6, 9))
    C.UnitNorm(axis=1)(w)
    np.testing.assert_allclose(np.linalg.norm(w, axis=1), np.ones(6), rtol=1e-12)


def test_needs_a_float_array():
    with pytest.raises(TypeError, match="floating ndarray"):
        C.UnitNorm()([[1.0, 2.0]])
    with pytest.raises(TypeError, match="floating ndarray"):
        C.MaxNorm()(np.array([[1, 2]]))


def test_validation():
    with pytest.raises(ValueError, match="max_value"):
        C.MaxNorm(0.0)
    with pytest.raises(ValueError, match="axis"):
        C.UnitNorm(axis="rows")


@pytest.mark.parametrize("con", [C.MaxNorm(2.5, axis=1), C.MaxNorm(axis=[0, 1]), C.NonNeg(),
                                 C.UnitNorm(axis=0)], ids=lambda c: type(c).__name__)
def test_config_round_trip(con):
    rebuilt = C.get(json.loads(json.dumps(C.serialize(con))))
    assert type(rebuilt) is type(con)
    assert rebuilt.get_config() == con.get_config()
    w = np.random.default_rng(2).normal(size=(4, 3)) * 3
    np.testing.assert_array_equal(rebuilt(w.copy()), con(w.copy()))


def test_default_config():
    assert C.MaxNorm().get_config() == {"max_value": 3.0, "axis": 0}


@pytest.mark.parametrize("name, cls", [("max_norm", C.MaxNorm), ("maxnorm", C.MaxNorm),
                                       ("non_neg", C.NonNeg), ("nonneg", C.NonNeg),
                                       ("unit_norm", C.UnitNorm), ("unitnorm", C.UnitNorm)])
def test_registry_names(name, cls):
    assert type(C.get(name)) is cls


def test_get_none_instance_unknown():
    assert C.get(None) is None
    con = C.NonNeg()
    assert C.get(con) is con
    with pytest.raises(ValueError, match="valid names: .*max_norm.*unit_norm"):
        C.get("min_norm")
