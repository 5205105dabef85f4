import json

import numpy as np
import pytest

from conftest import DTYPES, assert_close
from fastnn import activations as A
from fastnn._kernels.reference import activations as R

# The kernel each public name runs, and its slope.
EXPECTED_KERNEL = {
    "binary_step": ("binary_step", None),
    "elu": ("elu", 1.0),
    "gelu": ("gelu", None),
    "gelu_tanh": ("gelu_tanh", None),
    "identity": ("linear", None),
    "leaky_relu": ("leaky_relu", 0.01),
    "linear": ("linear", None),
    "relu": ("relu", None),
    "selu": ("selu", None),
    "sigmoid": ("sigmoid", None),
    "silu": ("swish", None),
    "softmax": ("softmax", None),
    "softplus": ("softplus", None),
    "swish": ("swish", None),
    "tanh": ("tanh", None),
}
NEEDS_PREACT = {"gelu", "gelu_tanh", "swish", "softplus"}

# Options of the parametrised activations: (instance, kernel, alpha).
OPTIONS = [
    (A.LeakyReLU(0.2), "leaky_relu", 0.2),
    (A.LeakyReLU(alpha=-0.5), "leaky_relu", -0.5),
    (A.ELU(0.7), "elu", 0.7),
    (A.ELU(alpha=2.5), "elu", 2.5),
    (A.GELU(), "gelu", None),
    (A.GELU(approximate=True), "gelu_tanh", None),
    (A.BinaryStep(), "binary_step", None),
    (A.BinaryStep(straight_through=True), "binary_step_ste", None),
]
OPTION_IDS = ["leaky0.2", "leaky-0.5", "elu0.7", "elu2.5", "gelu", "gelu_tanh", "step", "step_ste"]


def test_names_cover_the_table():
    assert set(A.NAMES) == set(EXPECTED_KERNEL)
    assert list(A.NAMES) == sorted(A.NAMES)


@pytest.mark.parametrize("name", sorted(EXPECTED_KERNEL))
def test_get_by_name_picks_the_kernel(name):
    act = A.get(name)
    assert isinstance(act, A.Activation)
    assert (act.kernel, act.alpha) == EXPECTED_KERNEL[name]
    assert act.name == act.kernel
    assert A.get(name.upper()) == act


@pytest.mark.parametrize("name", sorted(EXPECTED_KERNEL))
def test_config_round_trip_for_every_name(name):
    act = A.get(name)
    config = A.serialize(act)
    again = A.get(json.loads(json.dumps(config)))
    assert type(again) is type(act)
    assert again == act
    assert again.get_config() == act.get_config()


def test_get_none_is_linear_and_instances_pass_through():
    assert A.get(None) == A.Activation("linear")
    assert A.get(None).kernel == "linear"
    act = A.LeakyReLU(0.3)
    assert A.get(act) is act


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'nope'") as info:
        A.get("nope")
    for name in A.NAMES:
        assert name in str(info.value)


def test_unknown_config_class_and_bad_types():
    with pytest.raises(ValueError, match="valid names"):
        A.get({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="class_name"):
        A.get({"config": {}})
    with pytest.raises(TypeError):
        A.get(3.0)
    with pytest.raises(ValueError, match="valid names"):
        A.Activation("not_a_kernel")


@pytest.mark.parametrize(("act", "kernel", "alpha"), OPTIONS, ids=OPTION_IDS)
def test_options_route_to_kernel_and_round_trip(act, kernel, alpha):
    assert act.kernel == kernel
    assert act.alpha == alpha
    again = A.get(A.serialize(act))
    assert type(again) is type(act)
    assert again == act
    assert again.get_config() == act.get_config()


def test_option_configs():
    assert A.LeakyReLU(0.2).get_config() == {"alpha": 0.2}
    assert A.ELU(0.7).get_config() == {"alpha": 0.7}
    assert A.GELU(approximate=True).get_config() == {"approximate": True}
    assert A.BinaryStep(straight_through=True).get_config() == {"straight_through": True}
    assert A.get({"class_name": "GELU", "config": {"approximate": True}}).kernel == "gelu_tanh"
    assert A.get({"class_name": "LeakyReLU", "config": {"alpha": 0.5}}).alpha == 0.5
    assert A.get({"class_name": "ELU", "config": {"alpha": 3.0}}) == A.ELU(3.0)
    assert A.get({"class_name": "BinaryStep",
                  "config": {"straight_through": True}}).kernel == "binary_step_ste"
    with pytest.raises(ValueError, match="positive"):
        A.ELU(0.0)
    assert A.LeakyReLU(0.2) != A.LeakyReLU(0.3)
    assert A.GELU() != A.GELU(approximate=True)


def _cases():
    cases = [(name, A.get(name)) for name in sorted(EXPECTED_KERNEL)]
    cases += [(i, act) for i, (act, _, _) in zip(OPTION_IDS, OPTIONS)]
    return cases


@pytest.mark.parametrize(("label", "act"), _cases(), ids=[str(c[0]) for c in _cases()])
@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_call_and_backward_match_twin(label, act, dt):
    rng = np.random.default_rng(7)
    z = (rng.standard_normal((5, 7)) * 3).astype(dt)
    dy = rng.standard_normal((5, 7)).astype(dt)
    y = act(z)
    assert y.dtype == dt and y.shape == z.shape
    z64 = z.astype(np.float64)
    assert_close(y, R.forward(act.kernel, z64, act.alpha), dt, scale=10)
    dz = act.backward(dy, z, y)
    assert dz.dtype == dt
    assert_close(dz, R.backward(act.kernel, dy.astype(np.float64), z64, act.alpha), dt,
                 scale=10)
    # 1-D input is one row
    assert_close(act(z[0]), y[0], dt)


def test_softmax_rows_sum_to_one():
    z = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]])
    y = A.get("softmax")(z)
    np.testing.assert_allclose(y.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(y[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum(), rtol=1e-14)
    assert y[1, 0] == 1.0


def test_straight_through_passes_gradient_and_plain_step_blocks_it():
    z = np.array([[-1.5, 0.0, 2.0]])
    dy = np.array([[0.3, -0.7, 1.1]])
    ste, step = A.BinaryStep(straight_through=True), A.BinaryStep()
    np.testing.assert_array_equal(ste(z), [[0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(step(z), [[0.0, 1.0, 1.0]])
    np.testing.assert_array_equal(ste.backward(dy, z, ste(z)), dy)
    np.testing.assert_array_equal(step.backward(dy, z, step(z)), np.zeros_like(dy))


@pytest.mark.parametrize("name", sorted(EXPECTED_KERNEL))
def test_needs_preact_by_name(name):
    assert A.get(name).needs_preact == (EXPECTED_KERNEL[name][0] in NEEDS_PREACT)


@pytest.mark.parametrize(("alpha", "expected"), [(0.01, False), (0.5, False), (0.0, True),
                                                 (-0.2, True)])
def test_needs_preact_leaky_relu(alpha, expected):
    assert A.LeakyReLU(alpha).needs_preact is expected


@pytest.mark.parametrize("name", sorted(n for n, (k, _) in EXPECTED_KERNEL.items()
                                         if k not in NEEDS_PREACT))
def test_backward_from_output_alone_when_preact_not_needed(name):
    # What needs_preact promises: an activation that does not need z gets the same
    # gradient when handed y in place of z.
    act = A.get(name)
    rng = np.random.default_rng(3)
    z = rng.uniform(0.1, 3.0, (4, 6)) * rng.choice([-1.0, 1.0], (4, 6))
    dy = rng.standard_normal((4, 6))
    y = act(z)
    np.testing.assert_allclose(act.backward(dy, y, y), act.backward(dy, z, y), rtol=1e-15)


def test_negative_leaky_slope_needs_preact_for_a_correct_gradient():
    act = A.LeakyReLU(-0.5)
    z = np.array([[-2.0, 1.0]])
    y = act(z)  # [[1.0, 1.0]]: the sign of y no longer tells the sign of z
    np.testing.assert_allclose(act.backward(np.ones_like(z), z, y), [[-0.5, 1.0]])


def test_argmax_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((9, 4))
    np.testing.assert_array_equal(A.argmax(x), np.argmax(x, axis=1))
    assert A.argmax(x).dtype == np.int64
    np.testing.assert_array_equal(A.argmax([[1.0, 3.0, 3.0]]), [1])


def test_one_table_of_default_slopes():
    from fastnn._kernels.activations import DEFAULT_ALPHA, activation_forward
    from fastnn.engine import InferenceEngine

    assert A.get("leaky_relu").alpha == DEFAULT_ALPHA["leaky_relu"]
    assert A.get("elu").alpha == DEFAULT_ALPHA["elu"]
    z = np.linspace(-3, 3, 12).reshape(2, 6)
    for name in DEFAULT_ALPHA:
        engine = InferenceEngine([{"kind": "dense", "W": np.eye(6), "activation": name}],
                                 dtype="float64")
        np.testing.assert_allclose(engine.predict(z), activation_forward(z, name), rtol=1e-15)
        np.testing.assert_allclose(R.forward(name, z), activation_forward(z, name), rtol=1e-12)
