"""One training epoch of a 784-256-128-10 classifier: fastnn beside numpy and PyTorch eager.

The network is Dense(256, relu) -> Dense(128, relu) -> Dense(10, softmax) trained with
sparse categorical cross-entropy and Adam (lr 1e-3, beta1 0.9, beta2 0.999, eps 1e-8)
on shuffled batches of 128 float32 samples with random labels 0..9. Every round times
one epoch on a freshly built model; building it is not timed.

Contenders, all in the group "training epoch":
  epoch_fastnn             fastnn's public API: Sequential, compile, fit
  epoch_numpy              the same network and Adam written directly in numpy float32
  epoch_torch[1thread]     torch.nn.Sequential and torch.optim.Adam, torch.set_num_threads(1)
  epoch_torch[2threads]    the same with torch.set_num_threads(2)

FASTNN_BENCH_SAMPLES sets the epoch size (default 60000, an MNIST-sized epoch).

Run: python -m pytest bench/bench_training.py --benchmark-only
Smoke: FASTNN_BENCH_SAMPLES=2048 python -m pytest bench/bench_training.py --benchmark-disable -q

``python bench/bench_training.py [rounds]`` times fastnn (at its default thread count and
at one thread) and torch (one and two threads) interleaved, round by round, and prints
the median per-round ratio of torch's better time to fastnn's: the throughput ratio, on
a shared machine less disturbed than timings taken minutes apart. The target is 1.6.
There torch runs in processes of its own, one per thread count, in the environment the
script started with: fastnn sets OMP_WAIT_POLICY when imported, and torch's OpenMP
threads would sleep between operations under fastnn's setting (torch on 2 threads
measured 0.84 s an epoch in fastnn's process against 0.40 s with its threads spinning).
"""
import os
import subprocess
import sys
import time

import numpy as np
import pytest

N_SAMPLES = int(os.environ.get("FASTNN_BENCH_SAMPLES", "60000"))
SIZES = (784, 256, 128, 10)
BATCH = 128
LR, BETA1, BETA2, EPS = 1e-3, 0.9, 0.999, 1e-8
ROUNDS = 3
GROUP = "training epoch"
# The environment before fastnn is imported, for torch's own processes in `interleaved`.
START_ENV = dict(os.environ)


@pytest.fixture(scope="module")
def data():
    """Inputs in [0, 1) like pixel intensities, shape (N_SAMPLES, 784); int64 labels 0..9."""
    return data_arrays()


def _bench_epoch(benchmark, build, epoch, **info):
    """Time `epoch(model)` over ROUNDS rounds, each on a new `build()`; record throughput."""
    benchmark.group = GROUP
    benchmark.extra_info.update(samples=N_SAMPLES, batch_size=BATCH, **info)
    benchmark.pedantic(epoch, setup=lambda: ((build(),), {}), rounds=ROUNDS, iterations=1,
                       warmup_rounds=0)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["samples_per_s"] = N_SAMPLES / benchmark.stats.stats.median


def test_epoch_fastnn(benchmark, data):
    fn = pytest.importorskip("fastnn")
    missing = [name for name in ("Sequential", "layers", "optimizers") if not hasattr(fn, name)]
    if missing:
        pytest.skip(f"fastnn's model API is not available yet (no fastnn.{', fastnn.'.join(missing)})")
    X, y = data
    _bench_epoch(benchmark, fastnn_model, lambda model: fastnn_epoch(model, X, y),
                 threads=fn.get_num_threads())


def fastnn_model():
    import fastnn as fn
    model = fn.Sequential([fn.layers.Dense(256, activation="relu"),
                           fn.layers.Dense(128, activation="relu"),
                           fn.layers.Dense(10, activation="softmax")],
                          input_dim=SIZES[0], dtype="float32", seed=0)
    model.compile(optimizer=fn.optimizers.Adam(lr=LR), loss="sparse_categorical_crossentropy")
    return model


def fastnn_epoch(model, X, y):
    model.fit(X, y, epochs=1, batch_size=BATCH, shuffle=True, verbose=0)


class NumpyMLP:
    """ReLU hidden layers, a softmax output and Adam, in numpy float32.

    Forward keeps each layer's input; the gradient of the mean cross-entropy with
    respect to the logits is (p - onehot(y)) / n; Adam's moments are updated in place
    and the bias-corrected step is  w -= lr * m_hat / (sqrt(v_hat) + eps).
    """

    def __init__(self, sizes, rng):
        self.params = []
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            limit = np.sqrt(6.0 / (fan_in + fan_out))  # Glorot uniform
            self.params.append(rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32))
            self.params.append(np.zeros(fan_out, np.float32))
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def gradients(self, x, y):
        """Gradients of the mean cross-entropy, in the order of `params`."""
        weights, biases = self.params[0::2], self.params[1::2]
        inputs = [x]
        for W, b in zip(weights[:-1], biases[:-1]):
            inputs.append(np.maximum(inputs[-1] @ W + b, 0))
        z = inputs[-1] @ weights[-1] + biases[-1]
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        delta = p / np.float32(len(y))
        grads = []
        for i in range(len(weights) - 1, -1, -1):
            grads += [delta.sum(axis=0), inputs[i].T @ delta]
            if i:
                delta = (delta @ weights[i].T) * (inputs[i] > 0)
        return grads[::-1]

    def adam_step(self, grads):
        self.t += 1
        correction1 = 1 - BETA1 ** self.t
        correction2 = 1 - BETA2 ** self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= BETA1
            m += (1 - BETA1) * g
            v *= BETA2
            v += (1 - BETA2) * (g * g)
            p -= LR * (m / correction1) / (np.sqrt(v / correction2) + EPS)

    def fit_epoch(self, X, y, rng):
        order = rng.permutation(len(X))
        for start in range(0, len(X), BATCH):
            idx = order[start:start + BATCH]
            self.adam_step(self.gradients(X[idx], y[idx]))


def test_epoch_numpy(benchmark, data):
    X, y = data
    _bench_epoch(benchmark, lambda: NumpyMLP(SIZES, np.random.default_rng(0)),
                 lambda model: model.fit_epoch(X, y, np.random.default_rng(1)))


@pytest.mark.parametrize("threads", [1, 2], ids=["1thread", "2threads"])
def test_epoch_torch(benchmark, data, threads):
    torch = pytest.importorskip("torch")
    X, y = (torch.from_numpy(a) for a in data)
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _bench_epoch(benchmark, torch_model, lambda model: torch_epoch(model, X, y),
                     threads=threads)
    finally:
        torch.set_num_threads(previous)


def torch_model():
    import torch
    torch.manual_seed(0)
    layers = []
    for fan_in, fan_out in zip(SIZES[:-2], SIZES[1:-1]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    net = torch.nn.Sequential(*layers, torch.nn.Linear(*SIZES[-2:]))
    return net, torch.optim.Adam(net.parameters(), lr=LR)


def torch_epoch(model, X, y):
    import torch
    net, optimizer = model
    loss_fn = torch.nn.CrossEntropyLoss()  # softmax folded into the loss on logits
    order = torch.randperm(len(X))
    for start in range(0, len(X), BATCH):
        idx = order[start:start + BATCH]
        optimizer.zero_grad()
        loss_fn(net(X[idx]), y[idx]).backward()
        optimizer.step()


def data_arrays():
    """The epoch's data, the same in every process: inputs and labels from seed 0."""
    rng = np.random.default_rng(0)
    X = rng.random((N_SAMPLES, SIZES[0]), dtype=np.float32)
    return X, rng.integers(0, SIZES[-1], N_SAMPLES)


def _timed(build, epoch):
    model = build()
    start = time.perf_counter()
    epoch(model)
    return time.perf_counter() - start


def torch_worker(threads):
    """Time one torch epoch on `threads` threads per line read from stdin, printing the
    seconds: the torch side of `interleaved`, in a process without fastnn."""
    import torch
    torch.set_num_threads(threads)
    X, y = (torch.from_numpy(a) for a in data_arrays())
    for _ in sys.stdin:
        print(_timed(torch_model, lambda m: torch_epoch(m, X, y)), flush=True)


class TorchProcess:
    """A `torch_worker` process on `threads` threads, in the environment of START_ENV."""

    def __init__(self, threads):
        self.proc = subprocess.Popen([sys.executable, __file__, "--torch-worker", str(threads)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                     env=START_ENV)

    def epoch(self):
        self.proc.stdin.write("epoch\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the torch process ended early")
        return float(line)

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def interleaved(rounds=5):
    """Median per-round throughput ratios, contenders timed one after another each round."""
    import fastnn as fn
    X, y = data_arrays()
    default = fn.get_num_threads()
    times = {"fastnn": [], "fastnn[1thread]": [], "torch[1thread]": [], "torch[2threads]": []}
    torch_procs = {1: TorchProcess(1), 2: TorchProcess(2)}
    try:
        for _ in range(rounds):
            for threads in (default, 1):
                fn.set_num_threads(threads)
                key = "fastnn" if threads == default else "fastnn[1thread]"
                times[key].append(_timed(fastnn_model, lambda m: fastnn_epoch(m, X, y)))
            fn.set_num_threads(None)
            for threads, proc in torch_procs.items():
                times[f"torch[{threads}thread{'s' if threads > 1 else ''}]"].append(proc.epoch())
    finally:
        for proc in torch_procs.values():
            proc.close()
    t = {k: np.array(v) for k, v in times.items()}
    best_torch = np.minimum(t["torch[1thread]"], t["torch[2threads]"])
    print(f"{N_SAMPLES} samples, batch {BATCH}, {rounds} rounds; fastnn default threads "
          f"{default}; torch in its own processes, OMP_WAIT_POLICY "
          f"{START_ENV.get('OMP_WAIT_POLICY', 'unset')}; median epoch seconds:")
    for k, v in t.items():
        print(f"  {k:16s} {np.median(v):.3f}")
    for k in ("fastnn", "fastnn[1thread]"):
        r = best_torch / t[k]
        print(f"  {k} throughput / torch's better of 1 and 2 threads: median {np.median(r):.2f} "
              f"(range {r.min():.2f}-{r.max():.2f})")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--torch-worker"]:
        torch_worker(int(sys.argv[2]))
    else:
        interleaved(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
