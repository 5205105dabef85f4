"""fastnn.sklearn.MLPClassifier beside scikit-learn's MLPClassifier: fit and predict_proba.

Both estimators get the same parameters: hidden_layer_sizes=(256, 128), solver="adam",
batch_size=200, max_iter=10, early_stopping=False, random_state=0, on a generated
classification table of float32 features (make_classification: 100 features, 40
informative, 5 classes) of FASTNN_BENCH_SAMPLES training rows (default 50,000) and a
quarter as many test rows. scikit-learn keeps float32 input in float32, so both compute
in float32. Each estimator's test accuracy is recorded in the benchmark's extra_info.

Groups: "sklearn fit" (fit_fastnn, fit_sklearn) and "sklearn predict_proba"
(predict_proba_fastnn, predict_proba_sklearn, on the test rows).

Run: python -m pytest bench/bench_sklearn.py --benchmark-only
Smoke: FASTNN_BENCH_SAMPLES=2048 python -m pytest bench/bench_sklearn.py --benchmark-disable -q

Script mode, the ratios from one run: ``python bench/bench_sklearn.py [rounds]`` (default
5) fits both estimators once per round, in alternating order, then times
predict_proba of the last fitted pair in rounds of PREDICT_CALLS calls each, A, B, A,
B...; it prints the median seconds of each, the median of the per-round ratios
scikit-learn / fastnn, and each estimator's test accuracy. ``--predict`` fits each
estimator once (the fit figures are then one sample each) for the predict_proba rounds.
"""
import os
import sys
import time
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

N_SAMPLES = int(os.environ.get("FASTNN_BENCH_SAMPLES", "50000"))
PARAMS = dict(hidden_layer_sizes=(256, 128), solver="adam", batch_size=200, max_iter=10,
              early_stopping=False, random_state=0)
ROUNDS = 3
PREDICT_CALLS = 20


def _estimator(kind):
    if kind == "fastnn":
        from fastnn.sklearn import MLPClassifier
    else:
        from sklearn.neural_network import MLPClassifier
    return MLPClassifier(**PARAMS)


def make_data():
    """(X_train, y_train, X_test, y_test): float32 features, 5 classes."""
    from sklearn.datasets import make_classification

    X, y = make_classification(n_samples=N_SAMPLES + N_SAMPLES // 4, n_features=100,
                               n_informative=40, n_classes=5, random_state=0)
    X = X.astype(np.float32)
    return X[:N_SAMPLES], y[:N_SAMPLES], X[N_SAMPLES:], y[N_SAMPLES:]


@pytest.fixture(scope="module")
def data():
    return make_data()


def _fit(estimator, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning after max_iter=10
        return estimator.fit(X, y)


@pytest.fixture(scope="module")
def fitted(data):
    X, y, _, _ = data
    return {kind: _fit(_estimator(kind), X, y) for kind in ("fastnn", "sklearn")}


def _bench_fit(benchmark, data, kind):
    X, y, X_test, y_test = data
    benchmark.group = "sklearn fit"
    benchmark.extra_info["samples"] = N_SAMPLES
    est = benchmark.pedantic(lambda: _fit(_estimator(kind), X, y), rounds=ROUNDS, iterations=1)
    benchmark.extra_info["test_accuracy"] = float(est.score(X_test, y_test))


def _bench_predict_proba(benchmark, data, fitted, kind):
    _, _, X_test, y_test = data
    benchmark.group = "sklearn predict_proba"
    benchmark.extra_info["samples"] = len(X_test)
    proba = benchmark(fitted[kind].predict_proba, X_test)
    assert proba.shape == (len(X_test), 5)
    benchmark.extra_info["test_accuracy"] = float(fitted[kind].score(X_test, y_test))


def test_fit_fastnn(benchmark, data):
    _bench_fit(benchmark, data, "fastnn")


def test_fit_sklearn(benchmark, data):
    _bench_fit(benchmark, data, "sklearn")


def test_predict_proba_fastnn(benchmark, data, fitted):
    _bench_predict_proba(benchmark, data, fitted, "fastnn")


def test_predict_proba_sklearn(benchmark, data, fitted):
    _bench_predict_proba(benchmark, data, fitted, "sklearn")


def _timed(f, *args):
    start = time.perf_counter()
    out = f(*args)
    return time.perf_counter() - start, out


def interleaved(rounds=5, fit_rounds=None):
    """Median per-round ratios scikit-learn / fastnn of fit and predict_proba (fits in
    `fit_rounds` rounds, default `rounds`)."""
    X, y, X_test, y_test = make_data()
    kinds = ("fastnn", "sklearn")
    fit = {k: [] for k in kinds}
    fitted = {}
    fit_rounds = rounds if fit_rounds is None else fit_rounds
    for r in range(fit_rounds):
        for kind in (kinds if r % 2 == 0 else kinds[::-1]):
            seconds, fitted[kind] = _timed(_fit, _estimator(kind), X, y)
            fit[kind].append(seconds)
    proba = {k: [] for k in kinds}
    for kind in kinds:  # warm up
        fitted[kind].predict_proba(X_test)
    for _ in range(3 * rounds):
        for kind in kinds:
            time.sleep(0.1)  # as bench_engine: the other's spinning BLAS threads go to sleep
            seconds = min(_timed(fitted[kind].predict_proba, X_test)[0]
                          for _ in range(PREDICT_CALLS))
            proba[kind].append(seconds)
    print(f"{N_SAMPLES} training rows, {len(X_test)} test rows, {fit_rounds} fits of each, "
          f"{3 * rounds} rounds of predict_proba (best of {PREDICT_CALLS} calls each)")
    for name, times in (("fit", fit), ("predict_proba", proba)):
        t = {k: np.array(v) for k, v in times.items()}
        ratio = t["sklearn"] / t["fastnn"]
        print(f"  {name:14s} fastnn {np.median(t['fastnn']):.4f} s, scikit-learn "
              f"{np.median(t['sklearn']):.4f} s; ratio median {np.median(ratio):.2f} "
              f"(range {ratio.min():.2f}-{ratio.max():.2f})")
    for kind in kinds:
        print(f"  test accuracy {kind:8s} {fitted[kind].score(X_test, y_test):.4f}")


if __name__ == "__main__":
    numbers = [int(a) for a in sys.argv[1:] if a.isdigit()]
    interleaved(numbers[0] if numbers else 5, 1 if "--predict" in sys.argv else None)
