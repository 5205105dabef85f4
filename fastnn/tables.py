"""Tables in, arrays out: reading a CSV table by its column names, with missing values
and categorical columns handled the same way at training and at prediction.

A *schema* (a JSON-ready dict) records how a table became the model's input, so that a
model reads later tables exactly as it read its training table:

``columns``
    The table's feature columns, in order (the label column excluded).
``label``
    The name of the label column, or None.
``categorical``
    ``{column: [category, ...]}``: each such column becomes one 0/1 feature per
    category (one-hot), in the order of its categories.
``impute``
    ``{column: value}``: a missing cell of a numeric column takes this value (the
    column's mean on the training table); None when missing cells are refused.

Cells that count as missing: empty, ``NA``, ``N/A``, ``NaN``, ``nan``, ``null``, ``?``.
Rows and columns in messages are counted from 1, as a spreadsheet shows them (the
header is row 1).
"""
import csv
import math

import numpy as np

__all__ = ["MISSING", "read_csv", "check_schema", "feature_names"]

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
ADVICE = ("use --drop-missing to skip rows with missing values, --impute mean to fill them "
          "with the column's mean, or --categorical {col} if the column holds categories")


class TableError(ValueError):
    """A table that cannot be read as asked; the message names the cell and what to do."""


def _number(text):
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _rows(path):
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError:
        raise TableError(f"{path}: not a UTF-8 text file") from None
    rows = [r for r in rows if r and any(c.strip() for c in r)]
    if not rows:
        raise TableError(f"{path}: empty file; expected a header row naming the columns")
    header = [c.strip() for c in rows[0]]
    if all(_number(c) is not None for c in header):
        raise TableError(f"{path}: the first row holds numbers; expected a header row naming "
                         f"the columns")
    if len(set(header)) != len(header):
        raise TableError(f"{path}: the header names a column twice: {header}")
    body = rows[1:]
    if not body:
        raise TableError(f"{path}: no data rows below the header")
    for i, row in enumerate(body):
        if len(row) != len(header):
            raise TableError(f"{path}: row {i + 2} has {len(row)} cells but the header names "
                             f"{len(header)} columns")
    return header, [[c.strip() for c in row] for row in body]


def read_csv(path, label="label", need_y=True, missing="error", categorical=(), schema=None):
    """Features, targets and schema of a CSV table.

    Parameters
    ----------
    path : str
    label : str
        The label column; required when `need_y`, else dropped when present.
    missing : {"error", "drop", "mean"}
        What a missing cell does: stop with an error naming it, drop its row, or (numeric
        columns) take the column's mean. Ignored when `schema` is given (its ``impute``
        decides, and "drop" still drops).
    categorical : sequence of str
        Columns to one-hot encode (categories: the sorted distinct values).
    schema : dict, optional
        The schema of the model's training table: the columns must match it (by name;
        the label column may be there or not) and it fixes categories and imputation.

    Returns
    -------
    X : ndarray (n, features) float64
    y : ndarray (n,) of numbers or strings, or None
    schema : dict
    """
    header, body = _rows(path)
    if schema is not None:
        label = schema.get("label") or label
    if label in header:
        k = header.index(label)
        labels = [row[k] for row in body]
        columns = [c for c in header if c != label]
    elif need_y:
        raise TableError(f"{path}: no column {label!r} (columns: {', '.join(header)}); name the "
                         f"target column with --label")
    else:
        labels, columns = None, list(header)
    if not columns:
        raise TableError(f"{path}: no feature columns, only the label column {label!r}")
    if schema is not None:
        _same_columns(path, columns, schema["columns"])
        categories = schema["categorical"]
        impute = schema["impute"]
    else:
        unknown = [c for c in categorical if c not in columns]
        if unknown:
            raise TableError(f"{path}: --categorical names no such column: {', '.join(unknown)}"
                             f" (columns: {', '.join(columns)})")
        categories = {c: sorted({row[header.index(c)] for row in body} - {""})
                      for c in categorical}
        impute = {} if missing == "mean" else None
    keep = np.ones(len(body), dtype=bool)
    values = {}
    for name in columns:
        j = header.index(name)
        if name in categories:
            continue
        col = np.empty(len(body))
        for i, row in enumerate(body):
            text = row[j]
            value = _number(text)
            if value is None:
                if text.lower() not in MISSING:
                    raise TableError(f"{path}: row {i + 2}, column {j + 1} ({name!r}) holds the "
                                     f"text {text!r}, not a number; "
                                     + ADVICE.format(col=name))
                if missing == "drop":
                    keep[i] = False
                elif impute is None:
                    what = "an empty cell" if text == "" else f"the missing value {text!r}"
                    raise TableError(f"{path}: row {i + 2}, column {j + 1} ({name!r}) holds "
                                     f"{what}; " + ADVICE.format(col=name))
                value = math.nan
            col[i] = value
        values[name] = col
    for name in categories:
        j = header.index(name)
        for i, row in enumerate(body):
            if row[j].lower() in MISSING and row[j] not in categories[name]:
                if missing == "drop":
                    keep[i] = False
                    continue
                raise TableError(f"{path}: row {i + 2}, column {j + 1} ({name!r}) is missing a "
                                 f"category; use --drop-missing to skip such rows")
            if row[j] not in categories[name]:
                raise TableError(f"{path}: row {i + 2}, column {j + 1} ({name!r}) holds the "
                                 f"category {row[j]!r}, which the model was not trained on "
                                 f"(known: {', '.join(categories[name])})")
    if labels is not None and need_y:
        k = header.index(label)
        for i, text in enumerate(labels):
            if text.lower() in MISSING:
                if missing == "drop":
                    keep[i] = False
                else:
                    raise TableError(f"{path}: row {i + 2}, column {k + 1} ({label!r}) has no "
                                     f"label; use --drop-missing to skip such rows")
    if not keep.any():
        raise TableError(f"{path}: no rows left after dropping those with missing values")
    if impute is not None and schema is None:
        for name, col in values.items():
            good = col[keep & np.isfinite(col)]
            impute[name] = float(good.mean()) if good.size else 0.0
    parts = []
    for name in columns:
        if name in categories:
            j = header.index(name)
            cells = np.array([row[j] for row in body], dtype=object)[keep]
            parts.append(np.stack([cells == c for c in categories[name]], axis=1).astype(float))
        else:
            col = values[name][keep]
            if impute is not None:
                col = np.where(np.isnan(col), impute.get(name, 0.0), col)
            parts.append(col[:, None])
    X = np.concatenate(parts, axis=1)
    y = None
    if labels is not None and need_y:
        y = _labels([t for t, k in zip(labels, keep) if k])
    schema = {"columns": columns, "label": label, "categorical": categories, "impute": impute}
    return X, y, schema


def _labels(texts):
    """Labels as numbers when every one is a number, else as strings."""
    numbers = [_number(t) for t in texts]
    if all(v is not None for v in numbers):
        y = np.array(numbers)
        return y.astype(np.int64) if np.all(y == np.round(y)) else y
    return np.array(texts)


def _same_columns(path, columns, expected):
    if columns == expected:
        return
    missing = [c for c in expected if c not in columns]
    extra = [c for c in columns if c not in expected]
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    if not parts:
        parts.append(f"the order differs: expected {', '.join(expected)}")
    raise TableError(f"{path}: the columns do not match the model's ({'; '.join(parts)})")


def feature_names(schema):
    """The model's input features: numeric columns by name, categories as ``col=value``."""
    names = []
    for name in schema["columns"]:
        if name in schema["categorical"]:
            names += [f"{name}={c}" for c in schema["categorical"][name]]
        else:
            names.append(name)
    return names


def check_schema(schema, n_features):
    """`schema` unless malformed or not of `n_features` features (ValueError)."""
    if not isinstance(schema, dict) or set(schema) != {"columns", "label", "categorical",
                                                       "impute"}:
        raise ValueError("a table schema has keys columns, label, categorical and impute")
    columns, label = schema["columns"], schema["label"]
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns) \
            or len(set(columns)) != len(columns):
        raise ValueError("columns must be a list of unique names")
    if label is not None and (not isinstance(label, str) or label in columns):
        raise ValueError("label must be a name that is not a feature column")
    cats = schema["categorical"]
    if not isinstance(cats, dict) or not all(
            k in columns and isinstance(v, list) and v and all(isinstance(c, str) for c in v)
            and len(set(v)) == len(v) for k, v in cats.items()):
        raise ValueError("categorical must map feature columns to lists of unique categories")
    impute = schema["impute"]
    if impute is not None and not (isinstance(impute, dict) and all(
            k in columns and k not in cats and isinstance(v, (int, float))
            and not isinstance(v, bool) and math.isfinite(v) for k, v in impute.items())):
        raise ValueError("impute must map numeric columns to finite numbers")
    if len(feature_names(schema)) != n_features:
        raise ValueError(f"the schema gives {len(feature_names(schema))} features but the "
                         f"model takes {n_features}")
    return schema
