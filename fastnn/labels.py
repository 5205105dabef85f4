"""Class labels: validate them, turn targets into output units and outputs into labels.

A classifier's labels are a 1-D array ``classes`` whose entry i names output unit i;
a single sigmoid unit has two labels, the negative one then the positive one. Labels
are all strings, all booleans, or all numbers (integers or floats), and unique.
"""
import numbers

import numpy as np

__all__ = ["n_classes", "check_classes", "encode", "infer", "decode", "to_json", "from_json"]


def n_classes(output_dim):
    """Labels of an output of `output_dim` units: 2 for one (sigmoid) unit, else one per unit."""
    return 2 if output_dim == 1 else int(output_dim)


def _kind(value):
    if isinstance(value, (bool, np.bool_)):
        return "bool"
    if isinstance(value, (str, np.str_)):
        return "str"
    if isinstance(value, numbers.Real):
        return "number"
    return None


def check_classes(classes, output_dim=None, name="classes"):
    """`classes` as a read-only 1-D array of unique labels; ValueError otherwise.

    Parameters
    ----------
    classes : sequence of str, bool, int or float
        All of one kind; floats finite.
    output_dim : int, optional
        When given, the number of labels must be ``n_classes(output_dim)``.
    """
    values = np.asarray(classes, dtype=object) if not isinstance(classes, np.ndarray) \
        else classes
    if values.ndim != 1 or values.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of labels, got shape "
                         f"{values.shape}")
    kinds = {_kind(v) for v in values.tolist()}
    if None in kinds or len(kinds) != 1:
        raise ValueError(f"{name} must all be strings, all booleans or all numbers; got "
                         f"{sorted({type(v).__name__ for v in values.tolist()})}")
    (kind,) = kinds
    dtype = {"str": str, "bool": bool}.get(kind)
    if dtype is None:
        dtype = np.int64 if all(isinstance(v, numbers.Integral) for v in values.tolist()) \
            else np.float64
    try:
        out = np.array(values.tolist(), dtype=dtype)
    except OverflowError:
        raise ValueError(f"{name} holds a number too large for {np.dtype(dtype).name}: "
                         f"{values.tolist()}") from None
    if out.dtype.kind == "f" and not np.all(np.isfinite(out)):
        raise ValueError(f"{name} must be finite, got {values.tolist()}")
    if np.unique(out).shape[0] != out.shape[0]:
        raise ValueError(f"{name} must be unique, got {values.tolist()}")
    if output_dim is not None and out.shape[0] != n_classes(output_dim):
        raise ValueError(f"{name} has {out.shape[0]} labels but an output of {output_dim} "
                         f"unit{'s' if output_dim > 1 else ''} takes {n_classes(output_dim)}")
    out.setflags(write=False)
    return out


def _as_labels(y, name):
    """y as a 1-D array of str, bool or real numbers (NaN refused)."""
    y = np.asarray(y)
    if y.dtype == object:
        kinds = {_kind(v) for v in y.tolist()}
        if None in kinds or len(kinds) != 1:
            raise ValueError(f"{name} must hold labels of one kind (strings, booleans or "
                             f"numbers), got {sorted({type(v).__name__ for v in y.tolist()})}")
        y = np.array(y.tolist())
    if y.dtype.kind not in "Ubiuf":
        raise TypeError(f"{name} has dtype {y.dtype}; expected class labels")
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return y


def encode(y, classes, name="y"):
    """Index in `classes` of each label of `y` (int64); ValueError naming unknown labels."""
    y = _as_labels(y, name)
    if (y.dtype.kind == "U") != (classes.dtype.kind == "U"):
        what = "strings" if classes.dtype.kind == "U" else "numbers"
        raise ValueError(f"{name} holds {'strings' if y.dtype.kind == 'U' else 'numbers'} but "
                         f"the model's classes are {what}: {classes.tolist()}")
    k = classes.shape[0]
    if y.dtype.kind in "iu" and classes.dtype.kind in "iu" and np.array_equal(
            classes, np.arange(k)) and (y.size == 0 or (y.min() >= 0 and y.max() < k)):
        return y.astype(np.int64)  # the classes are their own indices (12,800 labels: 0.05 ms, not 0.3)
    order = np.argsort(classes, kind="stable")
    ordered = classes[order]
    pos = np.clip(np.searchsorted(ordered, y), 0, ordered.shape[0] - 1)
    known = ordered[pos] == y
    if not np.all(known):
        unknown = np.unique(y[~known])
        shown = ", ".join(repr(v) for v in unknown[:5].tolist())
        raise ValueError(f"{name} holds {unknown.shape[0]} label(s) that are not among the "
                         f"model's classes {classes.tolist()}: {shown}"
                         f"{', ...' if unknown.shape[0] > 5 else ''}")
    return order[pos].astype(np.int64)


def infer(y, output_dim, name="y"):
    """(classes, indices) for labels `y` of a model whose classes are not set yet.

    Numbers that are all whole and in ``[0, k)`` (k = ``n_classes(output_dim)``) are
    taken as indices already: classes ``0 .. k-1``. Otherwise the sorted distinct
    labels are the classes, and there must be exactly k of them.
    """
    y = _as_labels(y, name)
    k = n_classes(output_dim)
    if y.dtype.kind in "iuf" and y.size and np.all(np.mod(y, 1) == 0) \
            and y.min() >= 0 and y.max() < k:
        return check_classes(np.arange(k)), y.astype(np.int64)
    classes, index = np.unique(y, return_inverse=True)
    if classes.shape[0] != k:
        raise ValueError(f"{name} holds {classes.shape[0]} distinct labels but the output of "
                         f"{output_dim} unit{'s' if output_dim > 1 else ''} takes {k}; make the "
                         f"output fit the labels or set model.classes")
    return check_classes(classes), index.reshape(-1).astype(np.int64)


def decode(Y, classes):
    """Labels of outputs `Y` (n, units): argmax, or p > 0.5 for one unit; indices without classes."""
    index = (Y[:, 0] > 0.5).astype(np.int64) if Y.shape[1] == 1 else np.argmax(Y, axis=1)
    return index if classes is None else classes[index]


def to_json(classes):
    """The labels as a JSON-ready list of str, bool, int or float."""
    return None if classes is None else classes.tolist()


def from_json(value, output_dim):
    """Labels read from a file's metadata, validated; ValueError on any problem."""
    if value is None:
        return None
    if not isinstance(value, list) or not all(
            isinstance(v, (str, bool, int, float)) for v in value):
        raise ValueError("classes must be a list of strings, booleans or numbers")
    return check_classes(value, output_dim)


def as_targets(index, form, output_dim, dtype):
    """Class indices as the targets a loss reads: ``"index"`` (int64), ``"onehot"`` rows,
    or ``"binary"`` (n, 1) zeros and ones."""
    if form == "index":
        return index
    if form == "onehot":
        return np.ascontiguousarray(np.eye(output_dim, dtype=dtype)[index])
    return index.astype(dtype)[:, None]


def are_soft(y):
    """True for float targets that are not all whole numbers (probabilities, not labels)."""
    y = np.asarray(y)
    return y.dtype.kind == "f" and not np.all(np.mod(y[np.isfinite(y)], 1) == 0)
