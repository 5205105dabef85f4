import numpy as np
import pytest

from fastnn.datasets import (load_digits, make_circles, make_moons, make_spirals,
                             train_test_split)

GENERATORS = [make_circles, make_moons, make_spirals]


@pytest.mark.parametrize("make", GENERATORS)
@pytest.mark.parametrize("n", [0, 1, 101])
def test_shapes_dtypes_and_balance(make, n):
    X, y = make(n_samples=n, noise=0.1, random_state=0)
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    counts = np.bincount(y, minlength=2)
    if make is make_spirals:  # the first arms take the extra points
        assert np.array_equal(counts, [n - n // 2, n // 2])
    else:  # the second circle or moon does
        assert np.array_equal(counts, [n // 2, n - n // 2])


@pytest.mark.parametrize("make", GENERATORS)
def test_deterministic_with_random_state(make):
    a = make(n_samples=50, noise=0.2, random_state=7)
    b = make(n_samples=50, noise=0.2, random_state=7)
    c = make(n_samples=50, noise=0.2, random_state=8)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])
    g = make(n_samples=50, noise=0.2, random_state=np.random.default_rng(7))
    assert np.array_equal(a[0], g[0])


@pytest.mark.parametrize("make", GENERATORS)
def test_shuffle_keeps_pairs(make):
    X0, y0 = make(n_samples=40, shuffle=False)
    X1, y1 = make(n_samples=40, shuffle=True, random_state=3)
    assert not np.array_equal(y0, y1)
    order0, order1 = np.lexsort(X0.T), np.lexsort(X1.T)
    np.testing.assert_array_equal(X0[order0], X1[order1])
    np.testing.assert_array_equal(y0[order0], y1[order1])


def test_circles_radii_and_labels():
    X, y = make_circles(n_samples=200, factor=0.3, random_state=1)
    r = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(r[y == 0], 1.0, rtol=1e-12)
    np.testing.assert_allclose(r[y == 1], 0.3, rtol=1e-12)
    # evenly spaced angles: the outer circle's points sum to the origin
    np.testing.assert_allclose(X[y == 0].sum(axis=0), [0.0, 0.0], atol=1e-12)


def test_circles_noise_spreads_radii():
    X, y = make_circles(n_samples=2000, noise=0.05, random_state=2)
    r = np.hypot(X[:, 0], X[:, 1])
    assert abs(r[y == 0].mean() - 1.0) < 0.01
    assert 0.03 < r[y == 0].std() < 0.07


def test_moons_geometry():
    X, y = make_moons(n_samples=100, shuffle=False)
    upper, lower = X[y == 0], X[y == 1]
    np.testing.assert_allclose(np.hypot(*upper.T), 1.0, rtol=1e-12)
    np.testing.assert_allclose(np.hypot(lower[:, 0] - 1.0, lower[:, 1] - 0.5), 1.0,
                               rtol=1e-12)
    assert upper[:, 1].min() >= -1e-12 and lower[:, 1].max() <= 0.5 + 1e-12
    np.testing.assert_allclose(upper[[0, -1]], [[1.0, 0.0], [-1.0, 0.0]], atol=1e-12)


def test_spirals_geometry():
    X, y = make_spirals(n_samples=300, n_classes=3, turns=1.5, shuffle=False)
    assert np.array_equal(np.bincount(y), [100, 100, 100])
    for k in range(3):
        arm = X[y == k]
        t = np.arange(1, 101) / 100
        np.testing.assert_allclose(np.hypot(*arm.T), t, rtol=1e-12)
        theta = 2 * np.pi * (1.5 * t + k / 3)
        np.testing.assert_allclose(arm, np.column_stack([t * np.cos(theta),
                                                         t * np.sin(theta)]), atol=1e-12)


def test_spirals_uneven_counts():
    _, y = make_spirals(n_samples=11, n_classes=4)
    assert np.array_equal(np.bincount(y), [3, 3, 3, 2])


@pytest.mark.parametrize("call", [
    lambda: make_circles(factor=1.0), lambda: make_moons(noise=-0.1),
    lambda: make_spirals(n_classes=0), lambda: make_spirals(turns=0),
    lambda: make_circles(n_samples=-1), lambda: make_moons(n_samples=2.5),
])
def test_bad_arguments(call):
    with pytest.raises(ValueError):
        call()


def test_load_digits():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 16.0
    assert np.array_equal(X, np.round(X))
    counts = np.bincount(y)
    assert counts.size == 10 and counts.sum() == 1797
    assert counts.min() >= 174 and counts.max() <= 183
    assert counts[0] == 178 and counts[8] == 174
    # the first image is a zero: an empty middle, ink on both sides
    first = X[0].reshape(8, 8)
    assert y[0] == 0 and first[4, 3:5].sum() == 0 and first[4, 1] > 0 and first[4, 6] > 0


def test_train_test_split():
    X = np.arange(40).reshape(20, 2)
    y = np.arange(20)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0)
    assert X_tr.shape == (15, 2) and X_te.shape == (5, 2)
    np.testing.assert_array_equal(X_te[:, 0], 2 * y_te)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_tr, y_te])), y)
    again = train_test_split(X, y, test_size=0.25, random_state=0)
    np.testing.assert_array_equal(again[3], y_te)
    assert len(train_test_split(X, y, test_size=3)[1]) == 3


def test_train_test_split_stratified():
    y = np.repeat([0, 1, 2], [40, 20, 40])
    X = np.arange(100.0)[:, None]
    _, X_te, _, y_te = train_test_split(X, y, test_size=0.2, random_state=4, stratify=True)
    assert np.array_equal(np.bincount(y_te), [8, 4, 8])
    np.testing.assert_array_equal(y[X_te[:, 0].astype(int)], y_te)


@pytest.mark.parametrize("size", [0.0, 1.0, 0, 20, -1])
def test_train_test_split_bad_size(size):
    with pytest.raises(ValueError, match="test"):
        train_test_split(np.zeros((20, 1)), np.zeros(20), test_size=size)
