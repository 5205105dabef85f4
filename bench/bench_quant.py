"""Quantized engines: the 784-256-128-10 MLP (ReLU, softmax) in float32, int8 and bf16.

Speed: contenders per batch size, side by side: fastnn's float32 engine, its int8
engine (static input scales from calibration rows), its bf16 engine, ONNX Runtime in
float32 and ONNX Runtime's own int8 model (``quantize_dynamic``, MatMul form); ONNX
Runtime with all graph optimizations, every contender on one intra-op thread at
batch 1 and two otherwise.

Accuracy: networks trained on the bundled digits (64-64-32-10, and 784-256-128-10 on
the digits upscaled to 28x28), test accuracy of the model and of each engine, in
points lost against the float32 model (targets: int8 at most 0.5, bf16 at most 0.2).

    python bench/bench_quant.py            # interleaved rounds, median ratios; accuracy
    python bench/report.py --suite quant   # pytest-benchmark, ratios to the quantized engines
"""
import os
import sys
import tempfile

import numpy as np
import pytest

sys.path.insert(0, os.path.dirname(__file__))
from bench_engine import SIZES, model, onnx_session  # noqa: E402
from bench_engine import interleaved as engine_interleaved  # noqa: E402

import fastnn as fn  # noqa: E402
from fastnn.deployment import engine_layers  # noqa: E402
from fastnn.engine import InferenceEngine  # noqa: E402
from fastnn.quantization import evaluate, plan_precision  # noqa: E402

BATCHES = (1, 256)
KINDS = ("fastnn-float32", "fastnn-int8", "fastnn-bf16", "onnxruntime-float32",
         "onnxruntime-int8")
MAX_LOSS = {"int8": 0.5, "bf16": 0.2}
"""Accuracy points each precision may lose against the float32 model."""
_CACHE = {}


def _threads(batch):
    return 1 if batch == 1 else 2


def _specs():
    return [{"kind": "dense", "W": W, "b": b, "activation": act} for W, b, act in model(0.0)]


def _calibration():
    return np.random.default_rng(7).standard_normal((256, SIZES[0])).astype(np.float32)


def _ort_session(layers, threads, quantize):
    """ONNX Runtime's predict of `layers` ([(W, b, activation)]) in float32, or with the
    weights quantized by its own ``quantize_dynamic`` (int8 MatMul form)."""
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    proto = onnx_session(layers, threads, return_proto=True).SerializeToString()
    if quantize:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = os.path.join(tmp, "f32.onnx"), os.path.join(tmp, "int8.onnx")
            with open(src, "wb") as f:
                f.write(proto)
            quantize_dynamic(src, dst, weight_type=QuantType.QInt8)
            with open(dst, "rb") as f:
                proto = f.read()
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(proto, options, providers=["CPUExecutionProvider"])
    return lambda X: session.run(None, {"X": X})[0]


def contender(kind, batch):
    """The predict function of one contender, built once per (kind, threads)."""
    threads = _threads(batch)
    key = (kind, threads)
    if key not in _CACHE:
        if kind.startswith("onnxruntime"):
            pytest.importorskip("onnxruntime")
            pytest.importorskip("onnx")
            _CACHE[key] = _ort_session(model(0.0), threads, kind.endswith("int8"))
        else:
            precision = kind.split("-")[1]
            specs = _specs() if precision == "float32" else plan_precision(
                _specs(), precision, _calibration() if precision == "int8" else None)
            _CACHE[key] = InferenceEngine(specs, n_threads=threads).predict
    return _CACHE[key]


def _bench(benchmark, batch, kind):
    benchmark.group = f"quantized engines batch {batch:4d}"
    benchmark.extra_info.update(batch=batch, kind=kind)
    predict = contender(kind, batch)
    X = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
    reference = contender("fastnn-float32", batch)(X)
    np.testing.assert_allclose(predict(X), reference, atol=0.05)
    benchmark(predict, X)


# The quantized engines are the fastnn entries of bench/report.py; the float32 engine
# and ONNX Runtime are their baselines, so the report's ratios are the targets' ones.
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_fastnn_quantized(benchmark, batch, precision):
    _bench(benchmark, batch, f"fastnn-{precision}")


@pytest.mark.parametrize("batch", BATCHES)
def test_float32_engine(benchmark, batch):
    _bench(benchmark, batch, "fastnn-float32")


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_onnxruntime(benchmark, batch, precision):
    _bench(benchmark, batch, f"onnxruntime-{precision}")


def interleaved(batch, rounds=15):
    """Time per call (us) of every contender in each of `rounds` rounds that run the
    contenders one after another, each after a pause that lets the spinning threads of
    the one before go to sleep (`bench_engine.interleaved`): {kind: [us, ...]}."""
    X = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
    runs = {}
    for kind in KINDS:
        try:
            runs[kind] = contender(kind, batch)
        except pytest.skip.Exception:
            pass
    return {kind: np.array(t) * 1e6 for kind, t in engine_interleaved(runs, X, rounds).items()}


SPEED_UPS = (("fastnn-int8", "fastnn-float32", 3), ("fastnn-int8", "onnxruntime-float32", 6),
             ("fastnn-int8", "onnxruntime-int8", 1), ("fastnn-bf16", "fastnn-float32", 2))
"""(contender, baseline, target speed-up at batch 1)."""


# ------------------------------------------------------------------------- accuracy

def _digits(size):
    """The bundled digits in [0, 1], as 8x8 images or upscaled (bilinear) to size x size."""
    from scipy.ndimage import zoom

    X, y = fn.datasets.load_digits()
    X = X / 16
    if size != 8:
        X = np.stack([zoom(img, size / 8, order=1) for img in X.reshape(-1, 8, 8)])
    return X.reshape(len(X), -1).astype(np.float32), y


def trained(size, hidden, epochs, seed=0):
    """(model, X_train, X_test, y_test): an MLP of ReLU `hidden` layers trained on the
    digits at `size` x `size`."""
    X, y = _digits(size)
    X_train, X_test, y_train, y_test = fn.datasets.train_test_split(X, y, test_size=0.25,
                                                                    random_state=0)
    net = fn.Sequential([fn.layers.Dense(n, activation="relu") for n in hidden]
                        + [fn.layers.Dense(10, activation="softmax")],
                        input_dim=X.shape[1], seed=seed, dtype="float32")
    net.compile(optimizer=fn.optimizers.Adam(lr=1e-3), loss="sparse_categorical_crossentropy",
                metrics=["accuracy"])
    net.fit(X_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    return net, X_train, X_test, y_test


NETWORKS = {"digits 64-64-32-10": (8, (64, 32), 20),
            "digits 28x28 784-256-128-10": (28, (256, 128), 8)}


def accuracy(name):
    """{engine: (test accuracy, points lost against the float32 model)} of one network."""
    net, X_train, X_test, y_test = trained(*NETWORKS[name])
    engines = {"fastnn-float32": fn.deploy(net),
               "fastnn-int8": fn.deploy(net, precision="int8", calibration=X_train[:500]),
               "fastnn-int8 (dynamic)": fn.deploy(net, precision="int8"),
               "fastnn-bf16": fn.deploy(net, precision="bf16")}
    rows = {}
    for kind, engine in engines.items():
        r = evaluate(net, engine, X_test, y_test)
        rows[kind] = (r["engine"], 100 * (r["model"] - r["engine"]))
    if X_test.shape[1] == SIZES[0]:  # the ONNX graph of bench_engine takes 784 inputs
        try:
            predict = _ort_session([(s["W"].astype(np.float32), s["b"].astype(np.float32),
                                     s["activation"]) for s in engine_layers(net)], 1, True)
        except ImportError:
            return r["model"], rows
        hit = float((predict(X_test).argmax(1) == y_test).mean())
        rows["onnxruntime-int8"] = (hit, 100 * (r["model"] - hit))
    return r["model"], rows


@pytest.mark.parametrize("name", list(NETWORKS))
def test_accuracy(name):
    _, rows = accuracy(name)
    for kind, (_, lost) in rows.items():
        precision = kind.split("-")[1].split()[0]
        if kind.startswith("fastnn") and precision in MAX_LOSS:
            assert lost <= MAX_LOSS[precision] + 1e-9, (kind, lost)


if __name__ == "__main__":
    print(f"speed: {os.cpu_count()} CPUs; time per call, median of interleaved rounds")
    for batch in BATCHES:
        print(f"batch {batch} (threads {_threads(batch)})")
        times = interleaved(batch)
        for kind, t in times.items():
            print(f"  {kind:22s} {np.median(t):9.2f} us")
        for kind, base, target in SPEED_UPS:
            if kind in times and base in times:
                print(f"  {kind} vs {base}: {np.median(times[base] / times[kind]):5.2f}x"
                      + (f" (target {target}x)" if batch == 1 else ""))
    print("accuracy: test accuracy and points lost against the float32 model")
    for name in NETWORKS:
        reference, rows = accuracy(name)
        print(f"{name}: float32 model {100 * reference:.2f}%")
        for kind, (hit, lost) in rows.items():
            print(f"  {kind:22s} {100 * hit:6.2f}%   lost {lost:+5.2f} points")
