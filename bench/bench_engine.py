"""Inference engine benchmarks: a 784-256-128-10 MLP (ReLU, softmax), float32, pruned.

Each group is one (sparsity, batch) pair with its contenders side by side, each peer in
its best form:

  predict_fastnn_auto       the engine with its automatic layout (default thread count)
  predict_fastnn_dense      the same engine forced dense
  predict_torch[Nthreads]   torch.nn.Sequential under torch.inference_mode()
  predict_onnxruntime[...]  ONNX Runtime, all graph optimizations (ORT_ENABLE_ALL)
  predict_scipy_sparse      scipy.sparse: W.T stored as CSR, multiplied by X.T (CSR
                            matrix-vector form for one row), numpy activations

Peers run one intra-op thread for one row and, for more rows, one and two threads as
two entries (a peer's better entry is its best form). torch and ONNX Runtime are
skipped when they are not importable. Pruning is unstructured, by magnitude, per layer.

    flock /tmp/bench.lock python -m pytest bench/bench_engine.py --benchmark-only -q
    python bench/report.py --suite engine

Script mode times the contenders interleaved, round by round, and prints medians and
median per-round ratios (robust on a shared machine):

    python bench/bench_engine.py --peers [ROUNDS]        every contender, sparsity 0 and 0.9
    python bench/bench_engine.py --peers [ROUNDS] --batch=1024   the dense network at one
                                                     batch size (--batch= repeats)
    python bench/bench_engine.py --auto-vs-dense [ROUNDS]  auto against forced dense over
                                                     sparsities and batches (the cost model)
    python bench/bench_engine.py --calibrate             crossover densities behind
                                                     ``fastnn.engine.CROSSOVER_DENSITY``
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


def peer_threads(batch):
    """The intra-op thread counts a peer runs with: one for a single row, else one and two."""
    return (1,) if batch == 1 else (1, 2)


def scipy_chain(layers):
    """predict(X) through scipy.sparse in its fast form: each W.T stored as CSR and
    multiplied by the activations as columns (Z := W.T @ X.T, a CSR matrix-vector product
    for one row), numpy activations on the columns."""
    import scipy.sparse as sp

    mats = [(sp.csr_matrix(W.T), b[:, None], act) for W, b, act in layers]

    def predict(X):
        Z = np.ascontiguousarray(X.T)
        for Wt, b, act in mats:
            Z = Wt @ Z
            Z += b
            if act == "relu":
                np.maximum(Z, 0, out=Z)
            else:
                Z = np.exp(Z - Z.max(axis=0))
                Z /= Z.sum(axis=0)
        return Z.T
    return predict


def onnx_session(layers, threads, return_proto=False):
    """An ONNX Runtime session of the same weights: MatMul, Add, Relu ..., Softmax, with
    all graph optimizations and `threads` intra-op threads (or the checked ModelProto of
    that graph)."""
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
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return lambda X: session.run(None, {"X": X})[0]


def torch_predict(layers, threads):
    """predict(X) of a torch.nn.Sequential of the same weights under torch.inference_mode()
    on `threads` threads (set only when torch's count differs: once per switch of
    contender, not per call)."""
    import torch

    modules = []
    for W, b, act in layers:
        linear = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(W.T)))
            linear.bias.copy_(torch.from_numpy(b))
        modules += [linear, torch.nn.ReLU() if act == "relu" else torch.nn.Softmax(dim=1)]
    net = torch.nn.Sequential(*modules).eval()

    def predict(X):
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            return net(torch.from_numpy(X)).numpy()
    return predict


_CACHE = {}
KINDS = ("fastnn-auto", "fastnn-dense", "torch", "onnxruntime", "scipy.sparse")


def contender(kind, sparsity, threads=None):
    """The predict function of one contender, built once per (kind, sparsity, threads);
    `threads` is the peer's intra-op thread count (fastnn keeps its default)."""
    key = (kind, sparsity, threads)
    if key not in _CACHE:
        layers = model(sparsity)
        if kind == "onnxruntime":
            pytest.importorskip("onnxruntime")
            pytest.importorskip("onnx")
            _CACHE[key] = onnx_session(layers, threads)
        elif kind == "torch":
            pytest.importorskip("torch")
            _CACHE[key] = torch_predict(layers, threads)
        elif kind == "scipy.sparse":
            _CACHE[key] = scipy_chain(layers)
        else:
            _CACHE[key] = engine(layers, "auto" if kind == "fastnn-auto" else "dense").predict
    return _CACHE[key]


def inputs(batch):
    return np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)


def _bench(benchmark, kind, sparsity, batch, threads=None):
    benchmark.group = f"engine sparsity {sparsity:.2f} batch {batch:4d}"
    benchmark.extra_info.update(sparsity=sparsity, batch=batch, threads=threads)
    predict = contender(kind, sparsity, threads)
    X = inputs(batch)
    reference = contender("fastnn-dense", sparsity)(X)
    np.testing.assert_allclose(predict(X), reference, rtol=1e-4, atol=1e-6)
    benchmark(predict, X)


CASES = pytest.mark.parametrize("sparsity,batch", [(s, b) for s in SPARSITIES for b in BATCHES])
PEER_CASES = pytest.mark.parametrize(
    "sparsity,batch,threads",
    [pytest.param(s, b, t, id=f"{s}-{b}-{t}thread{'s' if t > 1 else ''}")
     for s in SPARSITIES for b in BATCHES for t in peer_threads(b)])


@CASES
def test_predict_fastnn_auto(benchmark, sparsity, batch):
    _bench(benchmark, "fastnn-auto", sparsity, batch)


@CASES
def test_predict_fastnn_dense(benchmark, sparsity, batch):
    _bench(benchmark, "fastnn-dense", sparsity, batch)


@PEER_CASES
def test_predict_torch(benchmark, sparsity, batch, threads):
    _bench(benchmark, "torch", sparsity, batch, threads)


@PEER_CASES
def test_predict_onnxruntime(benchmark, sparsity, batch, threads):
    _bench(benchmark, "onnxruntime", sparsity, batch, threads)


@CASES
def test_predict_scipy_sparse(benchmark, sparsity, batch):
    _bench(benchmark, "scipy.sparse", sparsity, batch)


# -- interleaved rounds (script mode) -------------------------------------------

def _seconds_per_call(f, X, min_time=0.05):
    """Mean seconds per call over enough calls to last about `min_time` (after a warm-up)."""
    f(X)
    n, elapsed = 1, 0.0
    while elapsed < min_time:
        n *= 2
        t0 = time.perf_counter()
        for _ in range(n):
            f(X)
        elapsed = time.perf_counter() - t0
    return elapsed / n


def interleaved(entries, X, rounds):
    """{label: [seconds per call, one per round]}: the contenders of `entries` ({label:
    predict}) timed in turn, round after round, after a pause that lets other libraries'
    spinning threads go to sleep."""
    times = {label: [] for label in entries}
    for _ in range(rounds):
        for label, predict in entries.items():
            time.sleep(0.05)
            times[label].append(_seconds_per_call(predict, X))
    return times


def _print_ratios(title, times, ref):
    print(title, flush=True)
    for label, t in times.items():
        ratio = np.median(np.asarray(t) / np.asarray(times[ref]))
        print(f"  {label:24s} median {np.median(t) * 1e6:10.1f} us   {label} / {ref}: "
              f"{ratio:.3f}", flush=True)


def peers(rounds=15, sparsities=(0.0, 0.9), batches=BATCHES):
    """Print, per (sparsity, batch), every contender's median and its median per-round
    ratio to fastnn-auto (above 1: fastnn is faster)."""
    for sparsity in sparsities:
        for batch in batches:
            entries = {kind: contender(kind, sparsity) for kind in KINDS[:2]}
            for kind in ("torch", "onnxruntime"):
                for t in peer_threads(batch):
                    try:
                        entries[f"{kind}[{t}]"] = contender(kind, sparsity, t)
                    except pytest.skip.Exception:
                        pass
            entries["scipy.sparse"] = contender("scipy.sparse", sparsity)
            _print_ratios(f"sparsity {sparsity} batch {batch}",
                          interleaved(entries, inputs(batch), rounds), "fastnn-auto")


def _runs_csr(layer, batch):
    """Whether a layer of `InferenceEngine.layout()` runs its CSR form for `batch` rows
    (one chunk)."""
    lo, hi = layer["csr_batches"] or (1, 0)
    return lo <= batch and (hi is None or batch <= hi) or batch == 1 and layer["csr_one_row"]


def auto_vs_dense(rounds=9, sparsities=(0.5, 0.7, 0.8, 0.85, 0.9, 0.95),
                  batches=(1, 2, 8, 32, 128, 256, 1024)):
    """Print the engine's automatic layout against forced dense: the median per-round
    ratio auto / dense (at most 1.05 is the cost model's promise) and what auto chose.

    A second engine of forced dense layout is timed beside them as a control: its ratio
    to the first is what two identical engines differ by on this machine at that moment
    (their weights sit in other memory; a shared machine adds its noise), the margin
    within which auto / dense says nothing where both run the same kernels.
    """
    for sparsity in sparsities:
        layers = model(sparsity)
        auto, dense = engine(layers, "auto"), engine(layers, "dense")
        control = engine(layers, "dense")
        for batch in batches:
            t = interleaved({"auto": auto.predict, "dense": dense.predict,
                             "control": control.predict}, inputs(batch), rounds)
            ratio, same = (np.median(np.asarray(t[k]) / np.asarray(t["dense"]))
                           for k in ("auto", "control"))
            chosen = ",".join("csr" if _runs_csr(layer, batch) else "dense"
                              for layer in auto.layout())
            print(f"sparsity {sparsity:.2f} batch {batch:5d}  auto/dense {ratio:.3f}  "
                  f"control/dense {same:.3f}  dense {np.median(t['dense']) * 1e6:9.1f} us  "
                  f"auto layers: {chosen}", flush=True)


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


def main(argv):
    rounds = [int(a) for a in argv if a.isdigit()]
    batches = [int(a.split("=", 1)[1]) for a in argv if a.startswith("--batch=")]
    if "--calibrate" in argv:
        calibrate()
    elif "--peers" in argv:
        peers(*rounds, **({"sparsities": (0.0,), "batches": batches} if batches else {}))
    elif "--auto-vs-dense" in argv:
        auto_vs_dense(*rounds)
    else:
        print(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
