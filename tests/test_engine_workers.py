"""The engine's own worker threads (fastnn/_kernels/workers.h): blocks of a large batch run
on the calling thread and on workers, and a block a worker is late with is computed by the
caller, with the same bits; a late worker never touches the caller's arrays."""
import gc
import os
import subprocess
import sys
import time
import weakref

import numpy as np
import pytest

from conftest import in_forked_child, in_threads
from fastnn._kernels import engine as engine_kernels
from fastnn._kernels import optim as optim_kernels
from fastnn._kernels._threads import CPU_LIMIT
from fastnn.engine import InferenceEngine

pytestmark = pytest.mark.skipif(CPU_LIMIT < 2, reason="workers need two CPUs")

DELAY = 0.3  # a worker "descheduled" this long after it takes a block


def _specs(rng):
    def dense(n_in, n_out, act):
        W = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32)
        return {"kind": "dense", "W": W, "b": (0.1 * rng.standard_normal(n_out)).astype(np.float32),
                "activation": act}
    return [dense(200, 96, "relu"), dense(96, 64, "relu"), dense(64, 10, "softmax")]


@pytest.fixture
def late_workers():
    engine_kernels._delay_workers(DELAY)
    try:
        yield
    finally:
        engine_kernels._delay_workers(0)


@pytest.fixture(scope="module")
def net():
    rng = np.random.default_rng(5)
    specs = _specs(rng)
    engines = {n: InferenceEngine(specs, layout="dense", n_threads=n) for n in (1, 2, 5)}
    assert engines[2]._plan.blockwise_from < 96
    X = rng.standard_normal((1001, 200)).astype(np.float32)
    return engines, X


def _until_a_worker_takes_a_block(call, seconds=30):
    """call() until a worker has taken a block during one of them; that call's result and
    the blocks of late workers the caller computed in it (a worker may come too late for a
    call on a busy machine, or still sleep in a block of an earlier test: try again)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        taken = engine_kernels._blocks_taken_by_workers()
        redone = engine_kernels._blocks_redone_by_callers()
        result = call()
        if engine_kernels._blocks_taken_by_workers() > taken:
            return result, engine_kernels._blocks_redone_by_callers() - redone
    pytest.fail(f"no worker took a block in {seconds} s")


@pytest.mark.parametrize("batch", [96, 100, 256, 257, 1001])
def test_results_are_the_same_bits_for_any_thread_count(net, batch):
    engines, X = net
    expected = engines[1].predict(X[:batch])
    for n in (2, 5):  # 5: more threads than CPUs
        for _ in range(20):
            np.testing.assert_array_equal(engines[n].predict(X[:batch]), expected)
        Y, _ = _until_a_worker_takes_a_block(lambda: engines[n].predict(X[:batch]))
        np.testing.assert_array_equal(Y, expected)


def test_results_are_the_same_bits_when_the_caller_computes_a_late_block(net, late_workers):
    engines, X = net
    expected = engines[1].predict(X[:256])
    Y, redone = _until_a_worker_takes_a_block(lambda: engines[2].predict(X[:256]))
    assert redone >= 1
    np.testing.assert_array_equal(Y, expected)


def test_a_late_worker_never_holds_up_the_call_nor_touches_its_arrays(net, late_workers):
    engines, X = net
    expected = engines[1].predict(X[:256])
    inputs = []
    for _ in range(3):
        x = X[:256].copy()
        out = np.zeros((256, 10), np.float32)
        _, redone = _until_a_worker_takes_a_block(lambda: engines[2].predict(x, out=out))
        assert redone >= 1  # the caller computed the worker's block rather than wait for it
        np.testing.assert_array_equal(out, expected)
        out[:] = -1    # the output may change at once after the call,
        x[:] = np.nan  # and the input...
        inputs.append(weakref.ref(x))
        del x          # ...or go
        gc.collect()
        assert inputs[-1]() is not None  # kept alive for the worker still reading it
        time.sleep(1.5 * DELAY)  # the worker is done with its block by now
        assert (out == -1).all()  # and wrote nothing into out
    engine_kernels._delay_workers(0)
    engines[2].predict(X[:256])
    gc.collect()
    assert all(ref() is None for ref in inputs)  # let go by the next call


def test_a_nan_in_a_block_of_a_worker_is_reported(net):
    engines, X = net
    def bad_call():
        with pytest.raises(ValueError, match="NaN or infinite"):
            engines[2].predict(x)

    for row in (0, 130, 255):  # the first block, the middle, the last (a worker's)
        x = X[:256].copy()
        x[row, 7] = np.nan
        for _ in range(5):
            bad_call()
    _until_a_worker_takes_a_block(bad_call)


def test_deleting_an_engine_while_a_worker_is_late_is_safe(late_workers):
    rng = np.random.default_rng(6)
    X = rng.standard_normal((300, 200)).astype(np.float32)
    for _ in range(3):
        specs = _specs(rng)
        expected = InferenceEngine(specs, layout="dense", n_threads=1).predict(X)
        engine = InferenceEngine(specs, layout="dense", n_threads=2)
        Y, _ = _until_a_worker_takes_a_block(lambda: engine.predict(X))
        del engine, specs  # its plan waits for the worker that still runs one of its blocks
        gc.collect()
        np.testing.assert_array_equal(Y, expected)
    time.sleep(1.5 * DELAY)


def test_interpreter_exit_while_a_worker_is_late():
    code = (
        "import numpy as np\n"
        "from fastnn._kernels import engine as k\n"
        "from fastnn.engine import InferenceEngine\n"
        "rng = np.random.default_rng(1)\n"
        "W1 = rng.standard_normal((200, 96)).astype(np.float32)\n"
        "W2 = rng.standard_normal((96, 10)).astype(np.float32)\n"
        "e = InferenceEngine([{'kind': 'dense', 'W': W1, 'activation': 'relu'},\n"
        "                     {'kind': 'dense', 'W': W2, 'activation': 'softmax'}],\n"
        "                    layout='dense', n_threads=2)\n"
        "X = rng.standard_normal((300, 200)).astype(np.float32)\n"
        "k._delay_workers(2.0)\n"
        "for _ in range(500):\n"
        "    Y = e.predict(X)\n"
        "    if k._blocks_taken_by_workers():\n"
        "        break\n"
        "print(Y.shape, k._blocks_taken_by_workers())\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, PYTHONPATH=os.getcwd()))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(300, 10) 1"  # the plan, freed at exit, waits for it




def test_a_forked_child_makes_its_own_workers(net):
    engines, X = net
    expected = engines[1].predict(X[:300])
    np.testing.assert_array_equal(engines[2].predict(X[:300]), expected)  # workers started
    # the child's own workers take a block
    result = in_forked_child(lambda: _until_a_worker_takes_a_block(
        lambda: engines[2].predict(X[:300]))[0])
    np.testing.assert_array_equal(result, expected)


def test_one_thread_starts_no_worker():
    code = (
        "import os, numpy as np\n"
        "from fastnn.engine import InferenceEngine\n"
        "rng = np.random.default_rng(1)\n"
        "W = rng.standard_normal((200, 10)).astype(np.float32)\n"
        "e = InferenceEngine([{'kind': 'dense', 'W': W, 'activation': 'relu'}], layout='dense')\n"
        "X = rng.standard_normal((500, 200)).astype(np.float32)\n"
        "before = len(os.listdir('/proc/self/task'))\n"
        "e.predict(X)\n"
        "print(before, len(os.listdir('/proc/self/task')))\n")
    if not os.path.isdir("/proc/self/task"):
        pytest.skip("needs /proc")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60,
                          env=dict(os.environ, PYTHONPATH=os.getcwd(), OMP_NUM_THREADS="1"))
    assert done.returncode == 0, done.stderr
    before, after = map(int, done.stdout.split())
    assert after == before


def test_python_threads_sharing_the_workers_match_serial_calls(net):
    engines, X = net
    inputs = [X[k * 100:k * 100 + n] for k, n in enumerate((96, 150, 256, 300, 500))]
    expected = [engines[1].predict(x) for x in inputs]

    def work(tid):
        for _ in range(10):
            for x, y in zip(inputs, expected):
                np.testing.assert_array_equal(engines[2].predict(x), y)

    in_threads(work, 4)


def _subnormal_net(seed, rows):
    """Linear layers without bias and subnormal inputs: results that are subnormal, or zero
    where subnormals are flushed (flush-to-zero, denormals-are-zero). Compare bits as
    integers: under denormals-are-zero a subnormal compares as 0."""
    rng = np.random.default_rng(seed)
    specs = [{"kind": "dense", "activation": "linear", "b": np.zeros(n_out, np.float32),
              "W": (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)}
             for n_in, n_out in ((200, 96), (96, 10))]
    return specs, (rng.standard_normal((rows, 200)) * 1e-39).astype(np.float32)


@pytest.mark.skipif(not optim_kernels.FLUSHES_SUBNORMALS, reason="x86 floating-point mode")
def test_workers_compute_in_the_callers_floating_point_mode():
    # A caller that flushes subnormals gets zeros, and so must the blocks its workers run.
    specs, X = _subnormal_net(9, 1001)
    engines = {n: InferenceEngine(specs, layout="dense", n_threads=n) for n in (1, 2)}
    assert engines[1].predict(X).view(np.int32).all(axis=1).any()  # subnormal results
    _until_a_worker_takes_a_block(lambda: engines[2].predict(X))  # workers started unflushed
    was = engine_kernels._flush_subnormals(True)
    try:
        flushed = engines[1].predict(X)
        for _ in range(100):  # a call in which a worker's block was used, not redone
            Y, redone = _until_a_worker_takes_a_block(lambda: engines[2].predict(X))
            if redone == 0:
                break
    finally:
        engine_kernels._flush_subnormals(was)
    assert redone == 0
    assert not flushed.view(np.int32).any()
    assert not Y.view(np.int32).any()


@pytest.mark.skipif(not optim_kernels.FLUSHES_SUBNORMALS, reason="x86 floating-point mode")
def test_an_openmp_team_computes_in_the_callers_floating_point_mode():
    # While another call holds the workers, a call's blocks run on an OpenMP team, whose
    # threads must take on the flushing caller's mode too.
    specs, X = _subnormal_net(10, 400)
    busy, flushed = InferenceEngine(specs, n_threads=2), InferenceEngine(specs, n_threads=2)
    start = time.monotonic()
    flush_at, stop = start + 0.5, start + 1.5
    results = []

    def work(tid):
        if tid == 0:  # holds the workers
            while time.monotonic() < stop:
                busy.predict(X)
            return
        while time.monotonic() < flush_at:  # this thread's OpenMP team starts unflushed
            flushed.predict(X)
        was = engine_kernels._flush_subnormals(True)
        try:
            while time.monotonic() < stop:
                results.append(flushed.predict(X))
        finally:
            engine_kernels._flush_subnormals(was)

    in_threads(work, 2)
    assert results and not any(Y.view(np.int32).any() for Y in results)


@pytest.mark.parametrize("precision, calibrate", [("int8", True), ("int8", False),
                                                  ("bf16", False)])
def test_quantized_engines_run_blocks_on_workers_with_the_same_bits(precision, calibrate,
                                                                    late_workers):
    # Quantized layers run blockwise too, each thread in its own scratch; a block a worker
    # is late with is computed by the caller; a NaN in a block's rows is found.
    from fastnn.quantization import plan_precision
    rng = np.random.default_rng(11)
    X = rng.standard_normal((300, 200)).astype(np.float32)
    specs = plan_precision(_specs(rng), precision, X[:64] if calibrate else None)
    engines = {n: InferenceEngine(specs, n_threads=n) for n in (1, 2)}
    assert engines[2]._plan.blockwise_from <= 96
    expected = engines[1].predict(X)
    Y, redone = _until_a_worker_takes_a_block(lambda: engines[2].predict(X))
    np.testing.assert_array_equal(Y, expected)
    assert redone >= 1
    engine_kernels._delay_workers(0)
    X[250, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _until_a_worker_takes_a_block(lambda: engines[2].predict(X))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="CPU affinity is Linux's")
def test_workers_keep_their_cpus_after_moving_off_the_callers(net):
    # A worker that joins on its caller's CPU moves to another one for the job and sets
    # its affinity back at once (workers.h, fnw_unpack): no thread stays pinned. The
    # caller here runs on one CPU, so a worker that joins there has to move.
    engines, X = net
    cpus = sorted(os.sched_getaffinity(0))
    _until_a_worker_takes_a_block(lambda: engines[2].predict(X))  # workers made: all CPUs
    try:
        os.sched_setaffinity(0, {cpus[0]})  # this (the calling) thread only
        _until_a_worker_takes_a_block(lambda: engines[2].predict(X))
        _until_a_worker_takes_a_block(lambda: engines[2].predict(X))
    finally:
        os.sched_setaffinity(0, set(cpus))
    for task in os.listdir("/proc/self/task"):
        assert os.sched_getaffinity(int(task)) == set(cpus), task
