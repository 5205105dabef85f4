"""Augmentation transforms and fit(..., augment=...)."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import augment as A
from fastnn import layers as L
from fastnn.experiments import augmentation_experiment


def _images(n=5, h=6, w=7, seed=0):
    return np.random.default_rng(seed).random((n, h * w))


def test_identity_settings_change_nothing():
    X = _images()
    for t in (A.RandomAffine((6, 7)), A.RandomFlip((6, 7), horizontal=False),
              A.GaussianNoise(0.0)):
        np.testing.assert_allclose(t(X, np.random.default_rng(0)), X, atol=1e-12)


def test_whole_pixel_shift_moves_the_image_and_fills_zeros():
    X = _images(1)
    t = A.RandomShift((6, 7), pixels=1.0)

    class Fixed:  # an rng whose uniform draws are the extremes
        def uniform(self, low, high, size):
            return np.full(size, high)

    out = t(X, Fixed()).reshape(6, 7)
    img = X.reshape(6, 7)
    np.testing.assert_allclose(out[1:, 1:], img[:-1, :-1], atol=1e-12)
    assert np.all(out[0] == 0) and np.all(out[:, 0] == 0)


def test_quarter_turn_of_a_square_image_is_rot90():
    X = _images(3, 5, 5)

    class Quarter:
        def uniform(self, low, high, size):
            return np.full(size, high)

    out = A.RandomRotation((5, 5), 90.0)(X, Quarter()).reshape(3, 5, 5)
    turned = [np.rot90(x.reshape(5, 5), k=1) for x in X]
    ok = [np.allclose(o, t, atol=1e-9) or np.allclose(o, np.rot90(t, 2), atol=1e-9)
          for o, t in zip(out, turned)]
    assert all(ok)


def test_flip_and_channels():
    X = np.arange(2 * 2 * 3 * 2, dtype=float).reshape(2, -1)  # two 2x3 images, 2 channels
    always = np.random.default_rng(0)
    flip = A.RandomFlip((2, 3, 2), horizontal=True)
    out = flip(X, always).reshape(2, 2, 3, 2)
    images = X.reshape(2, 2, 3, 2)
    for o, x in zip(out, images):
        assert np.array_equal(o, x) or np.array_equal(o, x[:, ::-1])
    with pytest.raises(ValueError, match=r"images of shape \(8, 8, 1\) \(64 values\), but "
                                         r"the inputs have 12"):
        A.RandomFlip((8, 8))(X, always)


def test_noise_and_determinism():
    X = np.zeros((2000, 10), np.float32)
    out = A.GaussianNoise(0.3)(X, np.random.default_rng(0))
    assert out.dtype == np.float32 and abs(out.std() - 0.3) < 0.01
    t = A.Compose([A.RandomShift((6, 7), 1.5), A.RandomZoom((6, 7), 0.2)])
    X = _images(4)
    np.testing.assert_array_equal(t(X, np.random.default_rng(3)), t(X, np.random.default_rng(3)))
    with pytest.raises(ValueError, match="stddev"):
        A.GaussianNoise(-1)


def test_fit_augments_training_batches_only():
    seen = []

    def spy(X, rng):
        seen.append(X.shape[0])
        return X

    X = np.random.default_rng(0).random((40, 4))
    y = np.arange(40) % 2
    model = fn.Sequential([L.Dense(2, activation="softmax")], seed=0)
    model.compile("sgd", "sparse_categorical_crossentropy")
    model.fit(X, y, epochs=2, batch_size=10, verbose=0, validation_split=0.25, augment=spy)
    assert seen == [1] + [10, 10, 10] * 2  # one check row, then 30 training rows per epoch
    with pytest.raises(ValueError, match="images of shape"):
        model.fit(X, y, epochs=1, verbose=0, augment=A.RandomFlip((8, 8)))


def test_augmentation_experiment_shows_relevant_helps_and_irrelevant_underfits():
    rows = {r["augmentation"]: r for r in augmentation_experiment(
        ("none", "shift 1px + rotate 10deg", "rotate 180deg (irrelevant)"), epochs=15)}
    none, shift, turn = (rows[k] for k in ("none", "shift 1px + rotate 10deg",
                                           "rotate 180deg (irrelevant)"))
    assert shift["moved_test_accuracy"] > none["moved_test_accuracy"] + 0.2
    assert turn["train_accuracy"] < none["train_accuracy"] - 0.05  # underfits
    assert turn["test_accuracy"] < none["test_accuracy"] - 0.03
