"""The thread cap (affinity mask, cgroup CPU quota), results that never depend on threads,
and a BLAS whose own threads the kernels never use and whose setting they leave alone."""
import os
import sys

import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn._kernels import _threads
from fastnn._kernels import dense as K
from fastnn._kernels._blas_threads import get_blas_threads, set_blas_threads
from fastnn.engine import InferenceEngine

V2, (V1_QUOTA, V1_PERIOD) = _threads._QUOTA_V2, _threads._QUOTA_V1


def _files(files):
    return lambda path: files.get(path)


@pytest.mark.parametrize("cpus,files,expected", [
    (8, {}, 8),                                                  # no cgroup files
    (8, {V2: "max 100000\n"}, 8),                                # v2, no quota
    (8, {V2: "200000 100000\n"}, 2),                             # v2, two CPUs
    (8, {V2: "150000 100000\n"}, 2),                             # a part CPU counts as one
    (8, {V2: "50000 100000\n"}, 1),
    (2, {V2: "400000 100000\n"}, 2),                             # the mask is smaller
    (8, {V1_QUOTA: "-1\n", V1_PERIOD: "100000\n"}, 8),           # v1, no quota
    (8, {V1_QUOTA: "300000\n", V1_PERIOD: "100000\n"}, 3),       # v1, three CPUs
    (8, {V1_QUOTA: "300000\n"}, 8),                              # v1, period unreadable
    (8, {V2: "garbage"}, 8),
    (0, {}, 1),
])
def test_cpu_limit_from_affinity_and_quota(cpus, files, expected):
    assert _threads.cpu_limit(affinity=lambda: cpus, read=_files(files)) == expected


def test_threads_never_exceed_the_cpu_limit():
    limit = _threads.CPU_LIMIT
    assert limit == _threads.cpu_limit()
    try:
        fn.set_num_threads(limit + 3)
        assert fn.get_num_threads() <= limit
    finally:
        fn.set_num_threads(None)
    assert fn.get_num_threads() <= limit
    engine = InferenceEngine([{"kind": "dense", "W": np.ones((3, 2), np.float32)}],
                             n_threads=limit + 5)
    assert engine.n_threads == limit


@pytest.fixture
def counts(monkeypatch):
    """1, 2 and more threads than CPUs, the cap lifted so that the extra threads do run."""
    more = _threads.CPU_LIMIT + 2
    monkeypatch.setattr(_threads, "CPU_LIMIT", more)
    return [1, 2, more]


def _specs(rng, dtype):
    def dense(n_in, n_out, density, act):
        W = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(dtype)
        W[rng.random(W.shape) >= density] = 0
        return {"kind": "dense", "W": W, "b": (0.1 * rng.standard_normal(n_out)).astype(dtype),
                "activation": act}
    return [dense(784, 256, 0.1, "relu"), dense(256, 128, 1.0, "gelu"),
            dense(128, 10, 0.5, "softmax")]


@pytest.mark.parametrize("layout", ["dense", "sparse", "auto"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_engine_predict_is_bitwise_identical_for_any_thread_count(counts, layout, dtype):
    rng = np.random.default_rng(3)
    specs = _specs(rng, dtype)
    X = rng.standard_normal((1000, 784)).astype(dtype)
    for batch in (1, 256, 1000):
        Ys = [InferenceEngine(specs, layout=layout, n_threads=n).predict(X[:batch])
              for n in counts]
        for Y in Ys[1:]:
            np.testing.assert_array_equal(Y, Ys[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["relu", "softmax", "gelu"])
@pytest.mark.parametrize("rows", [1300, 200])  # 200: a short tail joins the last chunk
def test_dense_kernels_are_bitwise_identical_for_any_thread_count(counts, name, dtype, rows):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((rows, 120)).astype(dtype)
    W = rng.standard_normal((120, 420)).astype(dtype)
    b = rng.standard_normal(420).astype(dtype)
    dY = rng.standard_normal((rows, 420)).astype(dtype)
    outs = []
    for n in counts:
        Z = np.empty((rows, 420), dtype)
        Y = K.dense_forward(X, W, b, name, preact=Z, n_threads=n)
        outs.append((Y, Z) + tuple(K.dense_backward(dY, X, W, Z, Y, name, n_threads=n))
                    + K.dense_backward(dY, X, W, Z, Y, name, need_dX=False, n_threads=n)[1:])
    for out in outs[1:]:
        for a, c in zip(out, outs[0]):
            np.testing.assert_array_equal(a, c)


def test_a_short_fit_is_bitwise_identical_for_any_thread_count(counts):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((600, 64)).astype(np.float32)
    y = rng.integers(0, 10, 600)

    def train(threads):
        fn.set_num_threads(threads)
        try:
            model = fn.Sequential([L.Dense(512, activation="relu"),
                                   L.Dense(10, activation="softmax")], input_dim=64, seed=7)
            model.compile("adam", "sparse_categorical_crossentropy")
            model.fit(X, y, epochs=2, batch_size=300, verbose=0)
            return model.get_weights()
        finally:
            fn.set_num_threads(None)

    runs = [train(n) for n in counts]
    for weights in runs[1:]:
        for a, c in zip(weights, runs[0]):
            np.testing.assert_array_equal(a, c)


def _work(n_threads):
    """Run every kernel that calls the BLAS: dense forward and backward, an engine."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((512, 784)).astype(np.float32)
    W = rng.standard_normal((784, 256)).astype(np.float32)
    Z = np.empty((512, 256), np.float32)
    Y = K.dense_forward(X, W, None, "relu", preact=Z, n_threads=n_threads)
    K.dense_backward(Y, X, W, Z, Y, "relu", n_threads=n_threads)
    engine = InferenceEngine([{"kind": "dense", "W": W, "activation": "relu"}],
                             n_threads=n_threads)
    for batch in (1, 512):
        engine.predict(X[:batch])


@pytest.mark.skipif(get_blas_threads() is None, reason="the BLAS's thread count is not readable")
def test_the_blas_thread_count_is_left_as_the_program_set_it():
    before = get_blas_threads()
    try:
        for n in {1, _threads.CPU_LIMIT}:
            set_blas_threads(n)
            fn.set_num_threads(1)
            assert get_blas_threads() == n
            _work(None)
            fn.set_num_threads(None)
            _work(None)
            assert get_blas_threads() == n
    finally:
        set_blas_threads(before)
        fn.set_num_threads(None)


def _cpu_ticks_of_other_threads():
    """CPU time (clock ticks) of every thread of this process but the calling one."""
    me = str(__import__("threading").get_native_id())
    total = 0
    for task in os.listdir("/proc/self/task"):
        if task != me:
            with open(f"/proc/self/task/{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_one_thread_means_one_thread_in_total_blas_included():
    _work(1)
    before = _cpu_ticks_of_other_threads()
    start = os.times().user
    while os.times().user - start < 0.5:  # CPU seconds of the whole process
        _work(1)
    # The BLAS's threads, OpenMP's and any other stayed idle: at most a tick or two,
    # against the tens a second thread sharing the work would have taken.
    assert _cpu_ticks_of_other_threads() - before <= 2
