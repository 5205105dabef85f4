"""fastnn on Dask: scoring, incremental training and grid search on a local 2-process cluster."""
import os

import numpy as np
import pytest

pytest.importorskip("sklearn")
da = pytest.importorskip("dask.array")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
dask_ml_wrappers = pytest.importorskip("dask_ml.wrappers")
pd = pytest.importorskip("pandas")

import joblib  # noqa: E402
from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402

import fastnn as fn  # noqa: E402
import fastnn.dask  # noqa: E402,F401
from fastnn.sklearn import MLPClassifier  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def client():
    # Worker processes inherit this process's environment, PYTHONPATH included.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(n_samples=2000, n_features=20, n_informative=10, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y


def test_workers_import_this_fastnn_and_honour_omp_threads(client):
    here = os.path.dirname(fn.__file__)

    def probe():
        import fastnn
        return (os.path.dirname(fastnn.__file__), os.environ.get("OMP_NUM_THREADS"),
                fastnn.get_num_threads(), len(os.sched_getaffinity(0)))

    for path, omp, threads, cpus in client.run(probe).values():
        assert path == here
        assert omp == "1" and threads == 1 <= cpus


def test_parallel_post_fit_equals_local_predict(client, data):
    X, y = data
    clf = dask_ml_wrappers.ParallelPostFit(
        MLPClassifier(hidden_layer_sizes=(32,), max_iter=20, random_state=0)).fit(X, y)
    dX = da.from_array(X, chunks=(300, 20))
    np.testing.assert_array_equal(clf.predict(dX).compute(), clf.estimator.predict(X))
    # blocks of other sizes may round the last float32 bit differently
    np.testing.assert_allclose(clf.predict_proba(dX).compute(), clf.estimator.predict_proba(X),
                               rtol=1e-5, atol=1e-7)
    frame = dd.from_pandas(pd.DataFrame(X), npartitions=4)
    np.testing.assert_array_equal(np.asarray(clf.predict(frame).compute()),
                                  clf.estimator.predict(X))


def test_fastnn_dask_predict_array_and_frame(client, data):
    X, y = data
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0).fit(X, y)
    engine = clf.deploy()
    dX = da.from_array(X, chunks=(250, 10))
    out = fn.dask.predict(engine, dX)
    assert out.shape == (2000, 3) and out.dtype == np.float32 and out.chunks[1] == (3,)
    expected = engine.predict(X)
    np.testing.assert_allclose(out.compute(), expected, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(fn.dask.predict(clf.model_, dX).compute(), expected, rtol=1e-5,
                               atol=1e-7)
    frame = dd.from_pandas(pd.DataFrame(X, index=np.arange(5000, 7000)), npartitions=3)
    result = fn.dask.predict(engine, frame)
    assert list(result.columns) == [0, 1, 2] and (result.dtypes == np.float32).all()
    computed = result.compute()
    assert list(computed.index) == list(range(5000, 7000))
    np.testing.assert_allclose(computed.to_numpy(), expected, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="expects"):
        fn.dask.predict(engine, dX[:, :5])


def test_incremental_trains_block_by_block(client, data):
    X, y = data
    inc = dask_ml_wrappers.Incremental(
        MLPClassifier(hidden_layer_sizes=(32,), random_state=0, learning_rate_init=0.01),
        scoring="accuracy")
    dX, dy = da.from_array(X, chunks=(400, 20)), da.from_array(y, chunks=400)
    for _ in range(3):
        inc.partial_fit(dX, dy, classes=[0, 1, 2])
    assert len(inc.estimator_.loss_curve_) == 15
    assert inc.score(dX, dy) > 0.7


def test_grid_search_on_the_cluster(client, data):
    X, y = data
    grid = GridSearchCV(MLPClassifier(max_iter=40, random_state=0),
                        {"hidden_layer_sizes": [(8,), (32,)], "alpha": [1e-4, 1e-2]},
                        cv=2, n_jobs=-1)
    with joblib.parallel_backend("dask"):
        grid.fit(X[:800], y[:800])
    assert len(grid.cv_results_["params"]) == 4 and grid.best_score_ > 0.5
