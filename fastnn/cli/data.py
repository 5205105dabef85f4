"""Reading the command line's data files and inferring the task from the targets.

Data files
----------
``.npz``
    Arrays ``X`` (samples, features) and, for training and pruning, ``y``.
``.csv``
    A header row naming the columns; the label column (``--label``, default ``label``)
    holds the targets (numbers or names) and every other column is a feature: numbers,
    or categories with ``--categorical``. Missing cells are refused with the row and
    column named, unless ``--drop-missing`` or ``--impute mean`` (see `fastnn.tables`).
``.npy``
    Features only (for ``predict``).
"""
import os
import zipfile

import numpy as np

from fastnn.cli.errors import UsageError
from fastnn.tables import TableError, read_csv

MAX_INFERRED_CLASSES = 20
"""``--task auto`` takes integer targets with at most this many distinct values as classes."""


def read_data(path, label="label", need_y=True, missing="error", categorical=(),
              schema=None):
    """Features, targets and table schema from a .npz, .csv or .npy file.

    Parameters
    ----------
    path : str
    label : str
        The target column of a CSV file.
    need_y : bool
        Require targets. Without it, a CSV label column is dropped when present and the
        targets returned are None.
    missing, categorical, schema
        How a CSV file's missing cells and categories are read (`fastnn.tables.read_csv`);
        a `schema` (a model's `table`) also fixes the columns the file must have.

    Returns
    -------
    X : ndarray of shape (n, features)
    y : ndarray of shape (n,) or (n, outputs), or None
    schema : dict or None
        The CSV file's schema (None for .npz and .npy files).
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv", ".npy"):
        raise UsageError(f"{path}: unsupported data format {ext or '(no extension)'!r}; use "
                         f".npz (arrays X and y), .csv (a header row and a label column) or "
                         f".npy (features only)")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    table = None
    if ext == ".npz":
        X, y = _read_npz(path, need_y)
    elif ext == ".csv":
        try:
            X, y, table = read_csv(path, label, need_y, missing, categorical, schema)
        except TableError as exc:
            raise UsageError(str(exc)) from None
    else:
        if need_y:
            raise UsageError(f"{path}: a .npy file holds no targets; use .npz (X and y) or "
                             f".csv (with a label column)")
        X, y = _read_npy(path), None
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise UsageError(f"{path}: X has dtype {X.dtype}; expected numbers")
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise UsageError(f"{path}: X must be a non-empty 2-D array (samples, features), got "
                         f"shape {X.shape}")
    if y is not None:
        y = np.asarray(y)
        if y.dtype.kind not in "biufU":
            raise UsageError(f"{path}: y has dtype {y.dtype}; expected numbers or names")
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise UsageError(f"{path}: X has {X.shape[0]} samples but y has shape {y.shape}")
    return X, y, table


def _read_npz(path, need_y):
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UsageError(f"{path}: not a readable .npz archive ({exc})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise UsageError(f"{path}: a single .npy array, not an .npz archive of X and y")
    with archive:
        names = list(archive.files)
        wanted = ("X", "y") if need_y else ("X",)
        for name in wanted:
            if name not in names:
                raise UsageError(f"{path}: no array {name!r} (arrays in the file: "
                                 f"{', '.join(names) or 'none'})")
        try:
            return archive["X"], (archive["y"] if need_y else None)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            raise UsageError(f"{path}: cannot read its arrays ({exc})") from None


def _read_npy(path):
    try:
        X = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"{path}: not a readable .npy array ({exc})") from None
    if not isinstance(X, np.ndarray):
        raise UsageError(f"{path}: an .npz archive, not a single .npy array")
    return X


def infer_task(y):
    """"classification" for integer-valued targets with few distinct values, else
    "regression"."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dtype.kind in "Ub":
        return "classification"
    if y.ndim != 1:
        return "regression"
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            return "regression"
    distinct = np.unique(y).size
    few = distinct <= MAX_INFERRED_CLASSES and 2 * distinct <= y.size
    return "classification" if few else "regression"


def check_out(path, extensions=None):
    """UsageError unless `path` can be written: its folder exists (and its extension fits)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise UsageError(f"{path}: the folder {folder} does not exist")
    if os.path.isdir(path):
        raise UsageError(f"{path}: is a folder; expected a file name")
    ext = os.path.splitext(path)[1].lower()
    if extensions is not None and ext not in extensions:
        raise UsageError(f"{path}: unsupported output format {ext or '(no extension)'!r}; "
                         f"use {' or '.join(extensions)}")
