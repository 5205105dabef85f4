import json

import numpy as np
import pytest

from conftest import DTYPES, assert_close, numeric_gradient
from fastnn import activations, constraints, initializers, layers as L, regularizers
from fastnn._kernels.reference import activations as R

FD_EPS = 1e-6
FD_RTOL = 1e-6
FD_ATOL = 1e-8


def _build(layer, input_dim, dtype=np.float64, seed=0):
    layer.build(input_dim, dtype, np.random.default_rng(seed))
    return layer


def _assert_grad(analytic, numeric):
    np.testing.assert_allclose(analytic, numeric, rtol=FD_RTOL, atol=FD_ATOL)


def _away_from_zero(rng, shape, low=0.3, high=2.0):
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


# -- Dense -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", activations.NAMES)
@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_dense_forward_matches_numpy(name, dt):
    rng = np.random.default_rng(1)
    layer = _build(L.Dense(6, activation=name, bias_initializer="random_normal"), 5, dt, seed=2)
    X = rng.standard_normal((7, 5)).astype(dt)
    act = layer.activation
    W, b = layer.kernel, layer.bias
    assert W.shape == (5, 6) and b.shape == (6,) and W.dtype == dt and b.dtype == dt
    assert np.any(b != 0)
    Z = X.astype(np.float64) @ W.astype(np.float64) + b.astype(np.float64)
    expected = R.forward(act.kernel, Z, act.alpha)
    for training in (False, True):
        Y = layer.forward(X, training=training)
        assert Y.dtype == dt and Y.shape == (7, 6)
        assert_close(Y, expected, dt, scale=10)


def _kink_free_dense(name, seed_start=0, **kwargs):
    """A float64 Dense layer and input whose pre-activations all lie at least 0.05 from 0,
    so finite differences never cross the kink of relu-like activations or the step."""
    for seed in range(seed_start, seed_start + 200):
        rng = np.random.default_rng(seed)
        layer = _build(L.Dense(4, activation=name, **kwargs), 3, np.float64, seed)
        layer.set_weights([rng.standard_normal((3, 4)), rng.standard_normal(4)])
        X = rng.standard_normal((5, 3))
        Z = X @ layer.kernel + layer.bias
        if np.min(np.abs(Z)) > 0.05:
            return layer, X, rng
    raise AssertionError("no kink-free draw")


@pytest.mark.parametrize("name", activations.NAMES)
def test_dense_backward_by_finite_differences(name):
    layer, X, rng = _kink_free_dense(name)
    G = rng.standard_normal((5, 4))

    def loss():
        return float(np.sum(G * layer.forward(X, training=False)))

    layer.forward(X, training=True)
    dX = layer.backward(G).copy()
    dW, db = (g.copy() for g in layer.grads)
    _assert_grad(dX, numeric_gradient(loss, X, FD_EPS))
    _assert_grad(dW, numeric_gradient(loss, layer.kernel, FD_EPS))
    _assert_grad(db, numeric_gradient(loss, layer.bias, FD_EPS))
    if name == "binary_step":
        assert not np.any(dW)
    else:
        assert np.any(dW)


@pytest.mark.parametrize("act", [activations.LeakyReLU(-0.5), activations.ELU(0.5),
                                 activations.GELU(approximate=True)],
                         ids=["leaky-0.5", "elu0.5", "gelu_tanh"])
def test_dense_backward_with_activation_options(act):
    layer, X, rng = _kink_free_dense(act)
    G = rng.standard_normal((5, 4))
    layer.forward(X, training=True)
    dX = layer.backward(G).copy()

    def loss():
        return float(np.sum(G * layer.forward(X, training=False)))

    _assert_grad(dX, numeric_gradient(loss, X, FD_EPS))
    _assert_grad(layer.grads[0].copy(), numeric_gradient(loss, layer.kernel, FD_EPS))


def test_dense_regularizer_gradients_and_penalty():
    layer, X, rng = _kink_free_dense(
        "tanh", kernel_regularizer=regularizers.L1L2(l1=0.03, l2=0.05),
        bias_regularizer=regularizers.L2(0.2))
    G = rng.standard_normal((5, 4))
    W, b = layer.kernel, layer.bias
    expected_penalty = 0.03 * np.abs(W).sum() + 0.05 * (W ** 2).sum() + 0.2 * (b ** 2).sum()
    assert layer.penalty() == pytest.approx(expected_penalty, rel=1e-12)

    def loss():
        return float(np.sum(G * layer.forward(X, training=False))) + layer.penalty()

    layer.forward(X, training=True)
    layer.backward(G, need_dX=False)
    dW, db = (g.copy() for g in layer.grads)
    _assert_grad(dW, numeric_gradient(loss, W, FD_EPS))
    _assert_grad(db, numeric_gradient(loss, b, FD_EPS))
    # the regularizers really contribute
    plain = _build(L.Dense(4, activation="tanh"), 3)
    plain.set_weights([W, b])
    plain.forward(X, training=True)
    plain.backward(G, need_dX=False)
    np.testing.assert_allclose(dW - plain.grads[0], 0.03 * np.sign(W) + 0.1 * W, rtol=1e-12)
    np.testing.assert_allclose(db - plain.grads[1], 0.4 * b, rtol=1e-12)


def test_dense_without_bias():
    rng = np.random.default_rng(4)
    layer = _build(L.Dense(3, use_bias=False), 2)
    assert layer.bias is None and len(layer.get_weights()) == 1
    X = rng.standard_normal((4, 2))
    np.testing.assert_allclose(layer.forward(X), X @ layer.kernel, rtol=1e-14)
    G = rng.standard_normal((4, 3))
    layer.forward(X, training=True)
    dX = layer.backward(G)
    np.testing.assert_allclose(dX, G @ layer.kernel.T, rtol=1e-13)
    np.testing.assert_allclose(layer.grads[0], X.T @ G, rtol=1e-13)


def test_dense_backward_skips_dx_when_not_needed():
    layer, X, rng = _kink_free_dense("relu")
    layer.forward(X, training=True)
    assert layer.backward(rng.standard_normal((5, 4)), need_dX=False) is None


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_dense_kernel_mask(dt):
    rng = np.random.default_rng(5)
    layer = _build(L.Dense(4, activation="tanh", kernel_regularizer=regularizers.L2(0.1)), 6, dt)
    mask = (rng.random((6, 4)) < 0.5).astype(dt)
    assert 0 < mask.sum() < mask.size
    layer.kernel_mask = mask
    X = rng.standard_normal((8, 6)).astype(dt)
    G = rng.standard_normal((8, 4)).astype(dt)
    # the kernel still holds its unmasked values: both the data gradient and the
    # regularizer's would be nonzero at the masked entries
    layer.forward(X, training=True)
    layer.backward(G)
    dW = layer.grads[0]
    assert np.all(dW[mask == 0] == 0)
    assert np.all(dW[mask == 1] != 0)
    # the unmasked entries keep their gradient
    free = _build(L.Dense(4, activation="tanh", kernel_regularizer=regularizers.L2(0.1)), 6, dt)
    free.set_weights(layer.get_weights())
    free.forward(X, training=True)
    free.backward(G)
    np.testing.assert_array_equal(dW[mask == 1], free.grads[0][mask == 1])
    # an update that touched masked weights is undone by apply_constraints
    before = layer.kernel.copy()
    layer.kernel += 0.5
    layer.apply_constraints()
    assert np.all(layer.kernel[mask == 0] == 0)
    np.testing.assert_array_equal(layer.kernel[mask == 1], before[mask == 1] + dt(0.5))


def test_dense_kernel_constraint_applied():
    layer = _build(L.Dense(3, kernel_constraint=constraints.NonNeg()), 2)
    layer.kernel[...] = [[-1.0, 2.0, -3.0], [4.0, -5.0, 6.0]]
    layer.apply_constraints()
    np.testing.assert_array_equal(layer.kernel, [[0.0, 2.0, 0.0], [4.0, 0.0, 6.0]])


def test_dense_rejects_bad_units():
    for units in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="units"):
            L.Dense(units)


# -- configuration ---------------------------------------------------------------------------
CONFIG_CASES = [
    L.Dense(5, activation=activations.LeakyReLU(0.2), use_bias=False,
            kernel_initializer="he_normal", bias_initializer=initializers.Constant(0.5),
            kernel_regularizer=regularizers.L1L2(0.01, 0.02), bias_regularizer="l2",
            kernel_constraint=constraints.MaxNorm(2.0), name="d"),
    L.Dense(3, activation="softmax"),
    L.Activation(activations.GELU(approximate=True), name="act"),
    L.Dropout(0.3, name="drop"),
    L.BatchNormalization(momentum=0.2, eps=1e-3),
    L.PReLU(alpha_initializer=0.1),
    L.Maxout(4, pieces=3, kernel_regularizer="l2", name="mx"),
    L.GaussianNoise(0.25),
]


@pytest.mark.parametrize("layer", CONFIG_CASES, ids=lambda l: type(l).__name__)
def test_config_round_trip(layer):
    config = {"class_name": type(layer).__name__, "config": layer.get_config()}
    config = json.loads(json.dumps(config))
    again = L.get(config)
    assert type(again) is type(layer)
    assert again.get_config() == layer.get_config()
    # rebuilt with the same generator, the weights match
    a = _build(type(layer)(**layer.get_config()), 6, np.float32, seed=3)
    b = _build(again, 6, np.float32, seed=3)
    assert a.output_dim == b.output_dim
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)


def test_config_values():
    dense = CONFIG_CASES[0]
    config = L.get({"class_name": "Dense", "config": dense.get_config()})
    assert config.activation == activations.LeakyReLU(0.2)
    assert config.use_bias is False
    assert isinstance(config.kernel_regularizer, regularizers.L1L2)
    assert config.kernel_regularizer.get_config() == {"l1": 0.01, "l2": 0.02}
    assert isinstance(config.bias_regularizer, regularizers.L2)
    assert isinstance(config.kernel_constraint, constraints.MaxNorm)
    mx = L.get({"class_name": "Maxout", "config": CONFIG_CASES[6].get_config()})
    assert (mx.maxout_units, mx.pieces) == (4, 3)
    assert L.get({"class_name": "dropout", "config": {"rate": 0.4}}).rate == 0.4


def test_layer_get_unknown_name():
    with pytest.raises(ValueError, match="unknown layer 'Conv2D'") as info:
        L.get({"class_name": "Conv2D", "config": {}})
    assert "dense" in str(info.value)


# -- weights -----------------------------------------------------------------------------------
def test_get_set_weights_shapes():
    layer = _build(L.Dense(3), 4)
    W, b = layer.get_weights()
    assert W.shape == (4, 3) and b.shape == (3,)
    W[...] = 7.0  # a copy
    assert not np.any(layer.kernel == 7.0)
    layer.set_weights([np.ones((4, 3)), np.arange(3.0)])
    np.testing.assert_array_equal(layer.kernel, np.ones((4, 3)))
    np.testing.assert_array_equal(layer.bias, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="takes 2 arrays, got 1"):
        layer.set_weights([np.ones((4, 3))])
    with pytest.raises(ValueError, match=r"shape \(4, 3\).*shape \(3, 4\)"):
        layer.set_weights([np.ones((3, 4)), np.zeros(3)])
    with pytest.raises(ValueError, match="shape"):
        layer.set_weights([np.ones((4, 3)), np.zeros(4)])
    np.testing.assert_array_equal(layer.bias, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="shape"):
        layer.set_weights([np.full((4, 3), 5.0), np.zeros(4)])  # the kernel fits, the bias not
    np.testing.assert_array_equal(layer.kernel, np.ones((4, 3)))


def test_model_set_weights_changes_nothing_on_error():
    from fastnn import Sequential
    model = Sequential([L.Dense(3), L.Dense(2)], input_dim=4, seed=0)
    before = model.get_weights()
    bad = [np.full_like(w, 9.0) for w in before]
    bad[-1] = np.zeros(5)  # only the last layer's bias is wrong
    with pytest.raises(ValueError, match="shape"):
        model.set_weights(bad)
    for w, w0 in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, w0)


def test_get_set_weights_other_layers():
    bn = _build(L.BatchNormalization(), 3)
    assert [w.shape for w in bn.get_weights()] == [(3,)] * 4
    assert bn.count_params() == 12
    with pytest.raises(ValueError, match="takes 4 arrays"):
        bn.set_weights([np.ones(3), np.zeros(3)])
    with pytest.raises(ValueError, match="shape"):
        bn.set_weights([np.ones(3)] * 3 + [np.ones(4)])
    prelu = _build(L.PReLU(), 5)
    with pytest.raises(ValueError, match="shape"):
        prelu.set_weights([np.ones(4)])
    drop = _build(L.Dropout(0.5), 5)
    assert drop.get_weights() == []
    with pytest.raises(ValueError, match="takes 0 arrays"):
        drop.set_weights([np.ones(5)])


# -- Dropout -----------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan")])
def test_dropout_rejects_rate(rate):
    with pytest.raises(ValueError, match="rate"):
        L.Dropout(rate)


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("rate", [0.2, 0.6])
def test_dropout_training_is_inverted_dropout(dt, rate):
    rng = np.random.default_rng(0)
    layer = _build(L.Dropout(rate), 400, dt, seed=1)
    X = rng.uniform(1.0, 2.0, (500, 400)).astype(dt)
    Y = layer.forward(X, training=True).copy()
    assert Y.dtype == dt
    kept = Y != 0
    n = X.size
    # dropped fraction within 5 standard deviations of rate
    assert abs((1 - kept.mean()) - rate) < 5 * np.sqrt(rate * (1 - rate) / n)
    np.testing.assert_allclose(Y[kept], X[kept] / dt(1 - rate), rtol=1e-6)
    # backward uses the same mask and scale
    dY = rng.standard_normal(X.shape).astype(dt)
    dX = layer.backward(dY)
    np.testing.assert_allclose(dX[kept], dY[kept] / dt(1 - rate), rtol=1e-6)
    assert np.all(dX[~kept] == 0)
    # a new forward draws a new mask
    Y2 = layer.forward(X, training=True)
    assert np.mean((Y2 != 0) != kept) > 0.1


def test_dropout_inference_is_identity():
    rng = np.random.default_rng(0)
    layer = _build(L.Dropout(0.5), 10)
    X = rng.standard_normal((6, 10))
    np.testing.assert_array_equal(layer.forward(X, training=False), X)
    dY = rng.standard_normal((6, 10))
    np.testing.assert_array_equal(layer.backward(dY), dY)
    zero = _build(L.Dropout(0.0), 10)
    np.testing.assert_array_equal(zero.forward(X, training=True), X)


def test_dropout_is_seeded():
    X = np.ones((20, 30))
    a = _build(L.Dropout(0.5), 30, seed=9).forward(X, training=True).copy()
    b = _build(L.Dropout(0.5), 30, seed=9).forward(X, training=True).copy()
    c = _build(L.Dropout(0.5), 30, seed=10).forward(X, training=True).copy()
    np.testing.assert_array_equal(a, b)
    assert np.any(a != c)


# -- GaussianNoise -----------------------------------------------------------------------------
@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_gaussian_noise(dt):
    layer = _build(L.GaussianNoise(0.3), 500, dt, seed=4)
    X = np.full((400, 500), 2.0, dtype=dt)
    Y = layer.forward(X, training=True).copy()
    assert Y.dtype == dt
    noise = Y.astype(np.float64) - 2.0
    n = noise.size
    assert abs(noise.mean()) < 5 * 0.3 / np.sqrt(n)
    assert abs(noise.std() / 0.3 - 1) < 5 / np.sqrt(2 * n)
    # the same seed gives the same noise, and a new call new noise
    again = _build(L.GaussianNoise(0.3), 500, dt, seed=4).forward(X, training=True)
    np.testing.assert_array_equal(again, Y)
    assert np.all(layer.forward(X, training=True) != Y)
    np.testing.assert_array_equal(layer.forward(X, training=False), X)
    dY = np.random.default_rng(0).standard_normal(X.shape).astype(dt)
    np.testing.assert_array_equal(layer.backward(dY), dY)
    with pytest.raises(ValueError, match="stddev"):
        L.GaussianNoise(-0.1)


# -- BatchNormalization ----------------------------------------------------------------------
def _bn_numpy_eval(X, gamma, beta, mean, var, eps):
    return (X - mean) / np.sqrt(var + eps) * gamma + beta


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    n, d, steps, lr = 8, 5, 4, 0.1
    layer = _build(L.BatchNormalization(momentum=0.1, eps=1e-5), d)
    gamma, beta = rng.uniform(0.5, 2.0, d), rng.standard_normal(d)
    layer.set_weights([gamma, beta, np.zeros(d), np.ones(d)])
    bn = torch.nn.BatchNorm1d(d, momentum=0.1, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(gamma))
        bn.bias.copy_(torch.from_numpy(beta))
    for step in range(steps):
        X = rng.standard_normal((n, d)) * rng.uniform(0.5, 3.0, d) + rng.standard_normal(d)
        G = rng.standard_normal((n, d))
        bn.train()
        x = torch.tensor(X, requires_grad=True)
        y = bn(x)
        (y * torch.from_numpy(G)).sum().backward()
        Y = layer.forward(X, training=True)
        np.testing.assert_allclose(Y, y.detach().numpy(), rtol=1e-12, atol=1e-12)
        dX = layer.backward(G)
        np.testing.assert_allclose(dX, x.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.grads[0], bn.weight.grad.numpy(), rtol=1e-10,
                                   atol=1e-12)
        np.testing.assert_allclose(layer.grads[1], bn.bias.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.running_mean, bn.running_mean.numpy(), rtol=1e-12)
        np.testing.assert_allclose(layer.running_var, bn.running_var.numpy(), rtol=1e-12)
        # the same plain update on both
        with torch.no_grad():
            bn.weight -= lr * bn.weight.grad
            bn.bias -= lr * bn.bias.grad
            bn.weight.grad = None
            bn.bias.grad = None
        layer.gamma -= lr * layer.grads[0]
        layer.beta -= lr * layer.grads[1]
        bn.eval()
        Xe = rng.standard_normal((3, d))
        with torch.no_grad():
            ye = bn(torch.from_numpy(Xe)).numpy()
        np.testing.assert_allclose(layer.forward(Xe, training=False), ye, rtol=1e-12,
                                   atol=1e-12)


def test_batchnorm_running_statistics_unbiased():
    rng = np.random.default_rng(1)
    layer = _build(L.BatchNormalization(momentum=0.25), 3)
    X = rng.standard_normal((6, 3)) * 2 + 1
    layer.forward(X, training=True)
    np.testing.assert_allclose(layer.running_mean, 0.25 * X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(layer.running_var, 0.75 + 0.25 * X.var(axis=0, ddof=1),
                               rtol=1e-13)
    # inference uses them
    gamma, beta, mean, var = layer.get_weights()
    Xe = rng.standard_normal((4, 3))
    np.testing.assert_allclose(layer.forward(Xe), _bn_numpy_eval(Xe, gamma, beta, mean, var,
                                                                  1e-5), rtol=1e-13)
    # and training normalises by the batch's own (biased) statistics
    Y = layer.forward(X, training=True)
    np.testing.assert_allclose(Y, (X - X.mean(0)) / np.sqrt(X.var(0) + 1e-5), rtol=1e-12,
                               atol=1e-14)


def test_batchnorm_backward_by_finite_differences():
    rng = np.random.default_rng(2)
    layer = _build(L.BatchNormalization(), 4)
    layer.set_weights([rng.uniform(0.5, 2.0, 4), rng.standard_normal(4), np.zeros(4),
                       np.ones(4)])
    X = rng.standard_normal((6, 4)) * 1.5
    G = rng.standard_normal((6, 4))

    def loss():
        return float(np.sum(G * layer.forward(X, training=True)))

    layer.forward(X, training=True)
    dX = layer.backward(G).copy()
    dgamma, dbeta = (g.copy() for g in layer.grads)
    _assert_grad(dX, numeric_gradient(loss, X, FD_EPS))
    _assert_grad(dgamma, numeric_gradient(loss, layer.gamma, FD_EPS))
    _assert_grad(dbeta, numeric_gradient(loss, layer.beta, FD_EPS))


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_batchnorm_keeps_dtype(dt):
    rng = np.random.default_rng(3)
    layer = _build(L.BatchNormalization(), 4, dt)
    X = rng.standard_normal((5, 4)).astype(dt)
    assert layer.forward(X, training=True).dtype == dt
    assert layer.backward(X).dtype == dt
    assert layer.forward(X).dtype == dt
    assert all(w.dtype == dt for w in layer.get_weights())


def test_batchnorm_argument_checks():
    with pytest.raises(ValueError, match="momentum"):
        L.BatchNormalization(momentum=1.5)
    with pytest.raises(ValueError, match="eps"):
        L.BatchNormalization(eps=0.0)
    layer = _build(L.BatchNormalization(), 3)
    with pytest.raises(ValueError, match="at least 2 samples"):
        layer.forward(np.ones((1, 3)), training=True)


# -- PReLU -------------------------------------------------------------------------------------
def _prelu_case(seed=0):
    rng = np.random.default_rng(seed)
    layer = _build(L.PReLU(alpha_initializer=0.25), 6)
    np.testing.assert_array_equal(layer.alpha, np.full(6, 0.25))
    layer.set_weights([rng.uniform(-0.5, 0.8, 6)])
    X = _away_from_zero(rng, (7, 6))
    G = rng.standard_normal((7, 6))
    return layer, X, G


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_prelu_forward(dt):
    layer = _build(L.PReLU(), 3, dt)
    layer.set_weights([np.array([0.1, 0.5, -0.2])])
    X = np.array([[-2.0, -2.0, -2.0], [3.0, 0.5, 1.0]], dtype=dt)
    for training in (False, True):
        Y = layer.forward(X, training=training)
        assert Y.dtype == dt
        np.testing.assert_allclose(Y, [[-0.2, -1.0, 0.4], [3.0, 0.5, 1.0]], rtol=1e-6)
    assert layer.count_params() == 3


def test_prelu_gradients_by_finite_differences():
    layer, X, G = _prelu_case()

    def loss():
        return float(np.sum(G * layer.forward(X, training=False)))

    layer.forward(X, training=True)
    dX = layer.backward(G).copy()
    dalpha = layer.grads[0].copy()
    _assert_grad(dX, numeric_gradient(loss, X, FD_EPS))
    _assert_grad(dalpha, numeric_gradient(loss, layer.alpha, FD_EPS))
    np.testing.assert_allclose(dalpha, (G * np.minimum(X, 0)).sum(axis=0), rtol=1e-13)


def test_prelu_matches_torch():
    torch = pytest.importorskip("torch")
    layer, X, G = _prelu_case(seed=5)
    m = torch.nn.PReLU(num_parameters=6, init=0.25, dtype=torch.float64)
    with torch.no_grad():
        m.weight.copy_(torch.from_numpy(layer.alpha))
    x = torch.tensor(X, requires_grad=True)
    y = m(x)
    (y * torch.from_numpy(G)).sum().backward()
    np.testing.assert_allclose(layer.forward(X, training=True), y.detach().numpy(), rtol=1e-15)
    np.testing.assert_allclose(layer.backward(G), x.grad.numpy(), rtol=1e-14)
    np.testing.assert_allclose(layer.grads[0], m.weight.grad.numpy(), rtol=1e-12)


# -- Maxout ------------------------------------------------------------------------------------
def _maxout_case(units=3, pieces=4, n_in=5, batch=6):
    """A float64 Maxout layer and input whose winning pieces lead by at least 0.05."""
    for seed in range(200):
        rng = np.random.default_rng(seed)
        layer = _build(L.Maxout(units, pieces=pieces), n_in, np.float64, seed)
        layer.set_weights([rng.standard_normal((n_in, units * pieces)),
                           rng.standard_normal(units * pieces)])
        X = rng.standard_normal((batch, n_in))
        Z = np.sort((X @ layer.kernel + layer.bias).reshape(batch, units, pieces), axis=-1)
        if pieces == 1 or np.min(Z[..., -1] - Z[..., -2]) > 0.05:
            return layer, X, rng
    raise AssertionError("no tie-free draw")


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_maxout_forward(dt):
    rng = np.random.default_rng(0)
    layer = _build(L.Maxout(3, pieces=4, bias_initializer="random_normal"), 5, dt)
    assert layer.output_dim == 3
    assert layer.kernel.shape == (5, 12) and layer.bias.shape == (12,)
    X = rng.standard_normal((6, 5)).astype(dt)
    Z = X.astype(np.float64) @ layer.kernel + layer.bias
    expected = Z.reshape(6, 3, 4).max(axis=-1)
    for training in (False, True):
        Y = layer.forward(X, training=training)
        assert Y.shape == (6, 3) and Y.dtype == dt
        assert_close(Y, expected, dt, scale=10)


def test_maxout_groups_consecutive_columns():
    layer = _build(L.Maxout(2, pieces=3), 1)
    layer.set_weights([np.array([[1.0, 5.0, 2.0, -1.0, -3.0, -2.0]]), np.zeros(6)])
    np.testing.assert_array_equal(layer.forward(np.array([[1.0], [-1.0]])),
                                  [[5.0, -1.0], [-1.0, 3.0]])


@pytest.mark.parametrize("pieces", [1, 2, 4])
def test_maxout_gradients_by_finite_differences(pieces):
    layer, X, rng = _maxout_case(pieces=pieces)
    G = rng.standard_normal((X.shape[0], 3))

    def loss():
        return float(np.sum(G * layer.forward(X, training=False)))

    layer.forward(X, training=True)
    dX = layer.backward(G).copy()
    dW, db = (g.copy() for g in layer.grads)
    _assert_grad(dX, numeric_gradient(loss, X, FD_EPS))
    _assert_grad(dW, numeric_gradient(loss, layer.kernel, FD_EPS))
    _assert_grad(db, numeric_gradient(loss, layer.bias, FD_EPS))


def test_maxout_rejects_bad_pieces():
    for pieces in (0, 1.5, True):
        with pytest.raises(ValueError, match="pieces"):
            L.Maxout(3, pieces=pieces)


# -- Activation layer --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["softmax", "gelu", "elu", "swish"])
def test_activation_layer(name):
    rng = np.random.default_rng(0)
    layer = _build(L.Activation(name), 5)
    X = _away_from_zero(rng, (4, 5))
    G = rng.standard_normal((4, 5))
    act = activations.get(name)
    np.testing.assert_allclose(layer.forward(X), R.forward(act.kernel, X, act.alpha),
                               rtol=1e-13)

    def loss():
        return float(np.sum(G * layer.forward(X, training=False)))

    layer.forward(X, training=True)
    _assert_grad(layer.backward(G).copy(), numeric_gradient(loss, X, FD_EPS))
