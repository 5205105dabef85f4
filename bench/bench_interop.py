"""An imported network served by fastnn, beside the same network in its own framework.

A PyTorch MLP 784-256-128-10 (ReLU, ReLU, softmax; float32, seeded) is imported with
`fastnn.from_torch` and deployed with `fastnn.deploy`. Each group is one batch size
(1 and 256) with three contenders side by side:

  interop_fastnn        the deployed engine, fastnn's default thread count
  interop_fastnn_1thread  the same engine with fastnn (kernels and BLAS) on one thread
  interop_torch[N]      the torch module under torch.inference_mode(), N threads
  interop_onnxruntime[N]  ONNX Runtime on torch's own export (torch.onnx.export,
                        dynamo=False), N intra-op threads, all graph optimizations

Peers run one thread for one row and, for more rows, one and two threads as two
entries (a peer's better entry is its best form).

torch and ONNX Runtime are skipped when they are not importable.

    flock /tmp/bench.lock python -m pytest bench/bench_interop.py --benchmark-only -q
    python bench/report.py --suite interop
"""
import io
import warnings

import numpy as np
import pytest

import fastnn as fn
from bench_engine import peer_threads

SIZES = (784, 256, 128, 10)
BATCHES = (1, 256)
_CACHE = {}
DEFAULT_THREADS = fn.get_num_threads()


def _on_threads(n, predict):
    """`predict` with fastnn's kernels and BLAS on `n` threads; the count is set only when
    it differs (once per switch of contender, not per call: setting it costs microseconds)."""
    def run(X):
        if fn.get_num_threads() != n:
            fn.set_num_threads(n)
        return predict(X)
    return run


@pytest.fixture(scope="module", autouse=True)
def _restore_threads():
    """Leave fastnn's thread count as this module found it."""
    yield
    fn.set_num_threads(DEFAULT_THREADS)


def torch_net():
    torch = pytest.importorskip("torch")
    if "net" not in _CACHE:
        torch.manual_seed(0)
        nn = torch.nn
        _CACHE["net"] = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 128),
                                      nn.ReLU(), nn.Linear(128, 10), nn.Softmax(dim=-1)).eval()
    return torch, _CACHE["net"]


def contender(kind, threads=None):
    """The predict function of one contender, built once per (kind, threads); `threads`
    is a peer's thread count."""
    if (kind, threads) in _CACHE:
        return _CACHE[kind, threads]
    torch, net = torch_net()
    if kind.startswith("fastnn"):
        predict = _on_threads(1 if kind == "fastnn_1thread" else DEFAULT_THREADS,
                              fn.deploy(fn.from_torch(net)).predict)
    elif kind == "torch":
        def predict(X):
            if torch.get_num_threads() != threads:  # once per switch of contender
                torch.set_num_threads(threads)
            with torch.inference_mode():
                return net(torch.from_numpy(X)).numpy()
    else:
        ort = pytest.importorskip("onnxruntime")
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.zeros(1, SIZES[0]),), buffer, dynamo=False,
                              input_names=["input"], dynamic_axes={"input": {0: "batch"}})
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = ort.InferenceSession(buffer.getvalue(), options,
                                       providers=["CPUExecutionProvider"])
        predict = lambda X: session.run(None, {"input": X})[0]  # noqa: E731
    _CACHE[kind, threads] = predict
    return predict


def _bench(benchmark, kind, batch, threads=None):
    benchmark.group = f"imported torch MLP 784-256-128-10, batch {batch:4d}"
    benchmark.extra_info.update(batch=batch, threads=threads)
    predict = contender(kind, threads)
    X = np.random.default_rng(1).standard_normal((batch, SIZES[0])).astype(np.float32)
    torch, net = torch_net()
    with torch.inference_mode():
        reference = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(predict(X), reference, rtol=1e-5, atol=1e-7)
    benchmark(predict, X)


@pytest.mark.parametrize("batch", BATCHES)
def test_interop_fastnn(benchmark, batch):
    _bench(benchmark, "fastnn", batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_interop_fastnn_1thread(benchmark, batch):
    _bench(benchmark, "fastnn_1thread", batch)


PEER_CASES = pytest.mark.parametrize(
    "batch,threads", [pytest.param(b, t, id=f"{b}-{t}thread{'s' if t > 1 else ''}")
                      for b in BATCHES for t in peer_threads(b)])


@PEER_CASES
def test_interop_torch(benchmark, batch, threads):
    _bench(benchmark, "torch", batch, threads)


@PEER_CASES
def test_interop_onnxruntime(benchmark, batch, threads):
    _bench(benchmark, "onnxruntime", batch, threads)
