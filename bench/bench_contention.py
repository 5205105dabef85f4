"""Latency and training time with one core kept busy by another process, against quiet.

A second process (``python -c 'while True: pass'``) spins on one core; it is paused
(SIGSTOP) for the quiet rounds and resumed (SIGCONT) for the busy ones, so quiet and
busy alternate round by round in one test, and it is killed by its PID at teardown.
Contenders: the fastnn engine (default threads), ONNX Runtime (one intra-op thread at
batch 1, two otherwise) and torch under ``inference_mode`` (the same thread counts), on
the 784-256-128-10 network of bench_engine.py; and one training epoch of fastnn and
torch (two threads) on bench_training.py's data. Peers not installed are skipped.

Each test records, in extra_info, the median and 99th-percentile latency (or the
median epoch time) quiet and busy, and their busy/quiet ratios; ``-s`` prints them.
Targets: p99 busy at most 3x quiet at batch 1 and 256; an epoch at most 1.5x.

    flock /tmp/bench.lock python -m pytest bench/bench_contention.py --benchmark-disable -s -q
    FASTNN_BENCH_SAMPLES=2048 ...   (smoke: fewer calls and a short epoch)

Script mode, latency only (rounds of quiet and busy, default 6; --batch= repeatable,
default 1 and 256; --peers adds ONNX Runtime and torch):

    cd bench && python bench_contention.py --batch=256 --peers 10
"""
import contextlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from bench_engine import SIZES, engine, model, onnx_session
from bench_training import N_SAMPLES, fastnn_epoch, fastnn_model, torch_epoch, torch_model

SMOKE = N_SAMPLES < 60000
ROUNDS = 2 if SMOKE else 6            # quiet/busy alternations
CALLS = {1: 200 if SMOKE else 2000, 256: 10 if SMOKE else 200}   # timed calls per round
EPOCH_ROUNDS = 1 if SMOKE else 3


@contextlib.contextmanager
def _spinning():
    """A process that keeps one core busy, paused until a busy round resumes it."""
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        os.kill(proc.pid, signal.SIGSTOP)
        yield proc
    finally:
        proc.kill()  # by its PID, whatever happened
        proc.wait()


@pytest.fixture(scope="module")
def spinner():
    with _spinning() as proc:
        yield proc


def _alternate(spinner, measure, rounds=ROUNDS):
    """{'quiet': [...], 'busy': [...]}: measure() per round, quiet and busy alternating."""
    samples = {"quiet": [], "busy": []}
    for _ in range(rounds):
        for load in ("quiet", "busy"):
            os.kill(spinner.pid, signal.SIGCONT if load == "busy" else signal.SIGSTOP)
            time.sleep(0.05)  # let the scheduler see the new load
            samples[load] += measure()
    os.kill(spinner.pid, signal.SIGSTOP)
    return samples


def _record(benchmark, name, samples, stats):
    summary = {f"{load}_{stat}_us": float(np.percentile(values, q) * 1e6)
               for load, values in samples.items() for stat, q in stats}
    for stat, _ in stats:
        summary[f"{stat}_ratio"] = summary[f"busy_{stat}_us"] / summary[f"quiet_{stat}_us"]
    benchmark.extra_info.update(summary)
    print(f"\n{name}: " + ", ".join(f"{k} {v:.3g}" for k, v in summary.items()))


def _predictor(kind, batch):
    layers = model(0.0)
    threads = 1 if batch == 1 else 2
    if kind == "fastnn":
        return engine(layers, "auto").predict
    if kind == "onnxruntime":
        pytest.importorskip("onnx")
        pytest.importorskip("onnxruntime")
        return onnx_session(layers, threads)
    torch = pytest.importorskip("torch")
    net = torch.nn.Sequential(*[m for W, b, act in layers for m in (
        _linear(torch, W, b), torch.nn.ReLU() if act == "relu" else torch.nn.Softmax(dim=1))])

    def predict(X):
        previous = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            with torch.inference_mode():
                return net(torch.from_numpy(X)).numpy()
        finally:
            torch.set_num_threads(previous)
    return predict


def _linear(torch, W, b):
    layer = torch.nn.Linear(*W.shape)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W.T.copy()))
        layer.bias.copy_(torch.from_numpy(b))
    return layer


# One test per contender, the contender's name a word of the test's name, as
# bench/report.py tells fastnn's entries from the peers'.
@pytest.mark.parametrize("batch", [1, 256])
def test_latency_fastnn(benchmark, spinner, batch):
    _latency(benchmark, spinner, "fastnn", batch)


@pytest.mark.parametrize("batch", [1, 256])
def test_latency_onnxruntime(benchmark, spinner, batch):
    _latency(benchmark, spinner, "onnxruntime", batch)


@pytest.mark.parametrize("batch", [1, 256])
def test_latency_torch(benchmark, spinner, batch):
    _latency(benchmark, spinner, "torch", batch)


def _latency(benchmark, spinner, kind, batch):
    benchmark.group = f"contention latency batch {batch}"
    predict, X = _latency_case(kind, batch)
    _record(benchmark, f"{kind} batch {batch}", _latency_samples(spinner, predict, X),
            [("p50", 50), ("p99", 99)])
    benchmark(predict, X)


def _latency_case(kind, batch):
    """The contender's predict and an input of `batch` rows, checked against fastnn."""
    predict = _predictor(kind, batch)
    X = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
    np.testing.assert_allclose(predict(X), _predictor("fastnn", batch)(X), rtol=1e-4, atol=1e-6)
    return predict, X


def _latency_samples(spinner, predict, X, rounds=ROUNDS):
    """Latencies of calls, quiet and busy alternating (see `_alternate`)."""
    def calls():
        times = []
        for _ in range(CALLS.get(len(X), 200)):
            start = time.perf_counter()
            predict(X)
            times.append(time.perf_counter() - start)
        return times

    return _alternate(spinner, calls, rounds)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return rng.random((N_SAMPLES, SIZES[0]), dtype=np.float32), rng.integers(0, SIZES[-1], N_SAMPLES)


def test_training_epoch_fastnn(benchmark, spinner, data):
    _training_epoch(benchmark, spinner, data, "fastnn")


def test_training_epoch_torch(benchmark, spinner, data):
    _training_epoch(benchmark, spinner, data, "torch")


def _training_epoch(benchmark, spinner, data, kind):
    benchmark.group = "contention training epoch"
    X, y = data
    if kind == "torch":
        torch = pytest.importorskip("torch")
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        build, epoch = torch_model, lambda m: torch_epoch(m, Xt, yt)
    else:
        build, epoch = fastnn_model, lambda m: fastnn_epoch(m, X, y)

    def calls():
        m = build()
        start = time.perf_counter()
        epoch(m)
        return [time.perf_counter() - start]

    if kind == "torch":
        previous = torch.get_num_threads()
        torch.set_num_threads(2)
    try:
        _record(benchmark, f"{kind} epoch ({N_SAMPLES} samples)",
                _alternate(spinner, calls, EPOCH_ROUNDS),
                [("median", 50)])
        benchmark.pedantic(epoch, setup=lambda: ((build(),), {}), rounds=1, iterations=1)
    finally:
        if kind == "torch":
            torch.set_num_threads(previous)


class _Extra:
    """Stands for pytest-benchmark's fixture in script mode: `_record` fills extra_info."""

    def __init__(self):
        self.extra_info = {}


def main(argv):
    rounds = ([int(a) for a in argv if a.isdigit()] or [ROUNDS])[0]
    batches = [int(a.split("=", 1)[1]) for a in argv if a.startswith("--batch=")] or [1, 256]
    kinds = ["fastnn"] + (["onnxruntime", "torch"] if "--peers" in argv else [])
    with _spinning() as spinner:
        for batch in batches:
            for kind in kinds:
                try:
                    predict, X = _latency_case(kind, batch)
                except pytest.skip.Exception as exc:
                    print(f"\n{kind} batch {batch}: skipped ({exc})")
                    continue
                _record(_Extra(), f"{kind} batch {batch}",
                        _latency_samples(spinner, predict, X, rounds), [("p50", 50), ("p99", 99)])


if __name__ == "__main__":
    main(sys.argv[1:])
