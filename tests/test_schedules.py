import json
import math

import pytest

from fastnn import schedules as S


def rates(schedule, steps):
    return [schedule(s, 0) for s in steps]


def test_inverse_time_decay():
    s = S.InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5)
    assert rates(s, [0, 5, 10, 30]) == pytest.approx([0.1, 0.08, 0.1 / 1.5, 0.04])
    st = S.InverseTimeDecay(0.1, decay_steps=10, decay_rate=0.5, staircase=True)
    assert rates(st, [0, 9, 10, 25]) == pytest.approx([0.1, 0.1, 0.1 / 1.5, 0.05])


def test_exponential_decay():
    s = S.ExponentialDecay(1.0, decay_steps=100, decay_rate=0.5)
    assert rates(s, [0, 50, 100, 300]) == pytest.approx([1.0, 0.5 ** 0.5, 0.5, 0.125])
    st = S.ExponentialDecay(1.0, decay_steps=100, decay_rate=0.5, staircase=True)
    assert rates(st, [0, 99, 100, 250]) == pytest.approx([1.0, 1.0, 0.5, 0.25])


def test_step_decay_counts_epochs():
    s = S.StepDecay(0.8, factor=0.5, every=3)
    assert S.StepDecay.unit == "epoch"
    assert [s(1000, e) for e in [0, 2, 3, 5, 6, 9]] == pytest.approx(
        [0.8, 0.8, 0.4, 0.4, 0.2, 0.1])
    assert s(0, 0) == s(10_000, 0) == 0.8


def test_piecewise_constant_decay():
    s = S.PiecewiseConstantDecay([100, 200], [1.0, 0.5, 0.1])
    assert rates(s, [0, 100, 101, 200, 201, 10_000]) == [1.0, 1.0, 0.5, 0.5, 0.1, 0.1]
    assert S.PiecewiseConstantDecay([], [0.3])(50) == 0.3


def test_polynomial_decay():
    s = S.PolynomialDecay(1.0, decay_steps=10, end_learning_rate=0.0, power=2.0)
    assert rates(s, [0, 5, 10, 20]) == pytest.approx([1.0, 0.25, 0.0, 0.0])
    lin = S.PolynomialDecay(0.5, decay_steps=4, end_learning_rate=0.1)
    assert rates(lin, [0, 1, 4, 8]) == pytest.approx([0.5, 0.4, 0.1, 0.1])


def test_polynomial_decay_cycle():
    s = S.PolynomialDecay(1.0, decay_steps=10, end_learning_rate=0.0, cycle=True)
    # horizon 10 until step 10, then 20 up to step 20, then 30...
    assert rates(s, [0, 5, 10, 11, 15, 20, 21]) == pytest.approx(
        [1.0, 0.5, 0.0, 1 - 11 / 20, 0.25, 0.0, 1 - 21 / 30])


def test_cosine_decay():
    s = S.CosineDecay(1.0, decay_steps=100, alpha=0.1)
    assert rates(s, [0, 50, 100, 500]) == pytest.approx([1.0, 0.55, 0.1, 0.1])
    plain = S.CosineDecay(2.0, decay_steps=60)
    assert plain(20) == pytest.approx(2.0 * 0.5 * (1 + math.cos(math.pi / 3)))


def test_cosine_decay_with_warmup():
    s = S.CosineDecay(0.0, decay_steps=100, warmup_target=1.0, warmup_steps=10)
    assert rates(s, [0, 5, 10, 60, 110, 1000]) == pytest.approx(
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0])
    immediate = S.CosineDecay(0.1, decay_steps=10, warmup_target=1.0)
    assert immediate(0) == pytest.approx(1.0)


def test_units():
    for cls in (S.InverseTimeDecay, S.ExponentialDecay, S.PiecewiseConstantDecay,
                S.PolynomialDecay, S.CosineDecay):
        assert cls.unit == "step"
    s = S.ExponentialDecay(1.0, 1, 0.5)
    assert s(2, 7) == pytest.approx(0.25)


@pytest.mark.parametrize("make, message", [
    (lambda: S.InverseTimeDecay(0.1, 0, 0.5), "decay_steps"),
    (lambda: S.ExponentialDecay(0.1, 10, 0.0), "decay_rate"),
    (lambda: S.ExponentialDecay(-0.1, 10, 0.5), "initial_learning_rate"),
    (lambda: S.StepDecay(0.1, every=0), "every"),
    (lambda: S.StepDecay(0.1, factor=0), "factor"),
    (lambda: S.PiecewiseConstantDecay([1, 2], [1.0, 0.5]), "one more"),
    (lambda: S.PiecewiseConstantDecay([2, 1], [1.0, 0.5, 0.1]), "increasing"),
    (lambda: S.PolynomialDecay(0.1, 10, power=0), "power"),
    (lambda: S.CosineDecay(0.1, 10, alpha=1.5), "alpha"),
    (lambda: S.CosineDecay(0.1, 10, warmup_steps=5), "warmup_target"),
])
def test_validation(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_negative_step_rejected():
    with pytest.raises(ValueError, match="step"):
        S.ExponentialDecay(1.0, 10, 0.5)(-1)


SCHEDULES = [
    S.InverseTimeDecay(0.1, 10, 0.5, staircase=True),
    S.ExponentialDecay(0.2, 100, 0.9),
    S.StepDecay(0.3, factor=0.2, every=4),
    S.PiecewiseConstantDecay([10, 20], [0.3, 0.2, 0.1]),
    S.PolynomialDecay(0.5, 40, end_learning_rate=0.01, power=0.5, cycle=True),
    S.CosineDecay(0.01, 50, alpha=0.2, warmup_target=0.1, warmup_steps=5),
]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_config_round_trip(schedule):
    rebuilt = S.get(json.loads(json.dumps(S.serialize(schedule))))
    assert type(rebuilt) is type(schedule)
    assert rebuilt.get_config() == schedule.get_config()
    assert [rebuilt(s, s // 3) for s in range(0, 120, 7)] == [
        schedule(s, s // 3) for s in range(0, 120, 7)]


CONFIG_OF = {type(s): s.get_config() for s in SCHEDULES}


@pytest.mark.parametrize("name, cls", [
    ("inverse_time_decay", S.InverseTimeDecay), ("inversetimedecay", S.InverseTimeDecay),
    ("exponential_decay", S.ExponentialDecay), ("step_decay", S.StepDecay),
    ("piecewise_constant_decay", S.PiecewiseConstantDecay),
    ("polynomial_decay", S.PolynomialDecay), ("CosineDecay", S.CosineDecay),
])
def test_registry_names(name, cls):
    assert type(S.get({"class_name": name, "config": CONFIG_OF[cls]})) is cls


def test_get_instance_and_unknown():
    s = SCHEDULES[0]
    assert S.get(s) is s
    with pytest.raises(ValueError, match="valid names: .*cosine_decay"):
        S.get({"class_name": "linear_decay", "config": {}})
