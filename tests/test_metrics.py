"""Regression metrics (mse, mae, rmse, r2) beside accuracy: values, batches, evaluate, pruning."""
import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn import losses, pruning


def _regression(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = np.column_stack([X @ [1.0, -2.0, 0.5, 0.0] + 1.0, np.sin(X[:, 0]) * 5])
    return X, y + 0.1 * rng.standard_normal(y.shape)


@pytest.mark.parametrize("name", ["mse", "mae", "rmse", "r2"])
def test_metrics_match_scikit_learn_and_add_up_over_batches(name):
    skm = pytest.importorskip("sklearn.metrics")
    reference = {"mse": skm.mean_squared_error, "mae": skm.mean_absolute_error,
                 "rmse": lambda a, b: np.sqrt(skm.mean_squared_error(a, b)),
                 "r2": skm.r2_score}[name]
    rng = np.random.default_rng(1)
    y = rng.standard_normal((50, 3)) * [1, 10, 100] + [0, 5, 1000]
    p = y + rng.standard_normal(y.shape) * [0.5, 1, 20]
    metric = losses.get_metric(name)[1]
    assert metric(y, p) == pytest.approx(reference(y, p), rel=1e-12)
    parts = metric.stats(y[:17], p[:17]) + metric.stats(y[17:], p[17:])
    assert metric.result(parts) == pytest.approx(reference(y, p), rel=1e-12)
    assert metric.higher_is_better == (name == "r2")


def test_r2_of_constant_targets_follows_scikit_learn():
    y = np.full((4, 1), 3.0)
    assert losses.r2(y, y.copy()) == 1.0
    assert losses.r2(y, y + 1) == 0.0


def test_compile_evaluate_and_epoch_logs_take_regression_metrics():
    X, y = _regression()
    model = fn.Sequential([L.Normalization(mean=0.0, variance=1.0), L.Dense(32, activation="relu"),
                           L.Dense(2)], seed=0)
    model.compile("adam", "mse", metrics=["mse", "mae", "rmse", "r2"])
    history = model.fit(X, y, epochs=60, batch_size=32, verbose=0, validation_split=0.2)
    for key in ("mse", "mae", "rmse", "r2", "val_r2", "val_rmse"):
        assert key in history.history
    result = model.evaluate(X, y)
    assert result["rmse"] == pytest.approx(np.sqrt(result["mse"]))
    assert result["mse"] == pytest.approx(result["loss"], rel=1e-5)
    assert result["r2"] > 0.9
    # an epoch's rmse is the root of its mean squared error, not a mean of batch roots
    assert history.history["rmse"][-1] == pytest.approx(np.sqrt(history.history["mse"][-1]))


@pytest.mark.parametrize("metric, budget", [("r2", 0.02), ("rmse", 0.05)])
def test_prune_until_keeps_regression_metrics_within_budget(metric, budget):
    X, y = _regression(seed=2)
    model = fn.Sequential([L.Dense(64, activation="relu"), L.Dense(2)], seed=0)
    model.compile("adam", "mse", metrics=["r2", "rmse"])
    model.fit(X, y, epochs=80, batch_size=32, verbose=0)
    before = model.evaluate(X, y)[metric]
    pruned, steps = pruning.prune_until(model, X, y, max_metric_drop=budget, metric=metric,
                                        X_train=X, y_train=y, fine_tune_epochs=1)
    after = pruned.evaluate(X, y)[metric]
    assert pruning.sparsity(pruned) > 0
    if metric == "r2":
        assert before - after <= budget + 1e-9
    else:
        assert after - before <= budget + 1e-9
    assert any(not s["within_budget"] for s in steps) or pruning.sparsity(pruned) > 0.9
