"""Quantized engines: deploy with precision, layout, files, evaluate, report."""
import json

import numpy as np
import pytest

import fastnn as fn
from fastnn import pruning, quantization
from fastnn._kernels import quant as K
from fastnn._kernels.reference import quant as R
from fastnn.engine import InferenceEngine, load_engine
from fastnn.errors import ModelFormatError


def _digits_model(seed=0, epochs=12):
    X, y = fn.datasets.load_digits()
    X_train, X_test, y_train, y_test = fn.datasets.train_test_split(X / 16, y, test_size=0.25,
                                                                    random_state=0)
    model = fn.Sequential([fn.layers.Dense(64, activation="relu"),
                           fn.layers.Dense(32, activation="relu"),
                           fn.layers.Dense(10, activation="softmax")], input_dim=64, seed=seed,
                          dtype="float32")
    model.compile(optimizer=fn.optimizers.Adam(lr=3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(X_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    return model, X_train, X_test, y_test


@pytest.fixture(scope="module")
def digits():
    return _digits_model()


# Points of accuracy on 450 test digits: int8 may lose 2 samples (0.44 points of the 0.5
# allowed), bf16 none (one would be 0.22 points, over the 0.2 allowed).
@pytest.mark.parametrize("precision, calibrate, max_loss", [
    ("int8", True, 0.0045), ("int8", False, 0.0045), ("bf16", False, 0.002)])
def test_accuracy_holds(digits, precision, calibrate, max_loss):
    model, X_train, X_test, y_test = digits
    engine = fn.deploy(model, precision=precision,
                       calibration=X_train[:400] if calibrate else None)
    r = quantization.evaluate(model, engine, X_test, y_test)
    assert r["metric"] == "accuracy"
    assert r["model"] > 0.9
    assert r["engine"] >= r["model"] - max_loss
    assert 0 < r["max_abs_diff"] < 0.2
    assert r["agreement"] > 0.98


def test_layout_says_precision_and_why(digits):
    model, X_train, _, _ = digits
    static = fn.deploy(model, precision="int8", calibration=X_train[:400]).layout()
    assert [e["precision"] for e in static[:2]] == ["int8", "int8"]
    assert all("calibration" in e["precision_reason"] for e in static)
    assert static[0]["inputs"].startswith("unsigned") and "static scale" in static[0]["inputs"]
    dynamic = fn.deploy(model, precision="int8").layout()
    assert dynamic[0]["inputs"].startswith("signed") and "per row" in dynamic[0]["inputs"]
    assert dynamic[1]["inputs"].startswith("unsigned")  # after ReLU
    assert dynamic[-1]["precision"] == "float32"
    assert "no calibration" in dynamic[-1]["precision_reason"]
    bf16 = fn.deploy(model, precision="bf16").layout()
    assert [e["precision"] for e in bf16] == ["bf16", "bf16", "float32"]
    assert "unattenuated" in bf16[-1]["precision_reason"]
    assert {e["precision"] for e in fn.deploy(model).layout()} == {"float32"}


@pytest.mark.parametrize("precision", ["bf16"])
def test_block_pruned_layers_stay_float_in_blocks(digits, precision):
    model, X_train, X_test, _ = digits
    pruned = model.copy()
    pruning.prune_magnitude(pruned, 0.9, scope="layer", block=(1, 8))
    calibration = X_train[:400] if precision == "int8" else None
    engine = fn.deploy(pruned, precision=precision, calibration=calibration)
    layout = engine.layout()
    # 10% of the 1x8 blocks kept: at most the crossovers of both precisions
    assert [e["storage"] for e in layout] == ["bsr"] * 3
    assert {e["precision"] for e in layout} == {"float32"}
    assert all("1x8 blocks" in e["precision_reason"] for e in layout)
    np.testing.assert_allclose(engine.predict(X_test), fn.deploy(pruned).predict(X_test),
                               rtol=1e-6, atol=1e-7)
    # where the engine may not store blocks, and where blocks are too dense, quantized
    forced = fn.deploy(pruned, "dense", precision=precision, calibration=calibration)
    assert forced.layout()[0]["precision"] == precision
    denser = model.copy()
    pruning.prune_magnitude(denser, 0.5, scope="layer", block=(1, 8))
    assert fn.deploy(denser, precision=precision,
                     calibration=calibration).layout()[0]["precision"] == precision


def test_block_pruned_layers_run_int8_blocks(digits, tmp_path):
    model, X_train, X_test, y_test = digits
    pruned = model.copy()
    pruning.prune_magnitude(pruned, 0.9, scope="layer", block=(1, 8))
    calibration = X_train[:400]
    engine = fn.deploy(pruned, precision="int8", calibration=calibration)
    layout = engine.layout()
    # block density 0.10 in 1x8 blocks: int8 blocks (crossover 0.20) are estimated
    # faster than float32 blocks (0.12) and dense int8
    assert [e["storage"] for e in layout[:2]] == ["bsr int8"] * 2
    assert all(e["block"] == "1x8" and e["precision"] == "int8" for e in layout[:2])
    assert all("int8 in 1x8 blocks" in e["precision_reason"] for e in layout[:2])
    assert all(abs(e["block_density"] - 0.1) < 0.02 for e in layout[:2])
    # the same int8 arithmetic as the dense int8 engine: identical outputs
    from fastnn.deployment import engine_layers
    planned = quantization.plan_precision(engine_layers(pruned), "int8", calibration)
    assert [s.get("block") for s in planned[:2]] == [8, 8]
    dense = InferenceEngine([{k: v for k, v in s.items() if k != "block"} for s in planned])
    assert dense.layout()[0]["storage"] == "dense int8"
    for rows in (1, 7, 450):
        np.testing.assert_array_equal(engine.predict(X_test[:rows]),
                                      dense.predict(X_test[:rows]))
    r = quantization.evaluate(pruned, engine, X_test, y_test)
    assert r["engine"] >= r["model"] - 0.0045
    rep = pruning.report(pruned, X_test, y_test, batches=(1,), precision="int8",
                         calibration=calibration)
    assert [r["storage"] for r in rep.rows][:2] == ["bsr int8"] * 2
    # the kept blocks, a byte a value and two an index, their pointers, scales and bias
    blocks = round(layout[0]["block_density"] * 64 * 8)
    assert rep.rows[0]["bytes_deployed"] == blocks * (8 + 2) + 9 * 8 + 64 * 4 + 64 * 4
    # the file keeps the blocks, int8 values; a loaded engine runs them
    engine.save(tmp_path / "e.fastnn")
    fn.deploy(pruned).save(tmp_path / "float.fastnn")
    from safetensors.numpy import load_file
    saved, floats = load_file(tmp_path / "e.fastnn"), load_file(tmp_path / "float.fastnn")
    assert saved["0.values"].dtype == np.int8 and "0.Wq" not in saved
    assert sum(t.nbytes for t in saved.values()) < 0.6 * sum(t.nbytes for t in floats.values())
    loaded = load_engine(tmp_path / "e.fastnn")
    assert loaded.layout() == layout
    np.testing.assert_array_equal(loaded.predict(X_test), engine.predict(X_test))
    for edit in (lambda e: e.update(block=5), lambda e: e.pop("block"),
                 lambda e: e.update(block="8"), lambda e: e.update(block=16)):
        engine.save(tmp_path / "bad.fastnn")
        _edit(tmp_path / "bad.fastnn", layer_edit=edit)
        with pytest.raises(ModelFormatError):
            load_engine(tmp_path / "bad.fastnn")
    for edit in (lambda t: t.update({"0.values": np.full_like(t["0.values"], -128)}),
                 lambda t: t.update({"0.values": t["0.values"].astype(np.float32)}),
                 lambda t: t.update({"0.indices": t["0.indices"][::-1].copy()}),
                 lambda t: t.update({"0.indptr": t["0.indptr"][::-1].copy()}),
                 lambda t: t.pop("0.values")):
        engine.save(tmp_path / "bad.fastnn")
        _edit(tmp_path / "bad.fastnn", tensors_edit=edit)
        with pytest.raises(ModelFormatError):
            load_engine(tmp_path / "bad.fastnn")
    # where the engine may not store blocks, and where blocks are too dense: dense int8
    assert fn.deploy(pruned, "dense", precision="int8",
                     calibration=calibration).layout()[0]["storage"] == "dense int8"
    denser = model.copy()
    pruning.prune_magnitude(denser, 0.5, scope="layer", block=(1, 8))
    assert fn.deploy(denser, precision="int8",
                     calibration=calibration).layout()[0]["storage"] == "dense int8"
    # layout="block" runs int8 blocks whatever the density
    assert fn.deploy(denser, "block", precision="int8",
                     calibration=calibration).layout()[0]["storage"] == "bsr int8"


def test_int8_blocks_are_validated():
    W = np.ones((3, 2))
    with pytest.raises(ValueError, match="block"):
        InferenceEngine([{"kind": "dense", "W": W, "precision": "int8", "block": 5}])
    with pytest.raises(ValueError, match="block"):
        InferenceEngine([{"kind": "dense", "W": W, "precision": "bf16", "block": 8}])


def _scattered_blocks(rng, n_in, n_out, block, keep):
    """W with one nonzero in each kept 1x`block` block: element density keep / block."""
    W = np.zeros((n_in, n_out), np.float32)
    rows, cols = np.nonzero(rng.random((n_in, n_out // block)) < keep)
    W[rows, cols * block + rng.integers(0, block, rows.size)] = 1.0
    return W


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_a_layer_stays_float_only_where_the_engine_stores_it_in_blocks(precision):
    rng = np.random.default_rng(3)
    last = {"kind": "dense", "W": rng.standard_normal((128, 4)).astype(np.float32),
            "b": np.zeros(4, np.float32), "activation": "linear"}
    # element density 0.024, block density 0.1002 in 1x4 and 0.2004 in 1x8 blocks: the
    # engine stores it as CSR, not blocks, so it is quantized, and dense (just above the
    # crossovers of int8 blocks)
    W = _scattered_blocks(rng, 256, 128, 8, 0.19)
    specs = [{"kind": "dense", "W": W, "b": np.zeros(128, np.float32), "activation": "relu"},
             last]
    planned = quantization.plan_precision(specs, precision)
    assert planned[0]["precision"] == precision
    assert InferenceEngine(planned).layout()[0]["storage"] == f"dense {precision}"
    # whatever is kept float is stored in the blocks the reason names, at every batch
    for trial in range(16):
        block = int(rng.choice([4, 8, 16]))
        W = _scattered_blocks(rng, 256, 128, block, rng.uniform(0.02, 0.3))
        if trial % 2:  # whole blocks, and a few elements scattered outside them
            W = np.repeat(W.reshape(256, -1, block).max(axis=2), block, axis=1)
            W[rng.random(W.shape) < 0.005] = 1.0
        specs[0]["W"] = W
        planned = quantization.plan_precision(specs, precision)
        entry = InferenceEngine(planned).layout()[0]
        if planned[0]["precision"] == "float":
            assert entry["storage"] == "bsr"
            assert f"in {entry['block']} blocks" in planned[0]["precision_reason"]
        elif planned[0].get("block"):  # int8 blocks: below their crossover
            assert entry["storage"] == "bsr int8"
            assert f"int8 in {entry['block']} blocks" in planned[0]["precision_reason"]
            assert entry["block_density"] <= quantization.INT8_BLOCK_CROSSOVER[
                planned[0]["block"]]
        else:
            assert entry["storage"] == f"dense {precision}"


def test_last_layer_stays_float_when_int8_hurts():
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((6, 8))
    W2 = rng.standard_normal((8, 3))
    W2[:, 0] *= 1e-4  # one output unit far smaller than int8 steps of the calibration error
    specs = [{"kind": "dense", "W": W1, "b": None, "activation": "relu"},
             {"kind": "dense", "W": W2, "b": np.zeros(3), "activation": "linear"}]
    X = rng.standard_normal((50, 6)).astype(np.float32)
    planned = quantization.plan_precision(specs, "int8", X)
    assert planned[0]["precision"] == "int8" and not planned[0]["x_signed"] is None
    assert planned[1]["precision"] in ("int8", "float")
    assert "calibration output error" in planned[1]["precision_reason"]


def test_engine_matches_twin_on_every_path():
    rng = np.random.default_rng(1)
    W1, b1 = rng.standard_normal((20, 33)).astype(np.float32), rng.standard_normal(33)
    W2, b2 = rng.standard_normal((33, 7)).astype(np.float32), rng.standard_normal(7)
    X = rng.standard_normal((45, 20)).astype(np.float32)
    specs = [{"kind": "dense", "W": W1, "b": b1, "activation": "relu", "precision": "int8",
              "x_scale": 0.0, "x_signed": True},
             {"kind": "dense", "W": W2, "b": b2, "activation": "softmax", "precision": "int8",
              "x_scale": 0.05, "x_signed": False}]
    Wq1, s1 = R.quantize_weights(W1)
    Wq2, s2 = R.quantize_weights(W2)
    H = R.q8_forward(X, Wq1, s1, b1.astype(np.float32), "relu", 0.0, True)
    expected = R.q8_forward(H, Wq2, s2, b2.astype(np.float32), "softmax", 0.05, False)
    results = []
    old = K.paths()
    try:
        for path in ("auto", "portable"):
            K.use_paths(int8=path)
            engine = InferenceEngine(specs)
            for batch in (1, 5, 45):
                np.testing.assert_allclose(engine.predict(X[:batch]), expected[:batch],
                                           rtol=1e-6, atol=1e-6)
            results.append(engine.predict(X))
    finally:
        K.use_paths(**old)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.parametrize("threads", [2, 7])
def test_thread_counts_give_identical_results(digits, threads):
    model, X_train, X_test, _ = digits
    X = np.repeat(X_test, 3, axis=0)
    for precision in ("int8", "bf16"):
        one = fn.deploy(model, precision=precision, n_threads=1).predict(X)
        many = fn.deploy(model, precision=precision, n_threads=threads).predict(X)
        np.testing.assert_array_equal(one, many)


def test_files_hold_quantized_weights(digits, tmp_path):
    model, X_train, X_test, _ = digits
    sizes = {}
    for precision in (None, "int8", "bf16"):
        engine = fn.deploy(model, precision=precision,
                           calibration=X_train[:300] if precision == "int8" else None)
        path = tmp_path / f"{precision}.fastnn"
        engine.save(path)
        sizes[precision] = path.stat().st_size
        loaded = load_engine(path)
        np.testing.assert_array_equal(loaded.predict(X_test), engine.predict(X_test))
        assert loaded.layout() == engine.layout()
    assert sizes["int8"] < 0.35 * sizes[None]
    assert sizes["bf16"] < 0.6 * sizes[None]


def _edit(path, tensors_edit=None, layer_edit=None):
    from safetensors.numpy import load, save
    from fastnn.io import read_header
    data = path.read_bytes()
    tensors, meta = dict(load(data)), dict(read_header(data)["__metadata__"])
    if tensors_edit:
        tensors_edit(tensors)
    if layer_edit:
        layers = json.loads(meta["layers"])
        layer_edit(layers[0])
        meta["layers"] = json.dumps(layers)
    path.write_bytes(save(tensors, metadata=meta))


@pytest.mark.parametrize("case", [
    lambda t: t.update({"0.Wq": t["0.Wq"].astype(np.int16)}),
    lambda t: t.update({"0.Wq": np.full_like(t["0.Wq"], -128)}),
    lambda t: t.update({"0.w_scale": -t["0.w_scale"]}),
    lambda t: t.update({"0.w_scale": np.full_like(t["0.w_scale"], np.nan)}),
    lambda t: t.pop("0.w_scale"),
    ("layer", lambda e: e.update(x_scale=-1.0)),
    ("layer", lambda e: e.update(x_scale="big")),
    ("layer", lambda e: e.update(x_signed=1)),
    ("layer", lambda e: e.update(precision="int4")),
    ("layer", lambda e: e.pop("x_scale")),
    ("layer", lambda e: e.update(layout="csr")),
])
def test_invalid_quantized_files_are_refused(digits, tmp_path, case):
    model, X_train, _, _ = digits
    path = tmp_path / "e.fastnn"
    fn.deploy(model, precision="int8", calibration=X_train[:100]).save(path)
    if isinstance(case, tuple):
        _edit(path, layer_edit=case[1])
    else:
        _edit(path, tensors_edit=case)
    with pytest.raises(ModelFormatError):
        load_engine(path)


def test_specs_are_validated():
    W = np.ones((3, 2))
    with pytest.raises(ValueError, match="precision"):
        InferenceEngine([{"kind": "dense", "W": W, "precision": "int4"}])
    with pytest.raises(ValueError, match="float32"):
        InferenceEngine([{"kind": "dense", "W": W, "precision": "int8"}], dtype="float64")
    with pytest.raises(ValueError, match="x_signed"):
        InferenceEngine([{"kind": "dense", "W": W, "precision": "int8", "x_signed": "no"}])
    with pytest.raises(ValueError, match="precision"):
        quantization.plan_precision([{"kind": "dense", "W": W}], "fp8")
    with pytest.raises(ValueError, match="calibration"):
        quantization.plan_precision([{"kind": "dense", "W": W, "activation": "relu"}], "int8",
                                    np.full((2, 3), np.nan))


def test_float64_model_deploys_to_float32_quantized_engine():
    model = fn.Sequential([fn.layers.Dense(4, activation="relu"), fn.layers.Dense(2)],
                          input_dim=3, seed=0)
    engine = fn.deploy(model, precision="bf16")
    assert engine.dtype == np.float32
    X = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_allclose(engine.predict(X), model.predict(X), rtol=0.05, atol=0.05)
    with pytest.raises(ValueError, match="calibration"):
        fn.deploy(model, calibration=X)


def test_report_and_config_show_precision(digits):
    model, X_train, X_test, y_test = digits
    rep = pruning.report(model, X_test, y_test, batches=(1,), precision="int8",
                         calibration=X_train[:200])
    assert [r["precision"] for r in rep.rows][:2] == ["int8", "int8"]
    assert abs(rep.extra["engine_accuracy"] - rep.extra["accuracy"]) < 0.02
    assert rep.rows[0]["bytes_deployed"] < rep.rows[0]["bytes_dense"] / 3
    config = fn.config()
    assert config["int8_path"] == K.paths()["int8"]
    assert config["bf16_path"] == K.paths()["bf16"]
