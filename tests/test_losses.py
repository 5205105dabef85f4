import warnings

import numpy as np
import pytest

import fastnn
from conftest import numeric_gradient
from fastnn import losses
from fastnn._kernels import activations as K

NAMES = ["mse", "mae", "binary_crossentropy", "categorical_crossentropy",
         "sparse_categorical_crossentropy"]
N, C = 6, 4
FD_EPS = 1e-6


def _data(name, seed=0, dtype=np.float64, n=N, k=C):
    """(y_true, y_pred) for `name`, with predictions away from mae's kinks and in (0, 1)
    for the cross-entropies."""
    rng = np.random.default_rng(seed)
    if name in ("mse", "mae"):
        y = rng.standard_normal((n, k))
        return y.astype(dtype), (y + rng.uniform(0.1, 1.0, (n, k))
                                 * rng.choice([-1.0, 1.0], (n, k))).astype(dtype)
    if name == "binary_crossentropy":
        return ((rng.random((n, k)) < 0.5).astype(dtype),
                rng.uniform(0.05, 0.95, (n, k)).astype(dtype))
    p = rng.dirichlet(np.ones(k), n).astype(dtype)
    labels = rng.integers(0, k, n)
    if name == "sparse_categorical_crossentropy":
        return labels, p
    return np.eye(k, dtype=dtype)[labels], p


def _per_sample(name, y, p):
    """The per-sample loss by the plain formula."""
    if name == "mse":
        return ((p - y) ** 2).mean(axis=1)
    if name == "mae":
        return np.abs(p - y).mean(axis=1)
    if name == "binary_crossentropy":
        return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=1)
    if name == "categorical_crossentropy":
        return -(y * np.log(p)).sum(axis=1)
    return -np.log(p[np.arange(len(y)), y])


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
def test_value_matches_formula(name, dt):
    y, p = _data(name, dtype=dt)
    value, grad = losses.get(name)(y, p)
    assert isinstance(value, float)
    assert grad.shape == p.shape and grad.dtype == dt
    y64 = y if name.startswith("sparse") else y.astype(np.float64)
    expected = _per_sample(name, y64, p.astype(np.float64)).mean()
    assert value == pytest.approx(expected, rel=1e-5 if dt == np.float32 else 1e-12)


@pytest.mark.parametrize("name", NAMES)
def test_gradient_by_finite_differences(name):
    y, p = _data(name, seed=1)
    loss = losses.get(name)
    _, grad = loss(y, p)
    numeric = numeric_gradient(lambda: loss(y, p)[0], p, FD_EPS)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_sample_weights(name):
    y, p = _data(name, seed=2)
    w = np.random.default_rng(3).uniform(0.0, 3.0, N)
    loss = losses.get(name)
    value, grad = loss(y, p, w)
    assert value == pytest.approx((w * _per_sample(name, y, p)).sum() / N, rel=1e-12)
    numeric = numeric_gradient(lambda: loss(y, p, w)[0], p, FD_EPS)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)
    # unit weights are no weights; a zero weight removes the sample
    ones = loss(y, p, np.ones(N))
    plain = loss(y, p)
    assert ones[0] == pytest.approx(plain[0], rel=1e-14)
    np.testing.assert_allclose(ones[1], plain[1], rtol=1e-14)
    w0 = np.ones(N)
    w0[0] = 0.0
    assert np.all(loss(y, p, w0)[1][0] == 0)


# -- from logits -------------------------------------------------------------------------------
def _logit_case(name, seed=0, dtype=np.float64, scale=2.0, k=None):
    rng = np.random.default_rng(seed)
    k = (1 if name == "binary_crossentropy" else C) if k is None else k
    z = (rng.standard_normal((N, k)) * scale).astype(dtype)
    if name == "binary_crossentropy":
        y = (rng.random((N, k)) < 0.5).astype(dtype)
    else:
        labels = rng.integers(0, k, N)
        y = labels if name.startswith("sparse") else np.eye(k, dtype=dtype)[labels]
    return y, z


LOGIT_NAMES = ["binary_crossentropy", "categorical_crossentropy",
               "sparse_categorical_crossentropy"]


def _probs(loss, z):
    return K.activation_forward(z, loss.logits_activation)


def _dense_targets(name, y, k):
    return np.eye(k)[y] if name.startswith("sparse") else y


@pytest.mark.parametrize("name", LOGIT_NAMES)
def test_logits_activation(name):
    expected = "sigmoid" if name == "binary_crossentropy" else "softmax"
    assert losses.get(name).logits_activation == expected
    assert losses.get("mse").logits_activation is None


@pytest.mark.parametrize("name", LOGIT_NAMES)
@pytest.mark.parametrize("k", [None, 3])
def test_from_logits_equals_probability_path(name, k):
    loss = losses.get(name)
    y, z = _logit_case(name, seed=4, k=k)
    p = _probs(loss, z)
    value, grad = loss.from_logits(y, z, p)
    assert value == pytest.approx(loss(y, p)[0], rel=1e-12)
    yd = _dense_targets(name, y, z.shape[1])
    k_out = z.shape[1] if name == "binary_crossentropy" else 1
    np.testing.assert_allclose(grad, (p - yd) / (N * k_out), rtol=1e-13, atol=1e-16)
    numeric = numeric_gradient(lambda: loss.from_logits(y, z, _probs(loss, z))[0], z, FD_EPS)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", LOGIT_NAMES)
def test_from_logits_with_sample_weights(name):
    loss = losses.get(name)
    y, z = _logit_case(name, seed=5)
    p = _probs(loss, z)
    w = np.random.default_rng(6).uniform(0.0, 2.0, N)
    value, grad = loss.from_logits(y, z, p, w)
    per = _per_sample(name, y, p)
    assert value == pytest.approx((w * per).sum() / N, rel=1e-12)
    np.testing.assert_allclose(grad, (p - _dense_targets(name, y, z.shape[1]))
                               * (w / N)[:, None], rtol=1e-13, atol=1e-16)


@pytest.mark.parametrize("name", LOGIT_NAMES)
def test_saturated_logits_stay_finite_without_warnings(name):
    loss = losses.get(name)
    k = 1 if name == "binary_crossentropy" else 3
    z = np.array([[1e4, -1e4, 1e4], [-1e4, 1e4, -1e4], [1e4, 1e4, -1e4],
                  [-1e4, -1e4, -1e4]], dtype=np.float32)[:, :k]
    if name == "binary_crossentropy":
        y = np.array([[0.0], [1.0], [1.0], [0.0]], dtype=np.float32)  # two wrong, two right
    elif name == "categorical_crossentropy":
        y = np.eye(3, dtype=np.float32)[[1, 1, 2, 0]]
    else:
        y = np.array([1, 1, 2, 0])
    # underflow to zero is the intended result here; anything else is an error
    with warnings.catch_warnings(), np.errstate(over="raise", divide="raise", invalid="raise"):
        warnings.simplefilter("error")
        p = _probs(loss, z)
        value, grad = loss.from_logits(y, z, p)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad)) and grad.dtype == np.float32
    # confidently wrong rows cost about the logit gap; right rows almost nothing
    if name == "binary_crossentropy":
        assert value == pytest.approx(2e4 / 4, rel=1e-6)
        np.testing.assert_allclose(grad[:, 0], [0.25, -0.25, 0.0, 0.0], atol=1e-7)
    else:
        # rows: wrong by 2e4 against two tied logits, right, the same, uniform
        assert value == pytest.approx((2 * (2e4 + np.log(2)) + np.log(3)) / 4, rel=1e-6)
        np.testing.assert_allclose(grad, (p - np.eye(3)[[1, 1, 2, 0]]) / 4, atol=1e-7)


# -- targets -----------------------------------------------------------------------------------
def test_sparse_targets_checked():
    loss = losses.get("sparse_categorical_crossentropy")
    np.testing.assert_array_equal(loss.check_targets([0, 2, 1], 3), [0, 2, 1])
    np.testing.assert_array_equal(loss.check_targets(np.array([[1.0], [2.0]]), 3), [1, 2])
    assert loss.check_targets(np.array([1, 0], dtype=np.uint8), 2).dtype == np.int64
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\].*from 0 to 3"):
        loss.check_targets([0, 3], 3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 2\].*from -1 to 1"):
        loss.check_targets([-1, 1], 3)
    with pytest.raises(ValueError, match="whole numbers"):
        loss.check_targets([0.0, 1.5], 3)
    with pytest.raises(ValueError, match="integers"):
        loss.check_targets(np.array(["a", "b"]), 3)
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        loss.check_targets(np.zeros((2, 3)), 3)


def test_sparse_targets_checked_by_fit():
    model = fastnn.Sequential([fastnn.layers.Dense(3, activation="softmax")], input_dim=2)
    model.compile("sgd", "sparse_categorical_crossentropy")
    X = np.zeros((4, 2))
    # labels that are not indices 0..2 must be three distinct values to name three units
    with pytest.raises(ValueError, match="4 distinct labels but the output of 3 units"):
        model.fit(X, [0, 1, 2, 3], verbose=0)
    with pytest.raises(ValueError, match="4 distinct labels but the output of 3 units"):
        model.fit(X, [0, 1, 2, 0.5], verbose=0)
    with pytest.raises(ValueError, match="4 distinct labels but the output of 3 units"):
        model.evaluate(X, [0, 1, 2, 7])
    model.fit(X, [0, 1, 2, 2], verbose=0)
    with pytest.raises(ValueError, match=r"not among the model's classes \[0, 1, 2\]: 7"):
        model.evaluate(X, [0, 1, 2, 7])


def test_dense_targets_checked():
    mse = losses.get("mse")
    assert mse.check_targets([1.0, 2.0], 1).shape == (2, 1)
    with pytest.raises(ValueError, match="width 3"):
        mse.check_targets(np.zeros((4, 2)), 3)
    bce = losses.get("binary_crossentropy")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        bce.check_targets([[0.0], [1.5]], 1)
    with pytest.raises(ValueError, match="width"):
        losses.get("categorical_crossentropy").check_targets([0, 1, 2], 3)


# -- registry ----------------------------------------------------------------------------------
def test_unknown_loss_lists_valid_names():
    with pytest.raises(ValueError, match="unknown loss 'hinge'") as info:
        losses.get("hinge")
    for name in NAMES:
        assert name in str(info.value)


@pytest.mark.parametrize("name", NAMES)
def test_get_and_serialize(name):
    loss = losses.get(name)
    again = losses.get(losses.serialize(loss))
    assert type(again) is type(loss)
    assert losses.get(loss) is loss


def test_aliases():
    assert isinstance(losses.get("mean_squared_error"), losses.MeanSquaredError)
    assert isinstance(losses.get("mean_absolute_error"), losses.MeanAbsoluteError)
    assert isinstance(losses.get("MSE"), losses.MeanSquaredError)


# -- metrics -----------------------------------------------------------------------------------
def test_accuracy_sparse_onehot_binary():
    acc = losses.get_metric("accuracy")[1]
    p = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.2, 0.6], [0.3, 0.4, 0.3]])
    labels = np.array([1, 0, 0, 2])
    assert acc(labels, p) == 0.5
    assert acc(np.eye(3)[labels], p) == 0.5
    assert acc(np.array([1, 0, 2, 1]), p) == 1.0
    pb = np.array([[0.9], [0.2], [0.6], [0.4], [0.51]])
    yb = np.array([[1.0], [0.0], [0.0], [0.0], [1.0]])
    assert acc(yb, pb) == 0.8
    assert acc(yb[:, 0], pb) == 0.8
    assert losses.get_metric("acc")[1] is acc


def test_regression_metrics_and_unknown():
    y = np.array([[1.0], [2.0], [4.0]])
    p = np.array([[1.5], [2.0], [3.0]])
    assert losses.get_metric("mse")[1](y, p) == pytest.approx((0.25 + 0 + 1) / 3)
    assert losses.get_metric("mae")[1](y, p) == pytest.approx(1.5 / 3)
    assert losses.get_metric("mae")[1](y[:, 0], p) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="unknown metric 'f1'.*accuracy"):
        losses.get_metric("f1")

    def my_metric(y_true, y_pred):
        return 1.0

    name, metric = losses.get_metric(my_metric)
    assert name == "my_metric" and metric(y, p) == 1.0 and metric.higher_is_better


# -- torch -------------------------------------------------------------------------------------
def test_cross_entropies_match_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(8)
    z = rng.standard_normal((N, C)) * 3
    labels = rng.integers(0, C, N)
    w = rng.uniform(0.0, 2.0, N)
    zt = torch.from_numpy(z)

    def torch_value_grad(fn):
        x = zt.clone().requires_grad_(True)
        per = fn(x)
        ((per * torch.from_numpy(w)).sum() / N).backward()
        return float((per.detach() * torch.from_numpy(w)).sum() / N), x.grad.numpy()

    # softmax cross-entropy, sparse and one-hot
    expected = torch_value_grad(lambda x: F.cross_entropy(x, torch.from_numpy(labels),
                                                          reduction="none"))
    p = K.activation_forward(z, "softmax")
    for name, y in (("sparse_categorical_crossentropy", labels),
                    ("categorical_crossentropy", np.eye(C)[labels])):
        value, grad = losses.get(name).from_logits(y, z, p, w)
        assert value == pytest.approx(expected[0], rel=1e-12)
        np.testing.assert_allclose(grad, expected[1], rtol=1e-12, atol=1e-15)
        assert losses.get(name)(y, p, w)[0] == pytest.approx(expected[0], rel=1e-12)
    # soft targets
    soft = rng.dirichlet(np.ones(C), N)
    expected = torch_value_grad(lambda x: F.cross_entropy(x, torch.from_numpy(soft),
                                                          reduction="none"))
    value, grad = losses.get("categorical_crossentropy").from_logits(soft, z, p, w)
    assert value == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(grad, expected[1], rtol=1e-12, atol=1e-15)
    # sigmoid cross-entropy, mean over outputs per sample
    yb = (rng.random((N, C)) < 0.5).astype(np.float64)
    expected = torch_value_grad(lambda x: F.binary_cross_entropy_with_logits(
        x, torch.from_numpy(yb), reduction="none").mean(dim=1))
    pb = K.activation_forward(z, "sigmoid")
    value, grad = losses.get("binary_crossentropy").from_logits(yb, z, pb, w)
    assert value == pytest.approx(expected[0], rel=1e-12)
    np.testing.assert_allclose(grad, expected[1], rtol=1e-12, atol=1e-15)
    # and from probabilities
    pt = torch.from_numpy(pb)
    per = F.binary_cross_entropy(pt, torch.from_numpy(yb), reduction="none").mean(dim=1)
    value = losses.get("binary_crossentropy")(yb, pb, w)[0]
    assert value == pytest.approx(float((per * torch.from_numpy(w)).sum() / N), rel=1e-10)
