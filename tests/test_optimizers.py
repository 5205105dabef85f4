import json

import numpy as np
import pytest

from fastnn import optimizers as O

SHAPES = [(3, 4), (5,), (1,)]
STEPS = 5

# (class name, constructor arguments): torch.optim takes the same arguments.
TORCH_CASES = [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.1, momentum=0.9)),
    ("SGD", dict(lr=0.1, momentum=0.9, dampening=0.3, weight_decay=0.05)),
    ("SGD", dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.05)),
    ("Adagrad", dict()),
    ("Adagrad", dict(lr=0.1, lr_decay=0.1, weight_decay=0.05, initial_accumulator_value=0.2,
                     eps=1e-6)),
    ("RMSprop", dict()),
    ("RMSprop", dict(centered=True)),
    ("RMSprop", dict(momentum=0.5)),
    ("RMSprop", dict(lr=0.02, alpha=0.9, centered=True, momentum=0.5, weight_decay=0.05)),
    ("Adadelta", dict()),
    ("Adadelta", dict(lr=0.5, rho=0.8, eps=1e-5, weight_decay=0.05)),
    ("Adam", dict()),
    ("Adam", dict(lr=0.05, betas=(0.8, 0.99), amsgrad=True, weight_decay=0.05)),
    ("AdamW", dict()),
    ("AdamW", dict(lr=0.05, amsgrad=True, weight_decay=0.1)),
]
CASE_IDS = [f"{name}-{'-'.join(sorted(kw)) or 'defaults'}" for name, kw in TORCH_CASES]


def _problem(dtype, seed=0):
    """Parameters and a fixed sequence of gradients; scaled so amsgrad's max is exercised."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[(rng.standard_normal(s) * (3.0 if k == 1 else 1.0)).astype(dtype) for s in SHAPES]
             for k in range(STEPS)]
    return params, grads


def _torch_run(torch, name, kwargs, params, grads, lrs=None):
    """torch.optim's parameters after each step, as numpy arrays."""
    tparams = [torch.nn.Parameter(torch.tensor(p.copy())) for p in params]
    opt = getattr(torch.optim, name)(tparams, **kwargs)
    history = []
    for k, gs in enumerate(grads):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = lrs[k]
        for t, g in zip(tparams, gs):
            t.grad = torch.tensor(g.copy())
        opt.step()
        history.append([t.detach().numpy().copy() for t in tparams])
    return history


@pytest.mark.parametrize("name, kwargs", TORCH_CASES, ids=CASE_IDS)
def test_matches_torch_float64(name, kwargs):
    torch = pytest.importorskip("torch")
    params, grads = _problem(np.float64)
    expected = _torch_run(torch, name, kwargs, params, grads)
    opt = getattr(O, name)(**kwargs)
    for k, gs in enumerate(grads):
        opt.step(params, [g.copy() for g in gs])
        for p, e in zip(params, expected[k]):
            np.testing.assert_allclose(p, e, rtol=1e-10, atol=1e-13)
    assert opt.iterations == STEPS


@pytest.mark.parametrize("name, kwargs", TORCH_CASES, ids=CASE_IDS)
def test_matches_torch_float32(name, kwargs):
    torch = pytest.importorskip("torch")
    params, grads = _problem(np.float32)
    expected = _torch_run(torch, name, kwargs, params, grads)
    opt = getattr(O, name)(**kwargs)
    for gs in grads:
        opt.step(params, gs)
    for p, e in zip(params, expected[-1]):
        assert p.dtype == np.float32
        np.testing.assert_allclose(p, e, rtol=1e-5, atol=1e-6)


def test_schedule_matches_torch_with_changing_lr():
    torch = pytest.importorskip("torch")
    params, grads = _problem(np.float64)
    lrs = [0.1 / (1 + k) for k in range(STEPS)]
    expected = _torch_run(torch, "Adam", {}, params, grads, lrs=lrs)
    opt = O.Adam(lr=lambda step, epoch: 0.1 / (1 + step))
    for gs in grads:
        opt.step(params, gs)
    for p, e in zip(params, expected[-1]):
        np.testing.assert_allclose(p, e, rtol=1e-10, atol=1e-13)


def test_adam_minimizes_a_quadratic():
    rng = np.random.default_rng(3)
    scale = rng.uniform(0.5, 5.0, 10)
    target = rng.standard_normal(10)
    x = np.zeros(10)
    opt = O.Adam(lr=0.05)
    for _ in range(600):
        opt.step([x], [scale * (x - target)])
    np.testing.assert_allclose(x, target, atol=1e-3)


def test_schedule_is_called_with_iterations_and_epoch_each_step():
    calls = []

    def schedule(step, epoch):
        calls.append((step, epoch))
        return 0.5 ** step + epoch

    p = np.zeros(2)
    g = np.array([1.0, -2.0])
    opt = O.SGD(lr=schedule)
    opt.step([p], [g])
    opt.step([p], [g])
    opt.epoch = 1
    opt.step([p], [g])
    assert calls == [(0, 0), (1, 0), (2, 1)]
    np.testing.assert_allclose(p, -(1.0 + 0.5 + 1.25) * g, rtol=1e-15)


def test_learning_rate_property():
    opt = O.SGD(lr=lambda step, epoch: 1.0 / (1 + step))
    assert opt.learning_rate == 1.0
    assert opt.schedule is not None
    opt.step([np.zeros(1)], [np.ones(1)])
    assert opt.learning_rate == 0.5
    opt.learning_rate = 0.25
    assert opt.learning_rate == 0.25 and opt.schedule is None
    with pytest.raises(ValueError):
        opt.learning_rate = -1.0
    with pytest.raises(TypeError):
        opt.learning_rate = "fast"


def test_learning_rate_alias():
    assert O.SGD(learning_rate=0.5).learning_rate == 0.5
    assert O.AdamW(learning_rate=0.02).get_config()["lr"] == 0.02
    with pytest.raises(TypeError, match="not both"):
        O.Adam(lr=0.1, learning_rate=0.2)


def test_defaults_are_torchs():
    assert O.SGD().get_config() == dict(lr=0.01, momentum=0.0, dampening=0.0, nesterov=False,
                                        weight_decay=0.0)
    assert O.Adagrad().get_config() == dict(lr=0.01, lr_decay=0.0, weight_decay=0.0,
                                            initial_accumulator_value=0.0, eps=1e-10)
    assert O.RMSprop().get_config() == dict(lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                                            momentum=0.0, centered=False)
    assert O.Adadelta().get_config() == dict(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0)
    assert O.Adam().get_config() == dict(lr=1e-3, betas=[0.9, 0.999], eps=1e-8,
                                         weight_decay=0.0, amsgrad=False)
    assert O.AdamW().get_config()["weight_decay"] == 0.01


@pytest.mark.parametrize("make", [
    lambda: O.SGD(nesterov=True),
    lambda: O.SGD(momentum=0.9, dampening=0.1, nesterov=True),
    lambda: O.SGD(lr=-0.1),
    lambda: O.SGD(momentum=-0.5),
    lambda: O.Adagrad(lr_decay=-1.0),
    lambda: O.RMSprop(eps=-1e-8),
    lambda: O.Adadelta(rho=1.5),
    lambda: O.Adam(betas=(1.0, 0.999)),
    lambda: O.Adam(betas=(0.9,)),
    lambda: O.AdamW(weight_decay=-0.01),
])
def test_invalid_hyperparameters_raise(make):
    with pytest.raises(ValueError):
        make()


def test_state_is_made_once_in_the_parameters_dtype():
    params = [np.zeros((2, 3), dtype=np.float32), np.zeros(4, dtype=np.float32)]
    grads = [np.ones((2, 3), dtype=np.float32), np.ones(4, dtype=np.float32)]
    opt = O.Adam(amsgrad=True)
    opt.step(params, grads)
    state = opt.get_state()
    assert int(state[0]) == 1 and len(state) == 1 + 2 * 3
    assert [s.shape for s in state[1:]] == [(2, 3)] * 3 + [(4,)] * 3
    assert all(s.dtype == np.float32 for s in state[1:])
    opt.step(params, grads)  # two sets of buffers take turns: none is made again
    assert not any(a is b for a, b in zip(opt.get_state()[1:], state[1:]))
    opt.step(params, grads)
    assert all(a is b for a, b in zip(opt.get_state()[1:], state[1:]))
    with pytest.raises(ValueError, match="shape"):
        opt.step([np.zeros((3, 2), dtype=np.float32), params[1]], grads)


def test_step_checks_its_arguments():
    opt = O.SGD()
    with pytest.raises(ValueError, match="gradients"):
        opt.step([np.zeros(2)], [])
    with pytest.raises(TypeError):
        opt.step([[0.0, 1.0]], [np.ones(2)])


@pytest.mark.parametrize("name, kwargs", TORCH_CASES, ids=CASE_IDS)
@pytest.mark.parametrize("saved_after", [2, 3])  # either set of state buffers is current
def test_state_round_trip_continues_identically(name, kwargs, saved_after):
    params, grads = _problem(np.float64)
    first = getattr(O, name)(**kwargs)
    for gs in grads[:saved_after]:
        first.step(params, gs)
    second = getattr(O, name)(**kwargs)
    second.set_state(first.get_state())
    copies = [p.copy() for p in params]
    for gs in grads[saved_after:]:
        first.step(params, gs)
        second.step(copies, gs)
    for a, b in zip(params, copies):
        np.testing.assert_array_equal(a, b)
    assert second.iterations == first.iterations == STEPS


def test_set_state_rejects_a_wrong_count():
    with pytest.raises(ValueError, match="buffers per parameter"):
        O.Adam().set_state([1, np.zeros(2)])


def test_clipvalue():
    grads = [np.array([-3.0, 0.5, 2.0]), np.array([[1.5, -0.25]], dtype=np.float32)]
    out = O.clip_gradients(grads, clipvalue=1.0)
    assert out is grads
    np.testing.assert_array_equal(grads[0], [-1.0, 0.5, 1.0])
    np.testing.assert_array_equal(grads[1], np.array([[1.0, -0.25]], dtype=np.float32))


def test_clipnorm_rescales_only_tensors_above_the_limit():
    grads = [np.array([3.0, 4.0]), np.array([0.6, 0.8])]
    O.clip_gradients(grads, clipnorm=2.0)
    np.testing.assert_allclose(grads[0], [1.2, 1.6], rtol=1e-15)
    np.testing.assert_array_equal(grads[1], [0.6, 0.8])


def test_global_clipnorm():
    grads = [np.array([3.0, 0.0]), np.array([[0.0], [4.0]])]
    O.clip_gradients(grads, global_clipnorm=1.0)
    np.testing.assert_allclose(grads[0], [0.6, 0.0], rtol=1e-15)
    np.testing.assert_allclose(grads[1], [[0.0], [0.8]], rtol=1e-15)
    small = [np.array([0.3, 0.4])]
    O.clip_gradients(small, global_clipnorm=1.0)
    np.testing.assert_array_equal(small[0], [0.3, 0.4])


def test_clipnorm_without_overflow():
    grads = [np.array([3e200, 4e200])]
    O.clip_gradients(grads, clipnorm=5.0)
    np.testing.assert_allclose(grads[0], [3.0, 4.0], rtol=1e-14)


@pytest.mark.parametrize("kwargs, error", [
    (dict(clipvalue=0.0), ValueError),
    (dict(clipnorm=-1.0), ValueError),
    (dict(global_clipnorm="1"), TypeError),
    (dict(clipvalue=1.0, clipnorm=1.0), ValueError),
])
def test_clip_gradients_validates(kwargs, error):
    with pytest.raises(error):
        O.clip_gradients([np.ones(2)], **kwargs)


def test_clip_gradients_without_options_changes_nothing():
    grads = [np.array([10.0, -10.0])]
    O.clip_gradients(grads)
    np.testing.assert_array_equal(grads[0], [10.0, -10.0])


@pytest.mark.parametrize("name, cls", [("sgd", O.SGD), ("adagrad", O.Adagrad),
                                       ("rmsprop", O.RMSprop), ("adadelta", O.Adadelta),
                                       ("adam", O.Adam), ("AdamW", O.AdamW)])
def test_registry_names(name, cls):
    opt = O.get(name)
    assert type(opt) is cls
    assert O.get(opt) is opt


def test_registry_errors():
    with pytest.raises(ValueError, match="adadelta, adagrad, adam, adamw, rmsprop, sgd"):
        O.get("lbfgs")
    with pytest.raises(TypeError):
        O.get(0.1)


@pytest.mark.parametrize("name, kwargs", TORCH_CASES, ids=CASE_IDS)
def test_config_round_trip(name, kwargs):
    opt = getattr(O, name)(**kwargs)
    config = json.loads(json.dumps(opt.get_config()))
    rebuilt = O.get({"class_name": type(opt).__name__, "config": config})
    assert type(rebuilt) is type(opt)
    assert rebuilt.get_config() == opt.get_config()
    assert O.get(O.serialize(opt)).get_config() == opt.get_config()


class _Halving:
    """A schedule with a config: lr0 / 2**epoch."""

    def __init__(self, lr0):
        self.lr0 = lr0

    def __call__(self, step, epoch):
        return self.lr0 / 2 ** epoch

    def get_config(self):
        return {"lr0": self.lr0}


def test_schedule_config_is_serialised():
    opt = O.Adam(lr=_Halving(0.1))
    assert opt.get_config()["lr"] == {"class_name": "_Halving", "config": {"lr0": 0.1}}
    with pytest.raises(TypeError, match="get_config"):
        O.Adam(lr=lambda step, epoch: 0.1).get_config()


# -- clipping on the optimizer ------------------------------------------------------------
@pytest.mark.parametrize("option", ["clipvalue", "clipnorm", "global_clipnorm"])
def test_clipping_is_an_optimizer_argument(option):
    rng = np.random.default_rng(3)
    params = [rng.standard_normal(s) for s in SHAPES]
    grads = [rng.standard_normal(s) * 5 for s in SHAPES]
    opt = O.SGD(lr=0.5, **{option: 0.7})
    assert getattr(opt, option) == 0.7
    assert opt.get_config()[option] == 0.7
    rebuilt = O.get(O.serialize(opt))
    assert getattr(rebuilt, option) == 0.7 and type(rebuilt) is O.SGD
    expected = [p.copy() for p in params]
    O.SGD(lr=0.5).step(expected, O.clip_gradients([g.copy() for g in grads], **{option: 0.7}))
    opt.step(params, grads)
    for a, b in zip(params, expected):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(("kwargs", "error"), [
    (dict(clipvalue=0.0), ValueError),
    (dict(clipnorm=-1.0), ValueError),
    (dict(global_clipnorm="1"), TypeError),
    (dict(clipvalue=1.0, clipnorm=1.0), ValueError),
])
def test_optimizer_validates_clipping_once(kwargs, error):
    with pytest.raises(error):
        O.Adam(**kwargs)


def test_clip_limit_is_not_revalidated_per_step(monkeypatch):
    opt = O.Adam(clipnorm=1.0)
    calls = []
    monkeypatch.setattr(O, "check_real", lambda *a, **k: calls.append(a))
    params, grads = [np.ones(3)], [np.full(3, 10.0)]
    for _ in range(3):
        opt.step(params, grads)
    assert calls == []


def test_arrays_are_checked_once_for_the_same_lists(monkeypatch):
    opt = O.Adam()
    params, grads = [np.ones((2, 3)), np.ones(3)], [np.ones((2, 3)), np.ones(3)]
    checks = []
    original = O.Optimizer._check
    monkeypatch.setattr(O.Optimizer, "_check", lambda self, p, g: (checks.append(1),
                                                                    original(self, p, g)))
    for _ in range(4):
        opt.step(params, grads)
    assert len(checks) == 1
    with pytest.raises(ValueError, match="gradient 1"):
        opt.step(params, [grads[0], np.ones(4)])


# -- undo ---------------------------------------------------------------------------------
def _state(opt, params):
    return [p.copy() for p in params] + [np.array(s, copy=True) for s in opt.get_state()]


@pytest.mark.parametrize(("name", "kwargs"), TORCH_CASES)
def test_undo_restores_parameters_state_and_step_count(name, kwargs):
    rng = np.random.default_rng(4)
    params = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    grads = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    opt = getattr(O, name)(**kwargs)
    opt.step(params, grads)
    before = _state(opt, params)
    opt.step(params, grads)
    assert opt.iterations == 2
    assert opt.undo()
    assert not opt.undo()  # only the last step, once
    for a, b in zip(_state(opt, params), before):
        np.testing.assert_array_equal(a, b)
    # training resumes as if the undone step had never been taken
    opt.step(params, grads)
    again = getattr(O, name)(**kwargs)
    ref = [p.copy() for p in before[:len(params)]]
    again.set_state(before[len(params):])
    again.step(ref, grads)
    for a, b in zip(params, ref):
        np.testing.assert_array_equal(a, b)


def test_undo_of_a_first_step_makes_the_state_new_again():
    p, g = [np.ones(3)], [np.ones(3)]
    opt = O.SGD(lr=0.1, momentum=0.9, dampening=0.5)
    opt.step(p, g)
    assert opt.undo()
    assert opt.iterations == 0 and opt.get_state()[1:] == []
    opt.step(p, g)  # the buffer takes the gradient as on a first step
    np.testing.assert_array_equal(opt.get_state()[1], np.ones(3))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_step_that_makes_a_weight_non_finite_is_undone(dtype):
    big = np.finfo(dtype).max
    params = [np.array([1.0, 2.0], dtype=dtype), np.ones((3, 2), dtype=dtype)]
    opt = O.Adam(lr=1.0)
    opt.step(params, [np.ones(2, dtype), np.ones((3, 2), dtype)])
    before = _state(opt, params)
    opt.learning_rate = float(big)
    with np.errstate(over="ignore"):
        assert opt.step(params, [np.ones(2, dtype), np.ones((3, 2), dtype)]) is False
    for a, b in zip(_state(opt, params), before):
        np.testing.assert_array_equal(a, b)
    assert opt.iterations == 1
    opt.learning_rate = 0.1
    assert opt.step(params, [np.ones(2, dtype), np.ones((3, 2), dtype)]) is True
    assert all(np.all(np.isfinite(p)) for p in params)


@pytest.mark.parametrize(("name", "kwargs"), TORCH_CASES)
def test_a_step_begun_and_cancelled_leaves_the_step_before_it_to_undo(name, kwargs):
    params, grads = _problem(np.float32, seed=5)
    grads, opt = grads[0], getattr(O, name)(**kwargs)
    for _ in range(3):  # the two sets of state buffers take turns
        before = _state(opt, params)
        opt.step(params, grads)
    opt.begin_step(params, grads)
    opt.cancel_step()  # nothing was updated
    assert opt.undo()
    for a, b in zip(_state(opt, params), before):
        np.testing.assert_array_equal(a, b)
    assert opt.iterations == 2


@pytest.mark.parametrize(("name", "kwargs"), TORCH_CASES)
def test_a_step_of_some_parameters_keeps_the_state_of_the_others(name, kwargs):
    params, grads = _problem(np.float32, seed=6)
    opt = getattr(O, name)(**kwargs)
    opt.step(params, grads[0])
    kept = [np.array(s, copy=True) for s in opt.get_state()[1:]]
    opt.step(params[:1], grads[1][:1])  # the first parameter alone
    per_param = len(kept) // len(params)
    for a, b in zip(opt.get_state()[1 + per_param:], kept[per_param:]):
        np.testing.assert_array_equal(a, b)
    assert opt.undo()
    for a, b in zip(opt.get_state()[1:], kept):
        np.testing.assert_array_equal(a, b)
