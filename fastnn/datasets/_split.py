"""Random train/test split."""
import math
import numbers

import numpy as np

__all__ = ["train_test_split"]


def train_test_split(X, y, test_size=0.25, random_state=None, stratify=False):
    """Shuffle the rows of `X` and `y` together and split off a test part.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
    y : array-like of shape (n_samples, ...)
    test_size : float or int, default 0.25
        A fraction in (0, 1) (the test part has ``ceil(test_size * n_samples)`` rows)
        or a number of rows in [1, n_samples - 1].
    random_state : None, int or numpy.random.Generator
    stratify : bool, default False
        Split each class of `y` separately, ``round(fraction * n_class)`` rows of it
        going to the test part, so both parts keep the class proportions.

    Returns
    -------
    X_train, X_test, y_train, y_test : ndarray
    """
    X, y = np.asarray(X), np.asarray(y)
    n = len(X)
    if len(y) != n:
        raise ValueError(f"X and y have different lengths: {n} and {len(y)}")
    if isinstance(test_size, numbers.Integral) and not isinstance(test_size, bool):
        n_test = int(test_size)
    elif isinstance(test_size, numbers.Real) and 0.0 < test_size < 1.0:
        n_test = math.ceil(test_size * n)
    else:
        raise ValueError(f"test_size must be a fraction in (0, 1) or an int, got {test_size!r}")
    if not 1 <= n_test <= n - 1:
        raise ValueError(f"test_size gives {n_test} test rows of {n}; need 1..{n - 1}")
    rng = np.random.default_rng(random_state)
    order = rng.permutation(n)
    if stratify:
        fraction = n_test / n
        test = [rows[: round(fraction * len(rows))]
                for rows in (order[y[order] == c] for c in np.unique(y))]
        is_test = np.zeros(n, dtype=bool)
        is_test[np.concatenate(test)] = True
        test_rows, train_rows = order[is_test[order]], order[~is_test[order]]
    else:
        test_rows, train_rows = order[:n_test], order[n_test:]
    return X[train_rows], X[test_rows], y[train_rows], y[test_rows]
