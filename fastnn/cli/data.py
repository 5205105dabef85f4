"""Reading the command line's data files and inferring the task from the targets.

Data files
----------
``.npz``
    Arrays ``X`` (samples, features) and, for training and pruning, ``y``.
``.csv``
    A header row naming the columns; the label column (``--label``, default ``label``)
    holds the targets and every other column is a feature. Numbers only.
``.npy``
    Features only (for ``predict``).
"""
import os
import zipfile

import numpy as np

from fastnn.cli.errors import UsageError

MAX_INFERRED_CLASSES = 20
"""``--task auto`` takes integer targets with at most this many distinct values as classes."""


def read_data(path, label="label", need_y=True):
    """Features and targets from a .npz, .csv or .npy file.

    Parameters
    ----------
    path : str
    label : str
        The target column of a CSV file.
    need_y : bool
        Require targets. Without it, a CSV label column is dropped when present and the
        targets returned are None.

    Returns
    -------
    X : ndarray of shape (n, features)
    y : ndarray of shape (n,) or (n, outputs), or None
    """
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".npz", ".csv", ".npy"):
        raise UsageError(f"{path}: unsupported data format {ext or '(no extension)'!r}; use "
                         f".npz (arrays X and y), .csv (a header row and a label column) or "
                         f".npy (features only)")
    if not os.path.isfile(path):
        raise UsageError(f"{path}: no such file")
    if ext == ".npz":
        X, y = _read_npz(path, need_y)
    elif ext == ".csv":
        X, y = _read_csv(path, label, need_y)
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
        if y.dtype.kind not in "biuf":
            raise UsageError(f"{path}: y has dtype {y.dtype}; expected numbers")
        if y.ndim not in (1, 2) or y.shape[0] != X.shape[0]:
            raise UsageError(f"{path}: X has {X.shape[0]} samples but y has shape {y.shape}")
    return X, y


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


def _read_csv(path, label, need_y):
    import warnings

    try:
        with open(path, newline="", encoding="utf-8") as f:
            header = f.readline()
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a UTF-8 text file") from None
    names = [name.strip().strip("\"'") for name in header.strip().split(",")]
    if names == [""]:
        raise UsageError(f"{path}: empty file; expected a header row naming the columns")
    if all(_is_number(name) for name in names):
        raise UsageError(f"{path}: the first row holds numbers; expected a header row "
                         f"naming the columns")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data"
            table = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2, dtype=np.float64,
                               encoding="utf-8")
    except ValueError as exc:
        raise UsageError(f"{path}: not a numeric table ({exc})") from None
    if table.shape[0] == 0:
        raise UsageError(f"{path}: no data rows below the header")
    if table.shape[1] != len(names):
        raise UsageError(f"{path}: the header names {len(names)} columns but the rows have "
                         f"{table.shape[1]}")
    if label in names:
        k = names.index(label)
        return np.delete(table, k, axis=1), (table[:, k] if need_y else None)
    if need_y:
        raise UsageError(f"{path}: no column {label!r} (columns: {', '.join(names)}); name "
                         f"the target column with --label")
    return table, None


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def infer_task(y):
    """"classification" for integer-valued targets with few distinct values, else
    "regression"."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        return "regression"
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
            return "regression"
    distinct = np.unique(y).size
    few = distinct <= MAX_INFERRED_CLASSES and 2 * distinct <= y.size
    return "classification" if few else "regression"


def class_indices(y, path):
    """(classes, indices): the sorted distinct labels and each sample's index among them."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UsageError(f"{path}: classification needs one label per sample; y has shape "
                         f"{y.shape}")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise UsageError(f"{path}: y contains NaN or infinite values")
    classes, index = np.unique(y, return_inverse=True)
    if classes.size < 2:
        raise UsageError(f"{path}: y holds a single class ({classes[0]!r}); classification "
                         f"needs at least two")
    return classes, index.astype(np.int64)


def label_text(value):
    value = value.item() if hasattr(value, "item") else value
    return str(int(value)) if float(value).is_integer() else repr(value)


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
