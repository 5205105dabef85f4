"""fastnn._validation: one rule for every scalar argument."""
import math

import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn._validation import check_choice, check_int, check_real

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize("closed, inside, outside", [
    ("both", [0.0, 0.5, 1.0], [-0.1, 1.1]),
    ("left", [0.0, 0.5], [1.0, -0.1]),
    ("right", [0.5, 1.0], [0.0, 1.1]),
    ("neither", [0.5], [0.0, 1.0]),
])
def test_check_real_interval_ends(closed, inside, outside):
    for x in inside:
        assert check_real(x, "x", 0.0, 1.0, closed=closed) == x
    for x in outside:
        with pytest.raises(ValueError, match="x must be a finite number in"):
            check_real(x, "x", 0.0, 1.0, closed=closed)


def test_check_real_infinities_nan_and_types():
    assert check_real(INF, "x", low=0.0, finite=False) == INF
    assert check_real(np.float32(2.5), "x") == 2.5 and check_real(3, "x") == 3.0
    assert type(check_real(np.float32(2.5), "x")) is float
    for bad in (INF, -INF, NAN):
        with pytest.raises(ValueError, match="finite"):
            check_real(bad, "x")
    with pytest.raises(ValueError):
        check_real(NAN, "x", finite=False)
    for bad in (True, "1", None, [1.0]):
        with pytest.raises(TypeError, match="x must be a real number"):
            check_real(bad, "x")
    with pytest.raises(ValueError, match="non-negative"):
        check_real(-1.0, "x", low=0.0)
    with pytest.raises(ValueError, match="positive"):
        check_real(0.0, "x", low=0.0, closed="neither")
    with pytest.raises(ValueError, match="closed"):
        check_real(1.0, "x", closed="open")


def test_check_int_and_check_choice():
    assert check_int(np.int64(3), "n", low=1) == 3 and type(check_int(np.int64(3), "n")) is int
    for bad in (0, 2.0, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="n must be an integer >= 1"):
            check_int(bad, "n", low=1)
    with pytest.raises(ValueError, match=r"in \[1, 4\)"):
        check_int(4, "n", 1, 4, closed="left")
    assert check_choice("b", "mode", ("a", "b")) == "b"
    with pytest.raises(ValueError, match="mode must be one of a, b; got 'c'"):
        check_choice("c", "mode", ("a", "b"))


@pytest.mark.parametrize("make", [
    lambda: fn.optimizers.Adam(lr=INF),
    lambda: fn.optimizers.SGD(momentum=INF),
    lambda: fn.optimizers.SGD(dampening=-INF),
    lambda: fn.optimizers.RMSprop(eps=NAN),
    lambda: fn.schedules.ExponentialDecay(INF, 10, 0.5),
    lambda: fn.initializers.RandomNormal(stddev=INF),
    lambda: fn.regularizers.L2(INF),
    lambda: fn.constraints.MaxNorm(INF),
    lambda: L.Dropout(NAN),
    lambda: L.BatchNormalization(eps=INF),
    lambda: fn.callbacks.ReduceLROnPlateau(factor=NAN),
    lambda: fn.pruning.ConstantSparsity(NAN),
])
def test_every_family_rejects_non_finite_numbers_alike(make):
    with pytest.raises(ValueError, match="must be .*finite.*, got (inf|-inf|nan)"):
        make()


def test_learning_rate_setter_and_clipping_reject_infinity():
    opt = fn.optimizers.SGD()
    with pytest.raises(ValueError, match="learning rate"):
        opt.learning_rate = INF
    with pytest.raises(ValueError, match="clipnorm"):
        fn.optimizers.clip_gradients([np.ones(2)], clipnorm=INF)
