"""Structured pruning: the 784-256-128-10 MLP before and after removing half of each
hidden layer's units, both deployed, at batch 256 (float32).

Run: python -m pytest bench/bench_pruning.py --benchmark-only
"""
import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn.pruning import prune_neurons

BATCH = 256


@pytest.fixture(scope="module")
def models():
    model = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                           L.Dense(10, activation="softmax")], input_dim=784, seed=0)
    X = np.random.default_rng(0).standard_normal((BATCH, 784)).astype(np.float32)
    return model, prune_neurons(model, 0.5, criterion="activation", X=X), X


def test_structured_unpruned(benchmark, models):
    benchmark.group = f"structured pruning, half the hidden units, batch {BATCH}"
    engine = fn.deploy(models[0])
    benchmark(engine.predict, models[2])


def test_structured_fastnn_pruned(benchmark, models):
    benchmark.group = f"structured pruning, half the hidden units, batch {BATCH}"
    engine = fn.deploy(models[1])
    assert [e["shape"] for e in engine.layout()] == [(784, 128), (128, 64), (64, 10)]
    benchmark(engine.predict, models[2])
