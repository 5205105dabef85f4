"""Quantized engines: the 784-256-128-10 MLP (ReLU, softmax) in float32, int8 and bf16.

Contenders per batch size, side by side: fastnn's float32 engine, its int8 engine
(static input scales from calibration rows), its bf16 engine, ONNX Runtime in float32
and ONNX Runtime's own int8 model (``quantize_dynamic``, MatMul form, graph
optimizations on); one intra-op thread at batch 1, two otherwise, for every contender.

    python -m pytest bench/bench_quant.py --benchmark-only -q
    python bench/bench_quant.py            # interleaved rounds, median ratios
"""
import os
import sys
import tempfile
import time

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from bench_engine import SIZES, model, onnx_session  # noqa: E402

from fastnn.engine import InferenceEngine  # noqa: E402
from fastnn.quantization import plan_precision  # noqa: E402

BATCHES = (1, 256)
KINDS = ("fastnn-float32", "fastnn-int8", "fastnn-bf16", "onnxruntime-float32",
         "onnxruntime-int8")
_CACHE = {}


def _threads(batch):
    return 1 if batch == 1 else 2


def _specs():
    return [{"kind": "dense", "W": W, "b": b, "activation": act} for W, b, act in model(0.0)]


def _calibration():
    return np.random.default_rng(7).standard_normal((256, SIZES[0])).astype(np.float32)


def _ort_int8(threads):
    """ONNX Runtime's own dynamic int8 quantization of the float32 graph."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    run = onnx_session(model(0.0), threads, return_proto=True)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "f32.onnx"), os.path.join(tmp, "int8.onnx")
        with open(src, "wb") as f:
            f.write(run.SerializeToString())
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(dst, options, providers=["CPUExecutionProvider"])
    return lambda X: session.run(None, {"X": X})[0]


def contender(kind, batch):
    """The predict function of one contender, built once per (kind, threads)."""
    threads = _threads(batch)
    key = (kind, threads)
    if key not in _CACHE:
        if kind.startswith("onnxruntime"):
            pytest.importorskip("onnxruntime")
            pytest.importorskip("onnx")
            _CACHE[key] = (onnx_session(model(0.0), threads) if kind.endswith("float32")
                           else _ort_int8(threads))
        else:
            precision = kind.split("-")[1]
            specs = _specs() if precision == "float32" else plan_precision(
                _specs(), precision, _calibration() if precision == "int8" else None)
            _CACHE[key] = InferenceEngine(specs, n_threads=threads).predict
    return _CACHE[key]


CASES = pytest.mark.parametrize("batch,kind", [(b, k) for b in BATCHES for k in KINDS])


@CASES
def test_predict(benchmark, batch, kind):
    benchmark.group = f"quantized engines batch {batch:4d}"
    benchmark.extra_info.update(batch=batch, kind=kind)
    predict = contender(kind, batch)
    X = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
    reference = contender("fastnn-float32", batch)(X)
    np.testing.assert_allclose(predict(X), reference, atol=0.05)
    benchmark(predict, X)


def interleaved(batch, rounds=15, calls=None):
    """Median time per call (us) of every contender and its ratio to fastnn float32,
    from rounds that run the contenders one after another."""
    X = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
    calls = calls or max(20, 20000 // (batch * 8))
    runs = {}
    for kind in KINDS:
        try:
            runs[kind] = contender(kind, batch)
        except pytest.skip.Exception:
            pass
    times = {kind: [] for kind in runs}
    for _ in range(rounds):
        for kind, predict in runs.items():
            predict(X)
            t = time.perf_counter()
            for _ in range(calls):
                predict(X)
            times[kind].append((time.perf_counter() - t) / calls * 1e6)
    base = np.array(times["fastnn-float32"])
    return {kind: (float(np.median(t)), float(np.median(np.array(t) / base)))
            for kind, t in times.items()}


if __name__ == "__main__":
    for batch in BATCHES:
        print(f"batch {batch} (threads {_threads(batch)})")
        for kind, (us, ratio) in interleaved(batch).items():
            print(f"  {kind:22s} {us:9.2f} us   time / fastnn-float32 {ratio:6.3f}")
