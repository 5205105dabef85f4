"""Block-sparse storage in the engine: detection, the cost model's choice, results equal to
the dense engine, thread counts, file round trips and hostile files."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import fastnn as fn
from conftest import assert_close
from fastnn import layers as L, pruning
from fastnn._kernels.blocksparse import BLOCKS, bsr_from_dense
from fastnn.engine import InferenceEngine, engine_from_bytes, load_engine
from fastnn.errors import ModelFormatError
from fastnn.io import read_header


def _block_kernel(rng, n_in, n_out, block, density, dt=np.float32):
    W = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dt)
    keep = rng.random((n_in, -(-n_out // block))) < density
    return W * np.repeat(keep, block, axis=1)[:, :n_out]


def _specs(rng, sizes, block, density, dt=np.float32):
    acts = ["relu"] * (len(sizes) - 2) + ["softmax"]
    return [{"kind": "dense", "W": _block_kernel(rng, a, b, block, density, dt),
             "b": (0.1 * rng.standard_normal(b)).astype(dt), "activation": act}
            for a, b, act in zip(sizes[:-1], sizes[1:], acts)]


def _network(block, sparsity=0.9, seed=0):
    model = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                           L.Dense(10, activation="softmax")], input_dim=784, seed=seed)
    pruning.prune_magnitude(model, sparsity, scope="layer", block=block)
    return model


@pytest.mark.parametrize("block", [(1, 4), (1, 8), (1, 16)])
def test_block_pruned_layers_are_stored_in_blocks_and_predict_like_dense(block):
    model = _network(block)
    engine, dense = fn.deploy(model), fn.deploy(model, layout="dense")
    layout = engine.layout()
    assert [e["storage"] for e in layout[:2]] == ["bsr", "bsr"]
    # the cost model may take other blocks (1x16 blocks are 1x8 blocks too; 1x4 blocks
    # may run faster as 1x8 blocks, half filled)
    assert all(e["block"] in ("1x4", "1x8", "1x16") for e in layout[:2])
    if layout[0]["block"] == f"1x{block[1]}":
        assert layout[0]["block_density"] == pytest.approx(0.1, abs=0.01)
    assert "1x" in layout[0]["reason"] and "crossover" in layout[0]["reason"]
    X = np.random.default_rng(1).standard_normal((300, 784)).astype(np.float32)
    for rows in (X[:1], X[:5], X[:17], X):
        assert_close(engine.predict(rows), dense.predict(rows), np.float32, scale=10)


def test_unstructured_pruning_is_not_taken_for_blocks():
    model = fn.Sequential([L.Dense(256, activation="relu"), L.Dense(10)], input_dim=784,
                          seed=0)
    pruning.prune_magnitude(model, 0.5, scope="layer")
    layout = fn.deploy(model).layout()
    assert layout[0]["storage"] == "dense" and layout[0]["block"] is None


def test_blocks_are_found_in_weights_pruned_elsewhere():
    rng = np.random.default_rng(2)
    W = _block_kernel(rng, 300, 64, 16, 0.1)  # zeros in 1x16 blocks, no mask anywhere
    engine = InferenceEngine([{"kind": "dense", "W": W, "activation": "relu"}])
    assert engine.layout()[0]["storage"].endswith("bsr")
    assert engine.layout()[0]["block"] in ("1x4", "1x8", "1x16")
    X = rng.standard_normal((3, 300)).astype(np.float32)
    assert_close(engine.predict(X), np.maximum(X @ W, 0), np.float32, scale=10)


@pytest.mark.parametrize("dt", [np.float32, np.float64], ids=["float32", "float64"])
@settings(max_examples=25, deadline=None)
@given(sizes=st.lists(st.integers(1, 40), min_size=2, max_size=4),
       block=st.sampled_from(BLOCKS), density=st.sampled_from([0.0, 0.2, 1.0]),
       batch=st.integers(1, 40), seed=st.integers(0, 2**31 - 1))
def test_forced_block_layout_matches_dense(dt, sizes, block, density, batch, seed):
    rng = np.random.default_rng(seed)
    specs = _specs(rng, sizes, block, density, dt)
    blocked = InferenceEngine(specs, dtype=np.dtype(dt).name, layout="block")
    dense = InferenceEngine(specs, dtype=np.dtype(dt).name, layout="dense")
    assert all(e["storage"] == "bsr" for e in blocked.layout())
    X = rng.standard_normal((batch, sizes[0])).astype(dt)
    assert_close(blocked.predict(X), dense.predict(X), dt, scale=10)
    for spec, given_spec in zip(blocked.specs(), specs):
        np.testing.assert_array_equal(spec["W"], given_spec["W"])


@pytest.mark.parametrize("batch", [1, 37, 300])
def test_thread_counts_give_bitwise_identical_predictions(batch):
    rng = np.random.default_rng(3)
    specs = _specs(rng, [1500, 1403, 700, 10], 8, 0.5)  # enough work for several threads
    engine = InferenceEngine(specs, layout="block")
    X = rng.standard_normal((batch, 1500)).astype(np.float32)
    engine.n_threads = 1
    Y1 = engine.predict(X)
    for n in (2, 4):
        engine.n_threads = n
        np.testing.assert_array_equal(engine.predict(X), Y1)


@pytest.mark.parametrize("layout", ["auto", "block"])
def test_block_engines_round_trip_through_files(tmp_path, layout):
    rng = np.random.default_rng(4)
    specs = _specs(rng, [50, 40, 30, 5], 8, 0.2)
    engine = InferenceEngine(specs, layout=layout)
    path = tmp_path / "block.fastnn"
    engine.save(path)
    loaded = load_engine(path)
    assert loaded.layout() == engine.layout()
    X = rng.standard_normal((21, 50)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), engine.predict(X))
    meta = read_header(path.read_bytes())["__metadata__"]
    assert meta["format_version"] == "3"
    described = json.loads(meta["layers"])
    assert described[0]["layout"] == "bsr" and described[0]["block"] == 8


def test_bsr_specs_are_taken_as_given():
    rng = np.random.default_rng(5)
    W = _block_kernel(rng, 20, 13, 4, 0.5)
    engine = InferenceEngine([{"kind": "dense", "bsr": bsr_from_dense(W, 4), "n_in": 20,
                               "n_out": 13}], layout="block")
    assert engine.layout()[0]["block"] == "1x4"
    np.testing.assert_array_equal(engine.specs()[0]["W"], W)
    with pytest.raises(ValueError, match="needs n_out"):
        InferenceEngine([{"kind": "dense", "bsr": bsr_from_dense(W, 4), "n_in": 20}])
    with pytest.raises(ValueError, match="padding"):
        indptr, indices, values = bsr_from_dense(W, 4)
        values[-1, -1] = 1.0
        InferenceEngine([{"kind": "dense", "bsr": (indptr, indices, values), "n_in": 20,
                          "n_out": 13}])


def _good_file():
    rng = np.random.default_rng(6)
    return InferenceEngine(_specs(rng, [12, 16, 4], 8, 0.3), layout="block").to_bytes()


def _edited(edit):
    from safetensors.numpy import load, save
    data = _good_file()
    tensors, meta = dict(load(data)), dict(read_header(data)["__metadata__"])
    edit(tensors, meta)
    return save(tensors, metadata=meta)


def _layer0(**changes):
    def edit(t, m):
        layers = json.loads(m["layers"])
        layers[0].update(changes)
        m["layers"] = json.dumps(layers)
    return edit


BAD = {
    "unknown block": _layer0(block=5),
    "no block": lambda t, m: _layer0()(t, m) or m.update(
        layers=json.dumps([{k: v for k, v in e.items() if k != "block"}
                           for e in json.loads(m["layers"])])),
    "block that disagrees with the values": _layer0(block=4),
    "bsr in a version 2 file": lambda t, m: m.update(format_version="2"),
    "bsr in a sparse engine": lambda t, m: m.update(layout="sparse"),
    "bsr in a dense engine": lambda t, m: m.update(layout="dense"),
    "index out of range": lambda t, m: t.update({"0.indices": np.full_like(t["0.indices"],
                                                                           12)}),
    "indices not increasing": lambda t, m: t.update({"0.indices": t["0.indices"][::-1].copy()}),
    "values flattened": lambda t, m: t.update({"0.values": t["0.values"].ravel().copy()}),
    "NaN value": lambda t, m: t.update({"0.values": np.full_like(t["0.values"], np.nan)}),
    "indptr past the end": lambda t, m: t.update({"0.indptr": t["0.indptr"] + 1}),
    "too many blocks": lambda t, m: t.update(
        {"0.values": np.ones((100, 8), np.float32), "0.indices": np.arange(100, dtype=np.uint16)}),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_invalid_block_files_are_refused(case):
    engine_from_bytes(_good_file())  # the unedited file loads
    with pytest.raises(ModelFormatError):
        engine_from_bytes(_edited(BAD[case]))


def test_version_2_files_still_load():
    from safetensors.numpy import load, save
    rng = np.random.default_rng(7)
    engine = InferenceEngine(_specs(rng, [12, 16, 4], 8, 0.05), layout="sparse")
    data = engine.to_bytes()
    meta = dict(read_header(data)["__metadata__"], format_version="2")
    loaded = engine_from_bytes(save(dict(load(data)), metadata=meta))
    X = rng.standard_normal((5, 12)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), engine.predict(X))


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_quantized_engines_with_block_sparse_float_layers_round_trip(precision):
    model = _network((1, 8))
    X = np.random.default_rng(8).random((50, 784)).astype(np.float32)
    engine = fn.deploy(model, precision=precision,
                       calibration=X if precision == "int8" else None)
    loaded = engine_from_bytes(engine.to_bytes())
    assert loaded.layout() == engine.layout()
    np.testing.assert_array_equal(loaded.predict(X), engine.predict(X))
