"""Scoring a large table with the 784-256-128-10 engine: a 2-worker Dask cluster beside one process.

The table is FASTNN_BENCH_SAMPLES rows (default 2,000,000) of 784 float32 features,
never held whole: each block of BLOCK rows is generated where it is scored
(``default_rng(block index)``, uniform in [0, 1)), so both contenders pay the same
generation cost. The engine is the dense 784-256-128-10 network (ReLU, ReLU, softmax)
with random weights; each contender sums the output columns over the table.

Contenders, in the group "dask scoring":
  score_fastnn_cluster   fastnn.dask.predict on distributed.LocalCluster(n_workers=2,
                         threads_per_worker=1, processes=True) (OMP_NUM_THREADS=1 in workers)
  score_one_process      the same graph with dask's synchronous scheduler in this process,
                         the engine on fastnn's default thread count

Rows per second are recorded as extra_info["rows_per_s"].

Run: python -m pytest bench/bench_dask.py --benchmark-only
Smoke: FASTNN_BENCH_SAMPLES=2048 python -m pytest bench/bench_dask.py --benchmark-disable -q
"""
import os

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

import fastnn as fn  # noqa: E402
import fastnn.dask  # noqa: E402,F401

N_ROWS = int(os.environ.get("FASTNN_BENCH_SAMPLES", "2000000"))
BLOCK = 50_000
SIZES = (784, 256, 128, 10)
ROUNDS = 3
GROUP = "dask scoring"


def _engine():
    rng = np.random.default_rng(0)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append({"kind": "dense", "W": rng.normal(0, (2 / n_in) ** 0.5, (n_in, n_out)),
                       "b": np.zeros(n_out),
                       "activation": "softmax" if i == len(SIZES) - 2 else "relu"})
    return fn.InferenceEngine(layers, dtype="float32")


def _block(block, block_info=None):
    rows = block.shape[0]
    seed = block_info[None]["chunk-location"][0]
    return np.random.default_rng(seed).random((rows, SIZES[0]), dtype=np.float32)


def _table():
    rows = min(BLOCK, N_ROWS)
    shape = (N_ROWS, SIZES[0])
    empty = da.empty(shape, chunks=(rows, SIZES[0]), dtype=np.float32)
    return empty.map_blocks(_block, dtype=np.float32)


def _score(scheduler=None):
    total = fn.dask.predict(_engine(), _table()).sum(axis=0)
    return total.compute(scheduler=scheduler) if scheduler else total.compute()


def _record(benchmark, result):
    assert result.shape == (SIZES[-1],)
    np.testing.assert_allclose(result.sum(), N_ROWS, rtol=1e-3)  # softmax rows sum to 1
    benchmark.extra_info["samples"] = N_ROWS
    if benchmark.stats is not None:
        benchmark.extra_info["rows_per_s"] = N_ROWS / benchmark.stats.stats.median


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def test_score_fastnn_cluster(benchmark, client):
    benchmark.group = GROUP
    result = benchmark.pedantic(_score, rounds=ROUNDS, iterations=1, warmup_rounds=1)
    _record(benchmark, result)


def test_score_one_process(benchmark):
    benchmark.group = GROUP
    result = benchmark.pedantic(_score, args=("synchronous",), rounds=ROUNDS, iterations=1,
                                warmup_rounds=1)
    _record(benchmark, result)
