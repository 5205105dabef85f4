import json
import math

import numpy as np
import pytest

from fastnn import initializers as I

SHAPE = (400, 200)  # fan_in 400, fan_out 200, fan_avg 300
FANS = {"fan_in": 400, "fan_out": 200, "fan_avg": 300}
TRUNC = 0.87962566103423978

ALL_CLASSES = [I.Zeros, I.Ones, I.Constant, I.RandomNormal, I.RandomUniform,
               I.TruncatedNormal, I.VarianceScaling, I.GlorotUniform, I.GlorotNormal,
               I.HeUniform, I.HeNormal, I.LecunUniform, I.LecunNormal]


def draw(init, shape=SHAPE, dtype="float64", seed=0):
    return init(shape, dtype=dtype, rng=np.random.default_rng(seed))


def assert_moments(w, mean, var):
    n = w.size
    assert abs(w.mean() - mean) < 4 * math.sqrt(var / n)
    assert w.var() == pytest.approx(var, rel=0.03)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["truncated_normal", "untruncated_normal", "uniform"])
def test_variance_scaling_variance_is_scale_over_n(mode, distribution):
    w = draw(I.VarianceScaling(scale=2.5, mode=mode, distribution=distribution))
    assert_moments(w, 0.0, 2.5 / FANS[mode])


@pytest.mark.parametrize("cls, scale, mode", [
    (I.GlorotUniform, 1.0, "fan_avg"), (I.GlorotNormal, 1.0, "fan_avg"),
    (I.HeUniform, 2.0, "fan_in"), (I.HeNormal, 2.0, "fan_in"),
    (I.LecunUniform, 1.0, "fan_in"), (I.LecunNormal, 1.0, "fan_in"),
])
def test_named_variance_scaling(cls, scale, mode):
    w = draw(cls())
    assert_moments(w, 0.0, scale / FANS[mode])
    limit = math.sqrt(scale / FANS[mode])
    if cls.__name__.endswith("Uniform"):
        limit *= math.sqrt(3.0)
    else:
        limit *= 2.0 / TRUNC
    assert np.abs(w).max() <= limit
    assert np.abs(w).max() > 0.98 * limit


def test_truncated_variance_scaling_bounds_and_untruncated_exceeds_them():
    bound = 2.0 * math.sqrt(1.0 / 400) / TRUNC
    w = draw(I.VarianceScaling(distribution="truncated_normal"))
    assert np.abs(w).max() <= bound
    u = draw(I.VarianceScaling(distribution="untruncated_normal"))
    assert np.abs(u).max() > bound


def test_fans_of_1d_and_nd_shapes():
    assert I.compute_fans((7,)) == (7, 7)
    assert I.compute_fans((5, 3)) == (5, 3)
    assert I.compute_fans((3, 3, 4, 8)) == (36, 72)
    assert I.compute_fans(()) == (1, 1)
    w = draw(I.VarianceScaling(scale=3.0, distribution="uniform"), shape=(100_000,))
    assert_moments(w, 0.0, 3.0 / 100_000)


def test_random_normal_and_uniform_moments():
    assert_moments(draw(I.RandomNormal(mean=0.5, stddev=0.2)), 0.5, 0.04)
    w = draw(I.RandomUniform(minval=-1.0, maxval=3.0))
    assert_moments(w, 1.0, 16.0 / 12.0)
    assert w.min() >= -1.0 and w.max() < 3.0


def test_truncated_normal_bounds_and_variance():
    w = draw(I.TruncatedNormal(mean=1.0, stddev=0.5))
    assert w.min() >= 0.0 and w.max() <= 2.0
    assert w.min() < 0.02 and w.max() > 1.98
    assert_moments(w, 1.0, (0.5 * TRUNC) ** 2)


def test_constants():
    assert np.array_equal(I.Zeros()((2, 3)), np.zeros((2, 3)))
    assert np.array_equal(I.Ones()((4,)), np.ones(4))
    assert np.array_equal(I.Constant(0.25)((2, 2)), np.full((2, 2), 0.25))


def test_same_generator_seed_gives_same_values():
    init = I.HeNormal()
    a, b = draw(init, (20, 30), seed=3), draw(init, (20, 30), seed=3)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, draw(init, (20, 30), seed=4))


@pytest.mark.parametrize("cls", ALL_CLASSES)
def test_dtype_and_shape_honoured(cls, dtype):
    w = draw(cls(), shape=(6, 5), dtype=dtype)
    assert w.dtype == dtype and w.shape == (6, 5)
    w64 = draw(cls(), shape=(6, 5), dtype=np.float64)
    np.testing.assert_allclose(w, w64.astype(dtype), rtol=0, atol=0)


def test_int_shape_and_bad_arguments():
    assert I.Ones()(3).shape == (3,)
    with pytest.raises(ValueError, match="floating"):
        I.Ones()((2,), dtype="int32")
    with pytest.raises(ValueError, match="shape"):
        I.Ones()((2, -1))
    with pytest.raises(TypeError, match="Generator"):
        I.Ones()((2,), rng=0)


def test_new_array_each_call():
    init = I.Constant(1.0)
    a = init((3,))
    a[0] = 5.0
    assert init((3,))[0] == 1.0


@pytest.mark.parametrize("kwargs, message", [
    ({"mode": "fan_sum"}, "fan_in, fan_out, fan_avg"),
    ({"distribution": "normal"}, "truncated_normal, untruncated_normal, uniform"),
    ({"scale": -1.0}, "scale"),
    ({"scale": 0.0}, "scale"),
])
def test_variance_scaling_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        I.VarianceScaling(**kwargs)


def test_other_validation():
    with pytest.raises(ValueError, match="stddev"):
        I.RandomNormal(stddev=-0.1)
    with pytest.raises(ValueError, match="maxval"):
        I.RandomUniform(minval=1.0, maxval=0.0)
    with pytest.raises(TypeError):
        I.Constant("a")


CONFIGURED = [I.Zeros(), I.Ones(), I.Constant(0.3), I.RandomNormal(0.1, 0.2),
              I.RandomUniform(-2.0, 1.0), I.TruncatedNormal(0.5, 0.1),
              I.VarianceScaling(3.0, "fan_out", "uniform"), I.GlorotUniform(),
              I.GlorotNormal(), I.HeUniform(), I.HeNormal(), I.LecunUniform(),
              I.LecunNormal()]


@pytest.mark.parametrize("init", CONFIGURED, ids=lambda i: type(i).__name__)
def test_config_round_trip(init):
    blob = json.loads(json.dumps(I.serialize(init)))
    rebuilt = I.get(blob)
    assert type(rebuilt) is type(init)
    assert rebuilt.get_config() == init.get_config()
    assert np.array_equal(draw(rebuilt, (5, 4), seed=1), draw(init, (5, 4), seed=1))


def test_named_config_is_empty():
    assert I.HeNormal().get_config() == {}
    assert I.Zeros().get_config() == {}
    assert I.VarianceScaling().get_config() == {
        "scale": 1.0, "mode": "fan_in", "distribution": "truncated_normal"}


@pytest.mark.parametrize("name, cls", [
    ("zeros", I.Zeros), ("ones", I.Ones), ("constant", I.Constant),
    ("random_normal", I.RandomNormal), ("random_uniform", I.RandomUniform),
    ("truncated_normal", I.TruncatedNormal), ("variance_scaling", I.VarianceScaling),
    ("glorot_uniform", I.GlorotUniform), ("glorot_normal", I.GlorotNormal),
    ("xavier_uniform", I.GlorotUniform), ("xavier_normal", I.GlorotNormal),
    ("he_uniform", I.HeUniform), ("he_normal", I.HeNormal),
    ("lecun_uniform", I.LecunUniform), ("lecun_normal", I.LecunNormal),
    ("HeUniform", I.HeUniform), ("variancescaling", I.VarianceScaling),
])
def test_registry_names(name, cls):
    assert type(I.get(name)) is cls


def test_get_number_instance_and_unknown():
    c = I.get(0.25)
    assert isinstance(c, I.Constant) and c.value == 0.25
    assert type(I.get(1)) is I.Constant and I.get(1).value == 1.0
    init = I.HeNormal()
    assert I.get(init) is init
    with pytest.raises(ValueError, match="valid names: .*glorot_uniform.*he_normal"):
        I.get("kaiming")
    with pytest.raises(TypeError):
        I.get(True)
