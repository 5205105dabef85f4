import numpy as np
import pytest

from conftest import DTYPES, assert_close
from fastnn._kernels import optim as K
from fastnn._kernels.reference import optim as R

# (kernel name, state buffers to pass (None: left out), keyword arguments).
# Buffers: "any" holds values of either sign, "pos" non-negative values (squared averages).
CASES = {
    "sgd": ("sgd_step", [None], dict(lr=0.1)),
    "sgd_wd": ("sgd_step", [None], dict(lr=0.1, weight_decay=0.05)),
    "sgd_momentum_first": ("sgd_step", ["any"], dict(lr=0.1, momentum=0.9, first=True)),
    "sgd_momentum": ("sgd_step", ["any"], dict(lr=0.1, momentum=0.9, dampening=0.3,
                                               weight_decay=0.05)),
    "sgd_nesterov": ("sgd_step", ["any"], dict(lr=0.1, momentum=0.9, nesterov=True,
                                               weight_decay=0.05)),
    "adagrad": ("adagrad_step", ["pos"], dict(lr=0.05, eps=1e-10, weight_decay=0.05)),
    "rmsprop": ("rmsprop_step", ["pos", None, None], dict(lr=0.01, alpha=0.99, eps=1e-8)),
    "rmsprop_centered": ("rmsprop_step", ["pos", "avg", None],
                         dict(lr=0.01, alpha=0.9, eps=1e-8, weight_decay=0.05)),
    "rmsprop_momentum": ("rmsprop_step", ["pos", None, "any"],
                         dict(lr=0.01, alpha=0.99, eps=1e-8, momentum=0.5)),
    "rmsprop_centered_momentum": ("rmsprop_step", ["pos", "avg", "any"],
                                  dict(lr=0.01, alpha=0.9, eps=1e-8, momentum=0.5,
                                       weight_decay=0.05)),
    "adadelta": ("adadelta_step", ["pos", "pos"], dict(lr=1.0, rho=0.9, eps=1e-6,
                                                       weight_decay=0.05)),
    "adam": ("adam_step", ["any", "pos", None],
             dict(step_size=0.01, beta1=0.9, beta2=0.999, bias_correction2_sqrt=0.3, eps=1e-8)),
    "adam_amsgrad_l2": ("adam_step", ["any", "pos", "pos"],
                        dict(step_size=0.01, beta1=0.8, beta2=0.99, bias_correction2_sqrt=0.5,
                             eps=1e-8, weight_decay=0.05)),
    "adamw": ("adam_step", ["any", "pos", None],
              dict(step_size=0.01, beta1=0.9, beta2=0.999, bias_correction2_sqrt=0.3, eps=1e-8,
                   param_scale=1 - 0.01 * 0.1)),
}

SIZES = [1, 2, 7, 33, 4097]


def _arrays(case, shape, dtype, seed):
    """(param, grad, states) for a case, drawn so centered RMSprop's variance stays >= 0."""
    rng = np.random.default_rng(seed)
    _, kinds, _ = CASES[case]
    param = rng.standard_normal(shape).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    draw = {"any": lambda: rng.standard_normal(shape),
            "pos": lambda: rng.uniform(0.5, 1.0, shape),
            "avg": lambda: rng.uniform(-0.5, 0.5, shape)}
    states = [None if kind is None else draw[kind]().astype(dtype) for kind in kinds]
    return param, grad, states


def _run(module, case, param, grad, states, steps=3, **extra):
    """Copies of param and states after `steps` updates with the same gradient."""
    name, _, kwargs = CASES[case]
    param = param.copy()
    states = [None if s is None else s.copy() for s in states]
    for _ in range(steps):
        getattr(module, name)(param, grad, *states, **kwargs, **extra)
    return [param] + [s for s in states if s is not None]


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_kernel_matches_twin(case, size, dt):
    param, grad, states = _arrays(case, (size,), dt, seed=size)
    got = _run(K, case, param, grad, states)
    expected = _run(R, case, param, grad, states)
    for a, b in zip(got, expected):
        assert a.dtype == dt
        assert_close(a, b, dt, scale=10)
    assert not np.array_equal(got[0], param)


@pytest.mark.parametrize("case", sorted(CASES))
def test_kernel_on_2d_parameter(case):
    param, grad, states = _arrays(case, (3, 5), np.float64, seed=1)
    got = _run(K, case, param, grad, states)
    expected = _run(R, case, param, grad, states)
    for a, b in zip(got, expected):
        assert a.shape == (3, 5)
        assert_close(a, b, np.float64)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_threads_bitwise_equal(case, dt):
    param, grad, states = _arrays(case, (600_003,), dt, seed=2)  # enough work for 2 threads
    one = _run(K, case, param, grad, states, steps=2, n_threads=1)
    two = _run(K, case, param, grad, states, steps=2, n_threads=2)
    for a, b in zip(one, two):
        assert np.array_equal(a, b)


@pytest.mark.skipif(not K.FLUSHES_SUBNORMALS, reason="subnormals are kept on this CPU")
@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_subnormal_state_counts_as_zero(case, dt):
    # A zero gradient on states a few times the smallest normal: a moment decaying
    # towards zero becomes zero instead of a subnormal, in the kernel as in its twin.
    param, _, states = _arrays(case, (257,), dt, seed=3)
    tiny = np.finfo(dt).tiny
    states = [None if s is None else (s * (4 * tiny)).astype(dt) for s in states]
    grad = np.zeros_like(param)
    got = _run(K, case, param, grad, states, steps=40)
    expected = _run(R, case, param, grad, states, steps=40)
    for a, b in zip(got, expected):
        assert not np.any((a != 0) & (np.abs(a) < tiny))
        assert_close(a, b, dt, scale=10)
    moments = [s for s, kind in zip(got[1:], [k for k in CASES[case][1] if k is not None])
               if kind == "any"]
    for m in moments:  # without weight decay, momentum-like states decay to exactly zero
        assert CASES[case][2].get("weight_decay") or not np.any(m)


def test_sgd_first_step_buffer_takes_gradient():
    p = np.array([1.0, -2.0])
    g = np.array([0.5, 0.25])
    buf = np.full(2, 7.0)
    K.sgd_step(p, g, buf, lr=0.1, momentum=0.9, dampening=0.5, weight_decay=0.1, first=True)
    d = g + 0.1 * np.array([1.0, -2.0])
    np.testing.assert_array_equal(buf, d)
    np.testing.assert_allclose(p, np.array([1.0, -2.0]) - 0.1 * d, rtol=1e-15)


def test_adam_first_step_by_hand():
    p = np.array([1.0, -1.0, 0.0])
    g = np.array([2.0, -0.5, 1e-3])
    m, v = np.zeros(3), np.zeros(3)
    lr, b1, b2 = 0.1, 0.9, 0.999
    K.adam_step(p, g, m, v, step_size=lr / (1 - b1), beta1=b1, beta2=b2,
                bias_correction2_sqrt=(1 - b2) ** 0.5, eps=0.0)
    # On the first step the bias-corrected update is lr * sign(g).
    np.testing.assert_allclose(p, [0.9, -0.9, -0.1], rtol=1e-12)
    np.testing.assert_allclose(m, 0.1 * g, rtol=1e-15)
    np.testing.assert_allclose(v, 0.001 * g * g, rtol=1e-12)


def test_empty_parameter_is_a_no_op():
    p = np.empty((0, 3))
    K.adam_step(p, np.empty((0, 3)), np.empty((0, 3)), np.empty((0, 3)), step_size=0.1,
                beta1=0.9, beta2=0.999, bias_correction2_sqrt=0.1)
    assert p.shape == (0, 3)


def test_integer_gradient_is_converted():
    p = np.zeros(3, dtype=np.float32)
    K.sgd_step(p, np.array([1, 2, 3]), lr=0.5)
    np.testing.assert_array_equal(p, np.array([-0.5, -1.0, -1.5], dtype=np.float32))


@pytest.mark.parametrize("call, error", [
    (lambda p, g, s: K.sgd_step(p, g[:2], lr=0.1), ValueError),
    (lambda p, g, s: K.sgd_step(p, g.astype(np.float32), lr=0.1), TypeError),
    (lambda p, g, s: K.sgd_step(p.astype(np.int64), g, lr=0.1), TypeError),
    (lambda p, g, s: K.sgd_step(list(p), g, lr=0.1), TypeError),
    (lambda p, g, s: K.sgd_step(np.zeros((3, 2))[:, 0], g, lr=0.1), ValueError),
    (lambda p, g, s: K.adagrad_step(p, g, s[:2], lr=0.1), ValueError),
    (lambda p, g, s: K.adagrad_step(p, g, s.astype(np.float32), lr=0.1), TypeError),
    (lambda p, g, s: K.sgd_step(p, g, lr=0.1, n_threads=0), ValueError),
])
def test_bad_arguments_raise(call, error):
    p, g, s = np.zeros(3), np.ones(3), np.ones(3)
    with pytest.raises(error):
        call(p, g, s)


def test_read_only_parameter_raises():
    p = np.zeros(3)
    p.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        K.sgd_step(p, np.ones(3), lr=0.1)


def test_required_state_must_be_given():
    p, g = np.ones(5), np.ones(5)
    with pytest.raises(TypeError, match="state_sum is required"):
        K.adagrad_step(p, g, None, lr=0.1)
    with pytest.raises(TypeError, match="square_avg is required"):
        K.rmsprop_step(p, g, None, lr=0.1)
    with pytest.raises(ValueError, match="momentum_buffer"):
        K.rmsprop_step(p, g, np.zeros(5), lr=0.1, momentum=0.9)
    with pytest.raises(TypeError, match="acc_delta is required"):
        K.adadelta_step(p, g, np.zeros(5), None)
    with pytest.raises(TypeError, match="exp_avg is required"):
        K.adam_step(p, g, None, None, step_size=0.1, beta1=0.9, beta2=0.99,
                    bias_correction2_sqrt=0.1)


# -- Plan: one call over many parameters ------------------------------------------------------
def _hyper(case):
    """The case's Hyper and whether its state is new, as the public entry points make them."""
    name, _, kwargs = CASES[case]
    kwargs = dict(kwargs)
    first = kwargs.pop("first", False)
    if "step_size" in kwargs:
        kwargs["lr"] = kwargs.pop("step_size")
    return K.Hyper(K.RULES[name[:-len("_step")]], **kwargs), first


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("spare", [False, True])
def test_plan_equals_one_call_per_parameter(case, n_threads, spare):
    # several blocks and a ragged last one; float32 and float64 parameters in one plan
    shapes, dtypes = [(4097,), (3, 1), (70, 130)], [np.float32, np.float64, np.float32]
    arrays = [_arrays(case, s, dt, seed) for seed, (s, dt) in enumerate(zip(shapes, dtypes))]
    want = [_run(K, case, p, g, st, steps=1) for p, g, st in arrays]
    params = [p.copy() for p, _, _ in arrays]
    states = [tuple(None if s is None else s.copy() for s in st) for _, _, st in arrays]
    spares = [tuple(None if s is None else np.full_like(s, np.nan) for s in st)
              for st in states] if spare else None
    prevs = [np.full(p.size, np.nan, p.dtype) for p in params]
    hyper, first = _hyper(case)
    plan = K.Plan(params, [g for _, g, _ in arrays], states, prevs, spares)
    assert plan.run(hyper, 0 if first else len(params), n_threads)
    for k, (param, prev, (p0, _, st0), expected) in enumerate(zip(params, prevs, arrays, want)):
        # with spares the new state is there and the old one stays whole
        new = spares[k] if spare else states[k]
        for got, value in zip([param] + [s for s in new if s is not None], expected):
            np.testing.assert_array_equal(got, value)
        if spare:
            for got, value in zip(states[k], st0):
                if value is not None:
                    np.testing.assert_array_equal(got, value)
        np.testing.assert_array_equal(prev, p0.reshape(-1))  # the parameter before the update


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_flipped_plan_reads_its_spares_and_writes_its_states(case):
    p, g, st = _arrays(case, (300,), np.float32, 3)
    want = _run(K, case, p, g, st, steps=1)
    name, _, kwargs = CASES[case]
    kwargs = {("lr" if k == "step_size" else k): v for k, v in kwargs.items() if k != "first"}
    first = CASES[case][2].get("first", False)
    param = p.copy()
    spares = tuple(None if s is None else s.copy() for s in st)
    states = tuple(None if s is None else np.full_like(s, np.nan) for s in st)
    plan = K.Plan([param], [g], [states], [None], [spares])
    assert plan.run(K.Hyper(K.RULES[name[:-len("_step")]], flip=True, **kwargs),
                    0 if first else 1, 1)
    for got, value in zip([param] + [s for s in states if s is not None], want):
        np.testing.assert_array_equal(got, value)


def test_plan_reports_a_non_finite_parameter():
    params = [np.ones(5000, np.float32), np.ones(3, np.float32)]
    grads = [np.ones(5000, np.float32), np.array([1.0, -4.0, 1.0], np.float32)]
    plan = K.Plan(params, grads, [(), ()], [None, None])
    assert plan.run(K.Hyper(K.RULES["sgd"], lr=1.0), 2, 2)
    with np.errstate(over="ignore"):  # the second parameter overflows, the first does not
        assert not plan.run(K.Hyper(K.RULES["sgd"], lr=float(np.finfo(np.float32).max)), 2, 2)
    assert np.all(np.isfinite(params[0])) and np.isinf(params[1][1])
