"""The 8x8 handwritten digits bundled with the package (see data/README.md)."""
import gzip
from importlib import resources

import numpy as np

__all__ = ["load_digits"]


def load_digits():
    """The 1,797 8x8 images of handwritten digits.

    From the UCI "Optical Recognition of Handwritten Digits" set (E. Alpaydin and
    C. Kaynak, 1998). Each image counts the "on" pixels of a 32x32 bitmap in 4x4
    blocks, so pixels are integers 0..16.

    Returns
    -------
    X : ndarray of shape (1797, 64), float64
        Images flattened row by row; ``X[i].reshape(8, 8)`` is image i.
    y : ndarray of shape (1797,), int64
        The digit, 0..9.
    """
    with resources.files(__package__).joinpath("data", "digits.csv.gz").open("rb") as raw:
        with gzip.open(raw, "rt") as text:
            table = np.loadtxt(text, delimiter=",", dtype=np.float64)
    return np.ascontiguousarray(table[:, :-1]), table[:, -1].astype(np.int64)
