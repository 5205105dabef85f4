"""Inference engine benchmarks: a 784-256-128-10 MLP (ReLU, softmax), float32, pruned.

Each group is one (sparsity, batch) pair with four contenders side by side: the
engine with its automatic layout, the same engine forced dense, a scipy.sparse CSR
chain and ONNX Runtime (skipped when onnxruntime is not importable). Pruning is
unstructured, by magnitude, per layer. ONNX Runtime runs one intra-op thread for
one row and two otherwise; fastnn uses its default thread count.

    python -m pytest bench/bench_engine.py --benchmark-only -q
    python bench/report.py --suite engine

``python bench/bench_engine.py --calibrate`` times single layers dense and CSR over
densities and batch sizes and prints the crossover densities behind
``fastnn.engine.CROSSOVER_DENSITY``.
"""
import sys
import time

import numpy as np
import pytest

from fastnn.engine import InferenceEngine

SIZES = (784, 256, 128, 10)
ACTIVATIONS = ("relu", "relu", "softmax")
SPARSITIES = (0.0, 0.5, 0.9, 0.95)
BATCHES = (1, 32, 256, 1024)


def he_weights(rng, sizes=SIZES, dtype=np.float32):
    """He-scaled random kernels and small biases for consecutive layer sizes."""
    return [((rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dtype),
             (0.01 * rng.standard_normal(n_out)).astype(dtype))
            for n_in, n_out in zip(sizes[:-1], sizes[1:])]


def prune(W, sparsity):
    """W with the fraction `sparsity` of its entries of smallest magnitude set to zero."""
    W = W.copy()
    k = int(round(sparsity * W.size))
    if k:
        W.flat[np.argsort(np.abs(W), axis=None, kind="stable")[:k]] = 0
    return W


def model(sparsity, seed=0):
    """[(W, b, activation)] of the benchmark network, pruned per layer."""
    rng = np.random.default_rng(seed)
    return [(prune(W, sparsity), b, act) for (W, b), act in zip(he_weights(rng), ACTIVATIONS)]


def engine(layers, layout):
    return InferenceEngine([{"kind": "dense", "W": W, "b": b, "activation": act}
                            for W, b, act in layers], layout=layout)


def scipy_chain(layers):
    """predict(X) through scipy.sparse CSR products and numpy activations."""
    import scipy.sparse as sp

    mats = [(sp.csr_matrix(W), b, act) for W, b, act in layers]

    def predict(X):
        for Wc, b, act in mats:
            X = np.asarray(X @ Wc) + b
            if act == "relu":
                np.maximum(X, 0, out=X)
            else:
                X = np.exp(X - X.max(axis=1, keepdims=True))
                X /= X.sum(axis=1, keepdims=True)
        return X
    return predict


def onnx_session(layers, threads, return_proto=False):
    """An ONNX Runtime session of the same weights: MatMul, Add, Relu ..., Softmax (or
    the checked ModelProto of that graph)."""
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, name = [], [], "X"
    for i, (W, b, act) in enumerate(layers):
        inits += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        nodes += [helper.make_node("MatMul", [name, f"W{i}"], [f"m{i}"]),
                  helper.make_node("Add", [f"m{i}", f"b{i}"], [f"z{i}"])]
        out = f"y{i}" if i < len(layers) - 1 else "Y"
        if act == "relu":
            nodes.append(helper.make_node("Relu", [f"z{i}"], [out]))
        else:
            nodes.append(helper.make_node("Softmax", [f"z{i}"], [out], axis=1))
        name = out
    graph = helper.make_graph(
        nodes, "mlp", [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, SIZES[0]])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [None, SIZES[-1]])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(proto)
    if return_proto:
        return proto
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return lambda X: session.run(None, {"X": X})[0]


_CACHE = {}


def contender(kind, sparsity, batch):
    """The predict function of one contender, built once per (kind, sparsity, threads)."""
    threads = 1 if batch == 1 else 2
    key = (kind, sparsity, threads if kind == "onnxruntime" else None)
    if key not in _CACHE:
        layers = model(sparsity)
        if kind == "onnxruntime":
            pytest.importorskip("onnxruntime")
            pytest.importorskip("onnx")
            _CACHE[key] = onnx_session(layers, threads)
        elif kind == "scipy.sparse":
            _CACHE[key] = scipy_chain(layers)
        else:
            _CACHE[key] = engine(layers, "auto" if kind == "fastnn-auto" else "dense").predict
    return _CACHE[key]


def _bench(benchmark, kind, sparsity, batch):
    benchmark.group = f"engine sparsity {sparsity:.2f} batch {batch:4d}"
    benchmark.extra_info.update(sparsity=sparsity, batch=batch)
    predict = contender(kind, sparsity, batch)
    X = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
    reference = contender("fastnn-dense", sparsity, batch)(X)
    np.testing.assert_allclose(predict(X), reference, rtol=1e-4, atol=1e-6)
    benchmark(predict, X)


CASES = pytest.mark.parametrize("sparsity,batch", [(s, b) for s in SPARSITIES for b in BATCHES])


@CASES
def test_predict_fastnn_auto(benchmark, sparsity, batch):
    _bench(benchmark, "fastnn-auto", sparsity, batch)


@CASES
def test_predict_fastnn_dense(benchmark, sparsity, batch):
    _bench(benchmark, "fastnn-dense", sparsity, batch)


@CASES
def test_predict_scipy_sparse(benchmark, sparsity, batch):
    _bench(benchmark, "scipy.sparse", sparsity, batch)


@CASES
def test_predict_onnxruntime(benchmark, sparsity, batch):
    _bench(benchmark, "onnxruntime", sparsity, batch)


# -- calibration of the cost model --------------------------------------------

def _best_time(f, min_time=0.02, repeats=5):
    f()
    n = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        if time.perf_counter() - t0 > min_time / repeats:
            break
        n *= 2
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            f()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def calibrate(shapes=((784, 256), (256, 128), (1024, 1024)),
              densities=(0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5),
              batches=(1, 2, 8, 32, 128, 256, 1024)):
    """Print, per shape and batch, CSR/dense time ratios over densities and the crossover.

    Both forms run with the default thread counts (the kernels' and the BLAS's).
    """
    rng = np.random.default_rng(0)
    for n_in, n_out in shapes:
        W0 = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(np.float32)
        b = np.zeros(n_out, np.float32)
        for batch in batches:
            X = rng.standard_normal((batch, n_in)).astype(np.float32)
            ratios = []
            for density in densities:
                layer = [{"kind": "dense", "W": prune(W0, 1 - density), "b": b,
                          "activation": "relu"}]
                dense = InferenceEngine(layer, layout="dense")
                sparse = InferenceEngine(layer, layout="sparse")
                # Interleaved, best of three: the machine may be shared.
                ratios.append(min(_best_time(lambda: sparse.predict(X))
                                  / _best_time(lambda: dense.predict(X)) for _ in range(3)))
            wins = [d for d, r in zip(densities, ratios) if r <= 1]
            print(f"{n_in:5d}x{n_out:<5d} batch {batch:4d}  sparse/dense: "
                  + " ".join(f"{d:.2f}:{r:.2f}" for d, r in zip(densities, ratios))
                  + f"  crossover ~{max(wins) if wins else 0:.2f}", flush=True)


if __name__ == "__main__":
    if "--calibrate" in sys.argv:
        calibrate()
    else:
        print(__doc__)
