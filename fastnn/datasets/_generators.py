"""Two-dimensional toy classification sets.

Each generator places points exactly on curves, then (optionally) shuffles them and adds
Gaussian noise of standard deviation `noise` to every coordinate. All take
`random_state`: None, an int seed or a ``numpy.random.Generator``.
"""

import numpy as np

from fastnn._validation import check_int, check_real

__all__ = ["make_circles", "make_moons", "make_spirals"]


def make_circles(n_samples=100, noise=0.0, factor=0.8, shuffle=True, random_state=None):
    """Two concentric circles centred on the origin.

    Parameters
    ----------
    n_samples : int, default 100
        Total number of points; the outer circle gets ``n_samples // 2``.
    noise : float, default 0.0
        Standard deviation of the Gaussian noise added to each coordinate.
    factor : float, default 0.8
        Radius of the inner circle, in [0, 1).
    shuffle : bool, default True
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        0 for the outer circle (radius 1), 1 for the inner one (radius `factor`).
    """
    n_samples = check_int(n_samples, "n_samples", low=0)
    factor = check_real(factor, "factor", 0.0, 1.0, closed="left")
    n_outer = n_samples // 2
    parts = [(1.0, n_outer), (factor, n_samples - n_outer)]
    X = np.concatenate([radius * _unit_circle(n, endpoint=False, stop=2 * np.pi)
                        for radius, n in parts])
    y = np.repeat(np.arange(2, dtype=np.int64), [n for _, n in parts])
    return _finish(X, y, noise, shuffle, random_state)


def make_moons(n_samples=100, noise=0.0, shuffle=True, random_state=None):
    """Two interleaving half circles of radius 1.

    The upper half circle (label 0) is centred on (0, 0), the lower one (label 1) on
    (1, 0.5).

    Parameters
    ----------
    n_samples : int, default 100
        Total number of points; the upper moon gets ``n_samples // 2``.
    noise : float, default 0.0
        Standard deviation of the Gaussian noise added to each coordinate.
    shuffle : bool, default True
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
    """
    n_samples = check_int(n_samples, "n_samples", low=0)
    n_upper = n_samples // 2
    upper = _unit_circle(n_upper, endpoint=True, stop=np.pi)
    lower = np.array([1.0, 0.5]) - _unit_circle(n_samples - n_upper, endpoint=True,
                                                stop=np.pi)
    X = np.concatenate([upper, lower])
    y = np.repeat(np.arange(2, dtype=np.int64), [n_upper, n_samples - n_upper])
    return _finish(X, y, noise, shuffle, random_state)


def make_spirals(n_samples=100, n_classes=2, noise=0.0, turns=1.0, shuffle=True,
                 random_state=None):
    """Interleaved spiral arms, one per class, winding out from the origin.

    Arm k is the curve ``r = t``, ``theta = 2 pi (turns * t + k / n_classes)`` for
    ``t`` in (0, 1]: it reaches radius 1 after `turns` turns, and the arms are
    rotated copies of one another, evenly spaced in angle. Each arm gets points at
    evenly spaced ``t = 1/m, 2/m, ..., 1`` (m points on the arm); the counts differ by
    at most one, the first ``n_samples % n_classes`` arms getting the extra point.

    Parameters
    ----------
    n_samples : int, default 100
        Total number of points.
    n_classes : int, default 2
        Number of arms (classes), at least 1.
    noise : float, default 0.0
        Standard deviation of the Gaussian noise added to each coordinate.
    turns : float, default 1.0
        Positive; turns each arm makes around the origin.
    shuffle : bool, default True
    random_state : None, int or numpy.random.Generator

    Returns
    -------
    X : ndarray of shape (n_samples, 2), float64
    y : ndarray of shape (n_samples,), int64
        The arm of each point, in ``0 .. n_classes - 1``.
    """
    n_samples = check_int(n_samples, "n_samples", low=0)
    n_classes = check_int(n_classes, "n_classes", low=1)
    turns = check_real(turns, "turns", low=0.0, closed="neither")
    counts = np.full(n_classes, n_samples // n_classes)
    counts[: n_samples % n_classes] += 1
    arms = []
    for k, m in enumerate(counts):
        t = np.arange(1, m + 1) / max(m, 1)
        theta = 2 * np.pi * (turns * t + k / n_classes)
        arms.append(np.column_stack([t * np.cos(theta), t * np.sin(theta)]))
    X = np.concatenate(arms) if arms else np.empty((0, 2))
    y = np.repeat(np.arange(n_classes, dtype=np.int64), counts)
    return _finish(X, y, noise, shuffle, random_state)


def _unit_circle(n, endpoint, stop):
    """n points ``(cos a, sin a)`` for a evenly spaced on [0, stop]."""
    angle = np.linspace(0.0, stop, n, endpoint=endpoint)
    return np.column_stack([np.cos(angle), np.sin(angle)])


def _finish(X, y, noise, shuffle, random_state):
    noise = check_real(noise, "noise", low=0.0)
    rng = np.random.default_rng(random_state)
    if shuffle:
        order = rng.permutation(len(y))
        X, y = X[order], y[order]
    if noise > 0:
        X = X + rng.normal(0.0, noise, size=X.shape)
    return np.ascontiguousarray(X, dtype=np.float64), y
