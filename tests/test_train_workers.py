"""A compiled training step on fastnn's own worker threads (fastnn/_kernels/workers.h): the
caller returns when every piece of the step is done, never waiting for a worker that has
not started, and the results are those of one thread."""
import time

import numpy as np
import pytest

from conftest import in_forked_child
import fastnn as fn
from fastnn import layers as L
from fastnn._kernels import train as train_kernels
from fastnn._kernels._threads import CPU_LIMIT

pytestmark = pytest.mark.skipif(CPU_LIMIT < 2, reason="workers need two CPUs")

DELAY = 0.05  # a worker "descheduled" this long


def _data():
    rng = np.random.default_rng(3)
    return rng.standard_normal((1280, 300)).astype(np.float32), rng.integers(0, 4, 1280)


def _train(threads, X, y, steps=5):
    """Weights and optimizer state after `steps` steps of 256 rows on `threads` threads
    (enough work for two threads)."""
    fn.set_num_threads(threads)
    try:
        model = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                               L.Dense(4, activation="softmax")],
                              input_dim=300, dtype="float32", seed=0)
        model.compile(fn.optimizers.Adam(lr=1e-2), "sparse_categorical_crossentropy")
        model.fit(X[:256 * steps], y[:256 * steps], epochs=1, batch_size=256, shuffle=False,
                  verbose=0)
        return model.get_weights() + model.optimizer.get_state()
    finally:
        fn.set_num_threads(None)


def _assert_same(a, b):
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)


def _until_workers_take_a_piece(call, seconds=30):
    """call() until the workers took a piece of a step during one of them, and that call's
    result (on a busy machine every step may end before a worker wakes: try again)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pieces, _ = train_kernels._worker_counts()
        result = call()
        if train_kernels._worker_counts()[0] > pieces:
            return result
    pytest.fail(f"no worker took a piece in {seconds} s")


@pytest.fixture
def delayed():
    def delay(seconds, in_piece):
        train_kernels._delay_workers(seconds, in_piece)
    yield delay
    train_kernels._delay_workers(0)


def test_workers_take_pieces_and_give_the_bits_of_one_thread():
    X, y = _data()
    expected = _train(1, X, y)
    _assert_same(_until_workers_take_a_piece(lambda: _train(2, X, y)), expected)


def test_a_worker_that_joins_late_is_not_waited_for(delayed):
    X, y = _data()
    expected = _train(1, X, y)
    three = _train(1, X, y, steps=3)
    delayed(DELAY, in_piece=False)  # every worker sleeps before it looks at a step
    _, late = train_kernels._worker_counts()
    end = time.monotonic() + 30
    while train_kernels._worker_counts()[1] == late and time.monotonic() < end:
        # the steps end without the worker, which finds them closed when it wakes (on a
        # busy machine it may wake only after the last: train again)
        _assert_same(_train(2, X, y, steps=3), three)
        time.sleep(2 * DELAY)
    assert train_kernels._worker_counts()[1] > late
    delayed(0, False)
    _assert_same(_train(2, X, y), expected)


def test_a_worker_late_in_a_piece_holds_only_that_piece(delayed):
    X, y = _data()
    expected = _train(1, X, y)
    delayed(DELAY, in_piece=True)  # a worker sleeps in the first piece it takes of a step
    _assert_same(_until_workers_take_a_piece(lambda: _train(2, X, y)), expected)




def test_a_forked_child_trains_on_its_own_workers():
    X, y = _data()
    expected = _train(2, X, y)  # the parent's workers started
    # the child's own workers take a piece
    _assert_same(in_forked_child(lambda: _until_workers_take_a_piece(lambda: _train(2, X, y))),
                 expected)


def test_a_step_whose_loss_is_not_finite_updates_nothing_on_workers():
    X, y = _data()
    fn.set_num_threads(2)
    try:
        model = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(4, activation="softmax")],
                              input_dim=300, dtype="float32", seed=0)
        model.compile(fn.optimizers.Adam(lr=1e-2), "sparse_categorical_crossentropy")
        weights = model.get_weights()
        weights[2][:] = 3e38  # logits overflow to infinity: the loss is NaN
        model.set_weights(weights)
        def step():
            with pytest.raises(fn.callbacks.NonFiniteLossError):
                model.fit(X[:256], y[:256], epochs=1, batch_size=256, verbose=0)
            _assert_same(model.get_weights(), weights)
            assert model.optimizer.iterations == 0

        _until_workers_take_a_piece(step)  # the workers ran part of the forward pass
    finally:
        fn.set_num_threads(None)
