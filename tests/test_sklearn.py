"""fastnn.sklearn: scikit-learn's estimator checks, its workflows, and agreement with its MLP."""
import pickle
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.base import clone  # noqa: E402
from sklearn.datasets import make_classification, make_multilabel_classification  # noqa: E402
from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402
from sklearn.model_selection import GridSearchCV, cross_val_score  # noqa: E402
from sklearn.neural_network import MLPClassifier as SkMLPClassifier  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

import fastnn as fn  # noqa: E402
from fastnn.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# scikit-learn's own MLP settings for its checks (max_iter=100 on tiny data).
CHECKED = [MLPClassifier(max_iter=100, random_state=0), MLPRegressor(max_iter=100, random_state=0)]
# Every check that is expected to fail, with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data":
        "a repeated row changes the minibatch size, hence the per-batch L2 scale and rounding",
    "check_sample_weight_equivalence_on_sparse_data":
        "the same check on sparse input (densified), failing for the same reason",
    "check_methods_subset_invariance":
        "one row runs a GEMV, 2-4 rows and from 33 BLAS's product, 5-32 rows fastnn's "
        "(in layers of 32 units or more): float32 sums may differ in the last bit, and the "
        "check allows 1e-7",
}


@parametrize_with_checks(CHECKED, expected_failed_checks=lambda est: EXPECTED_FAILED_CHECKS)
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.fixture(scope="module")
def table():
    X, y = make_classification(n_samples=600, n_features=12, n_informative=8, n_classes=3,
                               random_state=0)
    return X[:450], X[450:], y[:450], y[450:]


def test_accuracy_matches_sklearns_mlp(table):
    X, X_test, y, y_test = table
    params = dict(hidden_layer_sizes=(64, 32), max_iter=60, random_state=0)
    ours = MLPClassifier(**params).fit(X, y).score(X_test, y_test)
    theirs = SkMLPClassifier(**params).fit(X, y).score(X_test, y_test)
    assert ours >= theirs - 0.04
    assert ours > 0.8


def test_string_labels_binary_and_deploy(table):
    X, X_test, y, y_test = table
    labels = np.where(y == 0, "cat", "dog")
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=50, random_state=0).fit(X, labels)
    assert list(clf.classes_) == ["cat", "dog"]
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 1
    proba = clf.predict_proba(X_test)
    assert proba.shape == (len(X_test), 2) and np.allclose(proba.sum(axis=1), 1)
    assert set(clf.predict(X_test)) <= {"cat", "dog"}
    engine = clf.deploy()
    np.testing.assert_allclose(engine.predict(X_test)[:, 0], proba[:, 1], rtol=1e-6)
    assert list(engine.classes) == ["cat", "dog"] and list(clf.model_.classes) == ["cat", "dog"]
    np.testing.assert_array_equal(engine.predict_classes(X_test), clf.predict(X_test))
    assert clf.coefs_[0].shape == (12, 32) and clf.intercepts_[1].shape == (1,)
    assert clf.n_layers_ == 3 and isinstance(clf.model_, fn.Sequential)


def test_pickle_identical_predictions_without_torch(table):
    X, X_test, y, _ = table
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=5, random_state=0).fit(X, y)
    blob = pickle.dumps(clf)
    assert b"torch" not in blob
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.predict_proba(X_test), clf.predict_proba(X_test))
    engine = pickle.loads(pickle.dumps(clf.deploy()))
    np.testing.assert_array_equal(engine.predict(X_test), clf.deploy().predict(X_test))


@pytest.mark.parametrize("solver", ["adam", "sgd"])
def test_partial_fit_continues_exactly_after_a_pickle_round_trip(table, solver):
    X, _, y, _ = table
    kw = dict(hidden_layer_sizes=(16,), solver=solver, batch_size=50, random_state=0,
              dropout=0.1)
    plain = MLPClassifier(**kw).partial_fit(X[:150], y[:150], classes=[0, 1, 2])
    shipped = pickle.loads(pickle.dumps(MLPClassifier(**kw).partial_fit(
        X[:150], y[:150], classes=[0, 1, 2])))
    for i in range(150, len(X), 150):
        plain.partial_fit(X[i:i + 150], y[i:i + 150])
        shipped.partial_fit(X[i:i + 150], y[i:i + 150])
    assert shipped.model_.optimizer.iterations == plain.model_.optimizer.iterations > 3
    for a, b in zip(shipped.coefs_ + shipped.intercepts_, plain.coefs_ + plain.intercepts_):
        np.testing.assert_array_equal(a, b)
    assert shipped.loss_curve_ == plain.loss_curve_


def test_pipeline_grid_search_cross_val(table):
    X, _, y, _ = table
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=10, random_state=0))
    grid = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(8,), (32,)],
                               "mlpclassifier__alpha": [1e-4, 1e-2]}, cv=3)
    grid.fit(X, y)
    assert grid.best_score_ > 0.5  # three classes: chance is 1/3
    assert grid.best_estimator_[-1].get_params()["alpha"] == grid.best_params_[
        "mlpclassifier__alpha"]
    scores = cross_val_score(MLPRegressor(max_iter=20, random_state=0), X, y.astype(float), cv=3)
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    c = clone(MLPClassifier(hidden_layer_sizes=(5,), dropout=0.1, random_state=3))
    assert c.get_params()["dropout"] == 0.1 and not hasattr(c, "model_")


def test_partial_fit_needs_classes_then_learns(table):
    X, X_test, y, y_test = table
    clf = MLPClassifier(hidden_layer_sizes=(32,), random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:50], y[:50])
    clf.partial_fit(X[:50], y[:50], classes=[0, 1, 2])
    for _ in range(30):
        for i in range(0, len(X), 150):
            clf.partial_fit(X[i:i + 150], y[i:i + 150])
    assert clf.n_iter_ == 1 and len(clf.loss_curve_) == 91
    assert list(clf.deploy().classes) == [0, 1, 2]
    assert clf.score(X_test, y_test) > 0.7
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X[:5], np.array([0, 1, 2, 7, 1]))


def test_multilabel_and_multioutput():
    X, Y = make_multilabel_classification(n_samples=300, n_classes=4, random_state=0)
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=80, random_state=0).fit(X, Y)
    assert clf.predict(X).shape == Y.shape and clf.predict_proba(X).shape == Y.shape
    assert clf.score(X, Y) > 0.3 and clf.out_activation_ == "logistic"
    targets = np.column_stack([X[:, :3].sum(axis=1), X[:, 3] - X[:, 4]])
    reg = MLPRegressor(hidden_layer_sizes=(32,), max_iter=200, random_state=0).fit(X, targets)
    assert reg.predict(X).shape == (300, 2) and reg.score(X, targets) > 0.8
    assert reg.out_activation_ == "identity"


def test_dataframe_feature_names():
    pd = pytest.importorskip("pandas")
    X, y = make_classification(n_samples=100, n_features=4, random_state=0)
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(frame, y)
    assert list(clf.feature_names_in_) == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(frame[["b", "a", "c", "d"]])


def test_bad_input_and_parameters():
    X, y = make_classification(n_samples=50, n_features=4, random_state=0)
    with pytest.raises(ValueError, match="lbfgs"):
        MLPClassifier(solver="lbfgs").fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(0,)).fit(X, y)
    with pytest.raises(ValueError, match="NaN"):
        MLPClassifier().fit(np.where(X > 1, np.nan, X), y)
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, X[:, 0])
    refused = MLPClassifier(early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping"):
        refused.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(NotFittedError):  # the refused call fitted nothing
        refused.predict(X)
    diverging = MLPRegressor(max_iter=3, random_state=0).fit(X, y)
    diverging.set_params(learning_rate_init=1e20)
    with pytest.raises(ValueError, match="non-finite"):
        diverging.fit(X * 1e10, y * 1e10)
    np.testing.assert_allclose(diverging.predict(X), diverging.model_.predict(X)[:, 0],
                               rtol=1e-5, atol=1e-6)  # not the previous fit's engine
    interrupted = MLPRegressor(max_iter=2, random_state=0).fit(X, y)

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fn.Sequential, "_train_step", interrupt)
        with pytest.raises(KeyboardInterrupt):
            interrupted.fit(X, -y)
    with pytest.raises(NotFittedError):  # the previous fit's engine is gone with its weights
        interrupted.predict(X)
    fitted = MLPRegressor(max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="features"):
        fitted.predict(X[:, :3])


def _l2_loss(reg, X, y):
    """scikit-learn's regression objective at reg's weights, over one full batch."""
    err = 0.5 * np.mean((reg.predict(X) - y) ** 2)
    return err + 0.5 * reg.alpha * sum(float(np.sum(w.astype(float) ** 2))
                                       for w in reg.coefs_) / len(X)


def test_loss_and_alpha_scaled_as_sklearn():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3))
    y = X @ [1.0, -2.0, 0.5]
    reg = MLPRegressor(hidden_layer_sizes=(8,), alpha=5.0, solver="sgd", learning_rate_init=1e-9,
                       max_iter=1, shuffle=False, random_state=0, dtype="float64").fit(X, y)
    assert reg.loss_ == pytest.approx(_l2_loss(reg, X, y), rel=1e-6)


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_sgd_epoch_steps_as_sklearn_with_a_short_last_batch(kind):
    # From the same weights, one unshuffled epoch of plain SGD (250 rows: batches of
    # 200 and 50) gives scikit-learn's weights and loss: the L2 term of each batch is
    # divided by its own size, the short last one included.
    from sklearn.neural_network import MLPRegressor as SkMLPRegressor
    rng = np.random.default_rng(0)
    X = rng.normal(size=(250, 4))
    y = rng.integers(0, 3, 250) if kind == "classifier" else X @ [1.0, -2.0, 0.5, 0.0]
    params = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, alpha=3.0,
                  learning_rate_init=0.05, batch_size=200, shuffle=False, max_iter=1,
                  warm_start=True, random_state=0)
    ours, theirs = ((MLPClassifier, SkMLPClassifier) if kind == "classifier"
                    else (MLPRegressor, SkMLPRegressor))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ours = ours(dtype="float64", **params).fit(X, y)
        theirs = theirs(**params).fit(X, y)
        theirs.coefs_ = [w.copy() for w in ours.coefs_]
        theirs.intercepts_ = [b.copy() for b in ours.intercepts_]
        ours.fit(X, y)
        theirs.fit(X, y)
    for a, b in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    assert ours.loss_ == pytest.approx(theirs.loss_, rel=1e-9)


def test_stopping_rules_and_learning_rate_schedules(table):
    X, _, y, _ = table
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, tol=1e-2, n_iter_no_change=3,
                        random_state=0).fit(X, y)
    assert clf.n_iter_ < 500 and len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_loss_ == min(clf.loss_curve_)
    early = MLPClassifier(hidden_layer_sizes=(32,), max_iter=500, early_stopping=True,
                          n_iter_no_change=3, random_state=0).fit(X, y)
    assert early.best_loss_ is None and len(early.validation_scores_) == early.n_iter_ < 500
    assert early.best_validation_score_ == max(early.validation_scores_)
    inv = MLPClassifier(solver="sgd", learning_rate="invscaling", power_t=0.5, max_iter=3,
                        random_state=0).fit(X, y)
    assert inv.model_.optimizer.learning_rate == pytest.approx(0.001 / (3 * 450 + 1) ** 0.5)
    adaptive = MLPClassifier(solver="sgd", learning_rate="adaptive", learning_rate_init=0.5,
                             tol=10.0, n_iter_no_change=1, max_iter=6, random_state=0).fit(X, y)
    # never better by tol=10: the count passes n_iter_no_change=1 after epochs 3 and 5
    assert adaptive.model_.optimizer.learning_rate == pytest.approx(0.5 / 5 ** 2)
    with pytest.warns(ConvergenceWarning):
        MLPClassifier(max_iter=2, random_state=0).fit(X, y)


def test_fastnn_extras(table):
    X, X_test, y, y_test = table
    clf = MLPClassifier(hidden_layer_sizes=(64,), activation="gelu", batch_norm=True, dropout=0.1,
                        sparsity=0.8, max_iter=30, random_state=0).fit(X, y)
    assert fn.pruning.sparsity(clf.model_) == pytest.approx(0.8, abs=0.01)
    assert clf.score(X_test, y_test) > 0.6
    np.testing.assert_allclose(clf.deploy().predict(X_test), clf.model_.predict(X_test),
                               rtol=1e-4, atol=1e-5)
    scaled = X * np.logspace(-3, 3, X.shape[1])
    std = MLPClassifier(hidden_layer_sizes=(32,), standardize=True, max_iter=40,
                        random_state=0).fit(scaled, y)
    assert isinstance(std.model_.layers[0], fn.layers.Normalization)
    assert std.score(X_test * np.logspace(-3, 3, X.shape[1]), y_test) > 0.7
    warm = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, warm_start=True, random_state=0)
    first = warm.fit(X, y).coefs_[0].copy()
    assert not np.array_equal(warm.fit(X, y).coefs_[0], first)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        with pytest.raises(ValueError, match="same classes"):
            warm.fit(X, np.where(y == 2, 1, y))
