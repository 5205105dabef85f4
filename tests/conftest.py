import multiprocessing
import threading

import numpy as np
import pytest

DTYPES = [np.float32, np.float64]
# Relative and absolute tolerances per dtype, for kernels held to their numpy twins.
RTOL = {np.float32: 1e-5, np.float64: 1e-12}
ATOL = {np.float32: 1e-6, np.float64: 1e-13}


def assert_close(actual, expected, dtype, scale=1.0):
    """assert_allclose with the per-dtype tolerances (times `scale` for long reductions)."""
    np.testing.assert_allclose(actual, expected, rtol=RTOL[dtype] * scale, atol=ATOL[dtype] * scale)


@pytest.fixture(params=DTYPES, ids=["float32", "float64"])
def dtype(request):
    return request.param


def numeric_gradient(f, a, h=1e-6):
    """Central finite differences of the scalar ``f()`` with respect to every element of
    the array `a` that f reads: each element is moved by +h and -h in place, then put
    back, so `a` may be a layer's own weight. Returns float64 of `a`'s shape."""
    grad = np.zeros(a.shape)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, a), "a must be contiguous: it is changed through a view"
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + h
        up = f()
        flat[i] = saved - h
        down = f()
        flat[i] = saved
        gflat[i] = (up - down) / (2 * h)
    return grad


def _put_result(queue, call):
    queue.put(call())


def in_forked_child(call, timeout=60):
    """call() in a forked child process, and its result (the child must exit cleanly)."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_put_result, args=(queue, call))
    child.start()
    try:
        result = queue.get(timeout=timeout)
    finally:
        child.join(timeout=timeout)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0
    return result


def in_threads(work, n):
    """work(tid) on n threads at once, tid = 0 .. n - 1; the first exception any of them
    raised is raised again here, in the calling thread."""
    errors = []

    def run(tid):
        try:
            work(tid)
        except BaseException as exc:  # reported below, in the calling thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
