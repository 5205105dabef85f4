"""Fuzz targets: one function per reader, each taking the bytes of one input.

A target passes an input when the reader either refuses it with its documented error
(`fastnn.ModelFormatError`, or the command line's `UsageError`) or accepts it and the
result then works: a loaded model or engine predicts on valid input, with output of the
right shape, finite when its weights and parameters are moderate. Each input must take
under `TIME_LIMIT` seconds and raise the process's peak memory by under `MEMORY_LIMIT`
bytes over what it was once the seeds had run. Anything else raises `Finding`.
"""
import os
import resource
import tempfile
import time

import numpy as np

import fastnn
from fastnn.cli import UsageError, read_data

TIME_LIMIT = 2.0  # CPU seconds
MEMORY_LIMIT = 200 << 20
# Outputs must be finite when every weight and every number in the layer configs is at
# most this large, and every BatchNormalization eps at least MIN_EPS.
MODERATE = 100.0
MIN_EPS = 1e-8


class Finding(AssertionError):
    """An input broke a reader's contract."""


def _peak_rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


_baseline = [None]


def set_baseline():
    """Take the current peak memory as the reference of `MEMORY_LIMIT`."""
    _baseline[0] = _peak_rss()


def _guarded(check):
    def target(data):
        start = time.process_time()  # CPU time: the machine may be shared
        check(data)
        elapsed = time.process_time() - start
        if elapsed > TIME_LIMIT:
            raise Finding(f"{check.__name__} took {elapsed:.2f} s on an input of "
                          f"{len(data)} bytes")
        if _baseline[0] is not None and _peak_rss() - _baseline[0] > MEMORY_LIMIT:
            raise Finding(f"{check.__name__} raised peak memory by "
                          f"{(_peak_rss() - _baseline[0]) >> 20} MB on an input of "
                          f"{len(data)} bytes")
    target.__name__ = check.__name__
    return target


def _input(n_in, dtype):
    rng = np.random.default_rng(len(str(n_in)))
    return rng.standard_normal((3, n_in)).astype(dtype)


def _moderate(values, config_numbers, eps):
    return all(np.all(np.abs(v) <= MODERATE) for v in values) \
        and all(abs(x) <= MODERATE for x in config_numbers) and all(e >= MIN_EPS for e in eps)


def _numbers(value):
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, (list, tuple)):
        return [x for v in value for x in _numbers(v)]
    return []


@_guarded
def load_model(data):
    try:
        model = fastnn.model_from_bytes(data)
    except fastnn.ModelFormatError:
        return
    config = model.get_config()
    Y = model.predict(_input(model.input_dim, model.dtype))
    if Y.shape != (3, model.output_dim) or Y.dtype != model.dtype:
        raise Finding(f"predict gave {Y.dtype} {Y.shape}, expected (3, {model.output_dim})")
    eps = [layer.eps for layer in model.layers if hasattr(layer, "eps")]
    if _moderate(model.get_weights(), _numbers(config["layers"]), eps) \
            and not np.isfinite(Y).all():
        raise Finding("a model of moderate finite weights predicted NaN or inf")


@_guarded
def load_engine(data):
    try:
        engine = fastnn.engine_from_bytes(data)
    except fastnn.ModelFormatError:
        return
    X = _input(engine.n_in, engine.dtype)
    Y = engine.predict(X)
    if Y.shape != (3, engine.n_out) or Y.dtype != engine.dtype:
        raise Finding(f"predict gave {Y.dtype} {Y.shape}, expected (3, {engine.n_out})")
    arrays = [a for layer in engine._layers for a in layer.arrays.values()
              if a is not None and a.dtype.kind == "f"]
    if _moderate(arrays, [], []) and not np.isfinite(Y).all():
        raise Finding("an engine of moderate finite weights predicted NaN or inf")


def _read_data(data, suffix):
    fd, path = tempfile.mkstemp(suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            X, y, _ = read_data(path)
        except UsageError:
            return
        if X.ndim != 2 or X.shape[0] < 1 or y.shape[0] != X.shape[0]:
            raise Finding(f"read_data gave X {X.shape} and y {y.shape}")
        if X.dtype.kind not in "biuf" or (X.dtype.kind == "f" and not np.isfinite(X).all()):
            raise Finding(f"read_data gave X of dtype {X.dtype} with NaN or inf")
    finally:
        os.unlink(path)


@_guarded
def read_csv(data):
    _read_data(data, ".csv")


@_guarded
def read_npz(data):
    _read_data(data, ".npz")


TARGETS = {"load_model": load_model, "load_engine": load_engine, "read_csv": read_csv,
           "read_npz": read_npz}
