"""The softmax cross-entropy kernel against its numpy twin, in each dtype."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conftest import DTYPES, assert_close, numeric_gradient
from fastnn._kernels import losses as K
from fastnn._kernels.reference import activations as RA
from fastnn._kernels.reference import losses as R


def _problem(dt, n, k, seed, spread=3.0):
    rng = np.random.default_rng(seed)
    z = (rng.standard_normal((n, k)) * spread).astype(dt)
    p = RA.forward("softmax", z.astype(np.float64)).astype(dt)
    return rng, z, p


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("form", ["labels", "targets"])
@pytest.mark.parametrize("weighted", [False, True])
@settings(max_examples=15, deadline=None)
@given(shape=st.tuples(st.integers(1, 9), st.integers(1, 23)), seed=st.integers(0, 2**31 - 1))
def test_softmax_cross_entropy_matches_twin(dt, form, weighted, shape, seed):
    n, k = shape
    rng, z, p = _problem(dt, n, k, seed)
    kwargs = {"weights": rng.random(n) if weighted else None}
    if form == "labels":
        kwargs["labels"] = rng.integers(0, k, n)
    else:
        t = rng.random((n, k))
        kwargs["targets"] = (t / t.sum(axis=1, keepdims=True)).astype(dt)
    value, grad = K.softmax_cross_entropy(z, p, **kwargs)
    want_value, want_grad = R.softmax_cross_entropy(z.astype(np.float64), p.astype(np.float64),
                                                    **kwargs)
    assert grad.dtype == dt and grad.shape == (n, k)
    assert_close(grad, want_grad, dt, scale=10)
    assert_close(value, want_value, dt, scale=100)


@pytest.mark.parametrize("dt", DTYPES, ids=["float32", "float64"])
def test_saturated_logits_give_a_finite_loss(dt):
    z = np.array([[1e4, -1e4, 0.0], [-3e3, 3e3, 2.9e3]], dtype=dt)
    p = RA.forward("softmax", z.astype(np.float64)).astype(dt)
    value, grad = K.softmax_cross_entropy(z, p, labels=np.array([1, 0]))
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx((2e4 + 6e3) / 2, rel=1e-6)


def test_gradient_matches_finite_differences():
    rng, z, _ = _problem(np.float64, 4, 5, 0)
    labels, w = rng.integers(0, 5, 4), rng.random(4)

    def loss(zz):
        pp = RA.forward("softmax", zz)
        return K.softmax_cross_entropy(zz, pp, labels=labels, weights=w)[0]

    _, grad = K.softmax_cross_entropy(z, RA.forward("softmax", z), labels=labels, weights=w)
    numeric = numeric_gradient(lambda: loss(z), z)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_arguments_are_checked():
    z = np.zeros((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="exactly one"):
        K.softmax_cross_entropy(z, z)
    with pytest.raises(ValueError, match="probs"):
        K.softmax_cross_entropy(z, z[:2], labels=[0, 1, 2])
    with pytest.raises(ValueError, match="labels"):
        K.softmax_cross_entropy(z, z, labels=[0.5, 1, 2])
    with pytest.raises(IndexError, match="row 1"):
        K.softmax_cross_entropy(z, z, labels=[0, 4, 2])
    with pytest.raises(IndexError, match="row 0"):
        K.softmax_cross_entropy(z, z, labels=[-1, 0, 0])
    with pytest.raises(ValueError, match="weights"):
        K.softmax_cross_entropy(z, z, labels=[0, 1, 2], weights=np.ones(2))
