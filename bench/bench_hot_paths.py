"""The Python API's hot paths beside their compiled floor, in one run.

Group "predict batch 1": a 64-64-64-10 float32 classifier (ReLU, ReLU, softmax)
  predict_fastnn      Sequential.predict on one row
  predict_engine      fn.deploy(model).predict on the same row (one compiled plan)
  Target: Sequential.predict within 2x of the engine, i.e. predict_engine / predict_fastnn
  at least 0.5 in ``bench/report.py``'s table.

Group "training step": a 784-256-128-10 float32 classifier, Adam, sparse categorical
cross-entropy, batches of 128
  step_fastnn         Sequential.fit for one epoch of STEPS batches, on a new model after
                      one step (`warm_classifier`)
  step_gemms          the matrix products of those STEPS steps alone: per step the 3 forward
                      products, the 3 weight gradients and the 2 input gradients (the first
                      layer needs none), of the same shapes, through scipy's BLAS
                      (``scipy.linalg.blas.sgemm``, in place); fastnn's step computes them
                      with its own kernel where the CPU has AVX-512F, else with that BLAS
  Target: the products take at least 85% of a step, i.e. step_gemms / step_fastnn at
  least 0.85. The 8 Python calls of step_gemms per step add a few microseconds that
  count for the products (a step takes milliseconds); ``python bench/bench_hot_paths.py``
  subtracts them.
  The products run as BLAS runs them at best: each one call on the BLAS's own threads,
  which share the packed operand and spin between calls (fastnn's workers spin 30 us at
  most, and not at all where they were preempted lately: a spinning thread stalls the
  others on a busy machine, see fastnn/_kernels/workers.h). Every timing starts after a
  pause (`PAUSE`), so that the BLAS's spinning threads take no core from fastnn's step.
  The script mode also times them with the BLAS on one thread beside a step of fastnn on
  one thread. Which kernels OpenBLAS runs (``fn.show_config()``'s ``blas_core``) moves
  the products' time by 1.8x on Zen 5 (Haswell's AVX2 against SkylakeX's AVX-512).

    python -m pytest bench/bench_hot_paths.py --benchmark-only -q
    python bench/report.py --suite hot_paths

``python bench/bench_hot_paths.py [rounds]`` times the contenders interleaved (A, B, A,
B, ...) and prints the median of the per-round ratios, which a shared machine disturbs
less than timings taken minutes apart.
"""
import os
import sys
import time

import numpy as np
import pytest
import scipy.linalg.blas as blas

import fastnn as fn
from fastnn._kernels import _blas_threads

PREDICT_SIZES = (64, 64, 64, 10)
STEP_SIZES = (784, 256, 128, 10)
BATCH = 128
N_SAMPLES = int(os.environ.get("FASTNN_BENCH_SAMPLES", "60000"))
STEPS = max(1, min(N_SAMPLES, 100 * BATCH) // BATCH)
PREDICT_CALLS = 2000  # predicts per timed round in the interleaved mode


def classifier(sizes, seed=0):
    """Dense ReLU layers and a softmax output, float32, compiled with Adam."""
    model = fn.Sequential([fn.layers.Dense(n, activation="relu") for n in sizes[1:-1]]
                          + [fn.layers.Dense(sizes[-1], activation="softmax")],
                          input_dim=sizes[0], dtype="float32", seed=seed)
    model.compile(fn.optimizers.Adam(lr=1e-3), "sparse_categorical_crossentropy")
    return model


def step_data(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((STEPS * BATCH, STEP_SIZES[0]), dtype=np.float32)
    return X, rng.integers(0, STEP_SIZES[-1], STEPS * BATCH)


def _gemm(A, B, C, trans_a=False, trans_b=False):
    """C := op(A) @ op(B) in place for C-ordered arrays: the column-major C.T = op(B).T @
    op(A).T, as fastnn's kernels call it."""
    blas.sgemm(1.0, B.T, A.T, 0.0, C.T, trans_a=trans_b, trans_b=trans_a, overwrite_c=True)


class StepProducts:
    """The 8 matrix products of one training step, on preallocated float32 arrays."""

    def __init__(self, sizes=STEP_SIZES, batch=BATCH, seed=0):
        rng = np.random.default_rng(seed)
        self.W = [rng.standard_normal((a, b), dtype=np.float32) for a, b in
                  zip(sizes[:-1], sizes[1:])]
        self.A = [rng.random((batch, n), dtype=np.float32) for n in sizes]  # layer inputs/outputs
        self.dZ = [rng.standard_normal((batch, n), dtype=np.float32) for n in sizes[1:]]
        self.dW = [np.empty_like(W) for W in self.W]
        self.dX = [np.empty((batch, n), dtype=np.float32) for n in sizes[:-1]]

    def run(self):
        last = len(self.W) - 1
        for i, W in enumerate(self.W):  # forward: A[i + 1] := A[i] @ W
            _gemm(self.A[i], W, self.A[i + 1])
        for i in range(last, -1, -1):  # backward: dW := A[i].T @ dZ, dX := dZ @ W.T
            _gemm(self.A[i], self.dZ[i], self.dW[i], trans_a=True)
            if i:
                _gemm(self.dZ[i], self.W[i], self.dX[i], trans_b=True)

    def check(self):
        """The products agree with numpy's."""
        self.run()
        np.testing.assert_allclose(self.A[1], self.A[0] @ self.W[0], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(self.dW[1], self.A[1].T @ self.dZ[1], rtol=1e-4, atol=1e-3)
        np.testing.assert_allclose(self.dX[1], self.dZ[1] @ self.W[1].T, rtol=1e-4, atol=1e-3)


def one_row_setup():
    model = classifier(PREDICT_SIZES)
    x = np.random.default_rng(1).random((1, PREDICT_SIZES[0]), dtype=np.float32)
    engine = fn.deploy(model)
    np.testing.assert_allclose(model.predict(x), engine.predict(x), rtol=1e-5, atol=1e-6)
    return model, engine, x


@pytest.fixture(scope="module")
def one_row():
    return one_row_setup()


def test_predict_fastnn(benchmark, one_row):
    model, _, x = one_row
    benchmark.group = "predict batch 1"
    benchmark(model.predict, x)


def test_predict_engine(benchmark, one_row):
    _, engine, x = one_row
    benchmark.group = "predict batch 1"
    benchmark(engine.predict, x)


def _fit_epoch(model, X, y):
    model.fit(X, y, epochs=1, batch_size=BATCH, shuffle=True, verbose=0)


def warm_classifier(X, y):
    """A new `classifier` after one step of `fit` on (X, y): its buffers and optimizer
    state made and touched, as the products' arrays are before they are timed (a new
    model's first step takes 1-2.5 ms more, a one-time cost)."""
    model = classifier(STEP_SIZES)
    model.fit(X[:BATCH], y[:BATCH], epochs=1, batch_size=BATCH, verbose=0)
    return model


def test_step_fastnn(benchmark):
    X, y = step_data()
    benchmark.group = "training step"
    benchmark.extra_info.update(steps=STEPS, batch_size=BATCH)
    benchmark.pedantic(_fit_epoch, setup=lambda: ((warm_classifier(X, y), X, y), {}),
                       rounds=5, iterations=1)


def test_step_gemms(benchmark):
    products = StepProducts()
    products.check()
    benchmark.group = "training step"
    benchmark.extra_info.update(steps=STEPS, batch_size=BATCH)

    def steps():
        for _ in range(STEPS):
            products.run()

    benchmark.pedantic(steps, rounds=5, iterations=1, warmup_rounds=1)


PAUSE = 0.15  # seconds before each timing: OpenBLAS's threads spin 0.1 s after a call


def _timed(fn_, *args):
    """Seconds of fn_(*args), after a pause that lets the threads of the contender timed
    before it (OpenBLAS's server threads) go to sleep, so they take no core from it."""
    time.sleep(PAUSE)
    start = time.perf_counter()
    fn_(*args)
    return time.perf_counter() - start


def interleaved(rounds=15):
    """Median per-round ratios of the two groups' contenders, timed A, B, A, B, ..."""
    model, engine, x = one_row_setup()
    X, y = step_data()
    products = StepProducts()
    products.check()
    tiny = StepProducts(sizes=(1, 1, 1, 1), batch=1)  # the Python calls alone

    def predicts(f):
        for _ in range(PREDICT_CALLS):
            f(x)

    def gemm_steps(p):
        for _ in range(STEPS):
            p.run()

    def gemm_time():
        return _timed(gemm_steps, products) - _timed(gemm_steps, tiny)

    def fit_time(threads):
        fn.set_num_threads(threads)
        try:
            return _timed(_fit_epoch, warm_classifier(X, y), X, y)
        finally:
            fn.set_num_threads(None)

    blas_threads = _blas_threads.get_blas_threads()
    threads = fn.get_num_threads()
    predict_ratio, share, share1, rows = [], [], [], []
    for _ in range(rounds):
        t_model = _timed(predicts, model.predict)
        t_engine = _timed(predicts, engine.predict)
        predict_ratio.append(t_model / t_engine)
        t_fit, t_gemm = fit_time(threads), gemm_time()
        t_fit1 = fit_time(1)
        _blas_threads.set_blas_threads(1)
        try:
            t_gemm1 = gemm_time()
        finally:
            _blas_threads.set_blas_threads(blas_threads or 1)
        share.append(t_gemm / t_fit)
        share1.append(t_gemm1 / t_fit1)
        rows.append((t_model / PREDICT_CALLS * 1e6, t_engine / PREDICT_CALLS * 1e6,
                     t_fit / STEPS * 1e3, t_gemm / STEPS * 1e3, t_fit1 / STEPS * 1e3,
                     t_gemm1 / STEPS * 1e3))
    med = np.median(np.array(rows), axis=0)
    print(f"fastnn threads {threads}, BLAS threads {blas_threads}, {rounds} rounds, "
          f"medians of the rounds:")
    print(f"  predict batch 1: Sequential.predict {med[0]:.2f} us, engine {med[1]:.2f} us; "
          f"median ratio predict/engine {np.median(predict_ratio):.2f} "
          f"(range {min(predict_ratio):.2f}-{max(predict_ratio):.2f})")
    for name, fit, gemm, shares in (
            (f"{threads} threads", med[2], med[3], share), ("1 thread", med[4], med[5], share1)):
        print(f"  training step, {name}: fit {fit:.3f} ms per batch, products alone "
              f"{gemm:.3f} ms; median share of the products {np.median(shares):.1%} "
              f"(range {min(shares):.1%}-{max(shares):.1%})")


if __name__ == "__main__":
    interleaved(int(sys.argv[1]) if len(sys.argv) > 1 else 15)
