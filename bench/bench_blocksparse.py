"""Block-sparse pruning: the 784-256-128-10 MLP (ReLU, softmax, float32) at 90% sparsity,
pruned in 1x8 blocks or unstructured, deployed, against the same network dense.

Each group is one batch size (1, 8 and 256) with its contenders side by side, one kernel
thread and one BLAS thread: the block-pruned engines (automatic layout) with blocks ranked
over all kernels (`prune_magnitude`'s default, the README's advice) and per layer, both
also with precision="int8" (`fastnn.quantization.plan_precision` runs each layer dense
int8, float32 in blocks or int8 in blocks, whichever it estimates fastest), and the
per-layer one in int8 with its blocks float32 instead of int8 (``_float_blocks``: the
engine of before the int8 block kernel) and dense int8 (the unpruned network), the
unstructured-pruned engine forced to CSR, and the unpruned engine forced dense.

    python -m pytest bench/bench_blocksparse.py --benchmark-only -q
    python bench/bench_blocksparse.py               interleaved rounds, median ratios
    python bench/bench_blocksparse.py --accuracy    digits accuracy after fine-tuning
    python bench/bench_blocksparse.py --calibrate [8 16 ...]  crossovers of
                                                    BLOCK_CROSSOVER_DENSITY
    python bench/bench_blocksparse.py --calibrate-batches 1 2   the same, for some batches
    python bench/bench_blocksparse.py --calibrate-quantized int8   float32 blocks against
                                                    dense int8 (or bf16)
"""
import sys

import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L, pruning
from fastnn._kernels.blocksparse import BLOCKS, bsr_from_dense
from fastnn.engine import InferenceEngine

from bench_engine import _best_time, he_weights

SPARSITY = 0.9
BATCHES = (1, 8, 256)
CONTENDERS = ("fastnn_block_1x8", "fastnn_block_1x8_layer", "fastnn_block_1x8_int8",
              "fastnn_block_1x8_layer_int8", "block_1x8_layer_int8_float_blocks",
              "dense_int8", "csr_unstructured", "dense")


def network(seed=0):
    return fn.Sequential([L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                          L.Dense(10, activation="softmax")], input_dim=784, seed=seed)


def engines():
    """The contenders' engines, each on one kernel thread."""
    block, per_layer, unstructured = network(), network(), network()
    pruning.prune_magnitude(block, SPARSITY, block=(1, 8))
    pruning.prune_magnitude(per_layer, SPARSITY, scope="layer", block=(1, 8))
    pruning.prune_magnitude(unstructured, SPARSITY, scope="layer")
    calibration = np.abs(np.random.default_rng(1).standard_normal((256, 784)))
    built = {"fastnn_block_1x8": fn.deploy(block, n_threads=1),
             "fastnn_block_1x8_layer": fn.deploy(per_layer, n_threads=1),
             "fastnn_block_1x8_int8": fn.deploy(block, precision="int8",
                                                calibration=calibration, n_threads=1),
             "fastnn_block_1x8_layer_int8": fn.deploy(per_layer, precision="int8",
                                                      calibration=calibration, n_threads=1),
             "block_1x8_layer_int8_float_blocks": _float_blocks(per_layer, calibration),
             "dense_int8": fn.deploy(network(), precision="int8", calibration=calibration,
                                     n_threads=1),
             "csr_unstructured": fn.deploy(unstructured, layout="sparse", n_threads=1),
             "dense": fn.deploy(network(), layout="dense", n_threads=1)}
    assert all(e["storage"] == "bsr" for e in built["fastnn_block_1x8_layer"].layout())
    assert built["fastnn_block_1x8"].layout()[0]["storage"] == "bsr"
    assert [e["storage"] for e in built["fastnn_block_1x8_layer_int8"].layout()][:2] \
        == ["bsr int8", "bsr int8"]
    return built


def _float_blocks(model, calibration):
    """The int8 engine of `model` with the layers it runs in int8 blocks in float32 blocks."""
    from fastnn.deployment import engine_layers
    from fastnn.quantization import plan_precision
    specs = plan_precision(engine_layers(model), "int8", calibration)
    for spec in specs:
        if spec.pop("block", None):
            spec.update(precision="float")
    return InferenceEngine(specs, n_threads=1)


@pytest.fixture(scope="module")
def contenders():
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        yield engines()


# One test per contender, named as it (bench/report.py takes the block-pruned engines,
# whose names hold the word fastnn, as the entries the others are compared with).
@pytest.mark.parametrize("batch", BATCHES)
def test_fastnn_block_1x8(benchmark, contenders, batch):
    _predict(benchmark, contenders, "fastnn_block_1x8", batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_fastnn_block_1x8_layer(benchmark, contenders, batch):
    _predict(benchmark, contenders, "fastnn_block_1x8_layer", batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_fastnn_block_1x8_int8(benchmark, contenders, batch):
    _predict(benchmark, contenders, "fastnn_block_1x8_int8", batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_fastnn_block_1x8_layer_int8(benchmark, contenders, batch):
    _predict(benchmark, contenders, "fastnn_block_1x8_layer_int8", batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_block_1x8_layer_int8_float_blocks(benchmark, contenders, batch):
    _predict(benchmark, contenders, "block_1x8_layer_int8_float_blocks", batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_dense_int8(benchmark, contenders, batch):
    _predict(benchmark, contenders, "dense_int8", batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_csr_unstructured(benchmark, contenders, batch):
    _predict(benchmark, contenders, "csr_unstructured", batch)


@pytest.mark.parametrize("batch", BATCHES)
def test_dense(benchmark, contenders, batch):
    _predict(benchmark, contenders, "dense", batch)


def _predict(benchmark, contenders, name, batch):
    benchmark.group = f"block-sparse 784-256-128-10 at {SPARSITY:.0%}, batch {batch}, 1 thread"
    X = np.random.default_rng(0).standard_normal((batch, 784)).astype(np.float32)
    out = np.empty((batch, 10), np.float32)
    benchmark(contenders[name].predict, X, out=out)


def interleaved(rounds=15):
    """Median over rounds of each contender's time and of the ratios, contenders
    interleaved within each round."""
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    with threadpool_limits(1, user_api="blas"):
        built = engines()
        for batch in BATCHES:
            X = rng.standard_normal((batch, 784)).astype(np.float32)
            out = np.empty((batch, 10), np.float32)
            times = {name: [] for name in CONTENDERS}
            for _ in range(rounds):
                for name in CONTENDERS:
                    times[name].append(_best_time(lambda: built[name].predict(X, out=out),
                                                  repeats=3))
            t = {name: np.array(v) for name, v in times.items()}
            print(f"batch {batch}: " + ", ".join(f"{n} {np.median(v) * 1e6:.2f} us"
                                                 for n, v in t.items())
                  + "; " + ", ".join(f"dense/{n} {np.median(t['dense'] / t[n]):.2f}x"
                                     for n in CONTENDERS[:-1])
                  + "; int8 blocks against " + ", ".join(
                      f"{n} {np.median(t[n] / t['fastnn_block_1x8_layer_int8']):.2f}x"
                      for n in ("fastnn_block_1x8_layer", "block_1x8_layer_int8_float_blocks",
                                "dense_int8"))
                  + f" (median of {rounds} per-round ratios)", flush=True)


def accuracy(epochs=30, fine_tune=30, seed=0):
    """Digits test accuracy of a 64-256-128-10 MLP, unpruned and at 90% sparsity (1x8
    blocks, unstructured; ranked over all kernels, then per layer) after fine-tuning,
    and the engines' agreement with the models."""
    from fastnn.datasets import load_digits
    X, y = load_digits()
    X = (X / 16).astype(np.float32)
    order = np.random.default_rng(seed).permutation(len(y))
    train, test = order[:1400], order[1400:]
    base = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                          L.Dense(10, activation="softmax")], input_dim=64, seed=seed)
    base.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    base.fit(X[train], y[train], epochs=epochs, batch_size=32, verbose=0)
    print(f"unpruned: {base.evaluate(X[test], y[test])['accuracy']:.4f}")
    for scope in ("global", "layer"):
        for label, block in (("unstructured", None), ("1x8 blocks", (1, 8))):
            model = base.copy()
            pruning.prune_magnitude(model, SPARSITY, scope=scope, block=block)
            before = model.evaluate(X[test], y[test])["accuracy"]
            model.fit(X[train], y[train], epochs=fine_tune, batch_size=32, verbose=0)
            engine = fn.deploy(model)
            agree = np.mean(engine.predict(X[test]).argmax(1)
                            == model.predict(X[test]).argmax(1))
            print(f"{label}, scope={scope}: sparsity {pruning.sparsity(model):.3f}, accuracy "
                  f"{before:.4f} before and {model.evaluate(X[test], y[test])['accuracy']:.4f} "
                  f"after fine-tuning ({fine_tune} epochs); storage "
                  f"{[e['storage'] for e in engine.layout()]}, engine agrees on {agree:.4f}",
                  flush=True)


def calibrate(blocks=BLOCKS, shapes=((784, 256), (256, 128)),
              densities=(0.1, 0.2, 0.3, 0.45, 0.6, 0.8), batches=(1, 8, 32, 256, 1024)):
    """Print, per block width, shape and batch, block/dense time ratios over block
    densities and the crossover. Both run on one thread (kernels and BLAS): on a shared
    machine a second thread's timings swing with the other processes' load."""
    from threadpoolctl import threadpool_limits
    with threadpool_limits(1, user_api="blas"):
        _calibrate(blocks, shapes, densities, batches)


def _calibrate(blocks, shapes, densities, batches):
    rng = np.random.default_rng(0)
    for block in blocks:
        for n_in, n_out in shapes:
            W0 = he_weights(rng, (n_in, n_out))[0][0]
            for batch in batches:
                X = rng.standard_normal((batch, n_in)).astype(np.float32)
                ratios = []
                for density in densities:
                    keep = rng.random((n_in, -(-n_out // block))) < density
                    W = W0 * np.repeat(keep, block, axis=1)[:, :n_out]
                    dense = InferenceEngine([{"kind": "dense", "W": W}], layout="dense",
                                            n_threads=1)
                    blocked = InferenceEngine([{"kind": "dense", "n_in": n_in, "n_out": n_out,
                                                "bsr": bsr_from_dense(W, block)}],
                                              layout="block", n_threads=1)
                    ratios.append(min(_best_time(lambda: blocked.predict(X))
                                      / _best_time(lambda: dense.predict(X)) for _ in range(3)))
                wins = [d for d, r in zip(densities, ratios) if r <= 1]
                print(f"1x{block:<2d} {n_in:5d}x{n_out:<5d} batch {batch:4d}  block/dense: "
                      + " ".join(f"{d:.2f}:{r:.2f}" for d, r in zip(densities, ratios))
                      + f"  crossover ~{max(wins) if wins else 0:.2f}", flush=True)


def calibrate_quantized(precision, blocks=BLOCKS, shapes=((784, 256), (256, 128)),
                        densities=(0.05, 0.1, 0.15, 0.2, 0.3), batches=(1, 8, 256)):
    """Print, per block width, shape and batch, the time of the float32 block-sparse form
    over that of dense `precision` ("int8" with a static input scale, or "bf16"), over
    block densities, and the crossover (`fastnn.quantization.FLOAT_BLOCK_CROSSOVER`);
    for int8 also the int8 block-sparse form over dense int8 (the crossover of
    `fastnn.quantization.INT8_BLOCK_CROSSOVER`) and over float32 blocks. One thread, as
    `calibrate`; the forms interleaved, best of three rounds each."""
    from threadpoolctl import threadpool_limits
    rng = np.random.default_rng(0)
    with threadpool_limits(1, user_api="blas"):
        for block in blocks:
            for n_in, n_out in shapes:
                W0 = he_weights(rng, (n_in, n_out))[0][0]
                for batch in batches:
                    X = np.abs(rng.standard_normal((batch, n_in))).astype(np.float32)
                    ratios = {"float32 blocks/dense": [], "int8 blocks/dense": [],
                              "int8 blocks/float32 blocks": []}
                    for density in densities:
                        keep = rng.random((n_in, -(-n_out // block))) < density
                        W = W0 * np.repeat(keep, block, axis=1)[:, :n_out]
                        spec = {"kind": "dense", "W": W, "precision": precision,
                                "x_scale": 4.0 / 255, "x_signed": False}
                        forms = {"dense": InferenceEngine([spec], n_threads=1),
                                 "float32 blocks": InferenceEngine(
                                     [{"kind": "dense", "n_in": n_in, "n_out": n_out,
                                       "bsr": bsr_from_dense(W, block)}],
                                     layout="block", n_threads=1)}
                        if precision == "int8":
                            forms["int8 blocks"] = InferenceEngine([dict(spec, block=block)],
                                                                   n_threads=1)
                        best = {name: np.inf for name in forms}
                        for _ in range(3):
                            for name, engine in forms.items():
                                best[name] = min(best[name],
                                                 _best_time(lambda: engine.predict(X)))
                        for key in ratios:
                            a, b = key.split("/")
                            if a in best:
                                ratios[key].append(best[a] / best[b])
                    for key, r in ratios.items():
                        if not r:
                            continue
                        wins = [d for d, v in zip(densities, r) if v <= 1]
                        print(f"1x{block:<2d} {n_in:5d}x{n_out:<5d} batch {batch:4d}  "
                              f"{key.replace('dense', 'dense ' + precision)}: "
                              + " ".join(f"{d:.2f}:{v:.2f}" for d, v in zip(densities, r))
                              + f"  crossover ~{max(wins) if wins else 0:.2f}", flush=True)


if __name__ == "__main__":
    if "--calibrate" in sys.argv:  # optionally followed by block widths
        widths = [int(a) for a in sys.argv[sys.argv.index("--calibrate") + 1:]]
        calibrate(tuple(widths) or BLOCKS)
    elif "--calibrate-batches" in sys.argv:  # followed by batch sizes
        calibrate(batches=tuple(int(a) for a in sys.argv[sys.argv.index(
            "--calibrate-batches") + 1:]))
    elif "--calibrate-quantized" in sys.argv:  # followed by int8 or bf16
        calibrate_quantized(sys.argv[sys.argv.index("--calibrate-quantized") + 1])
    elif "--accuracy" in sys.argv:
        accuracy()
    else:
        interleaved()
