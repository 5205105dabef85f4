import json
import os
import pickle
import struct
import tempfile
import threading

import numpy as np
import pytest
from conftest import in_threads
from hypothesis import HealthCheck, given, settings, strategies as st

from fastnn._kernels.activations import CODES
from fastnn._kernels.reference import activations as ref_act
from fastnn._kernels.sparse import csr_from_dense
from fastnn.engine import InferenceEngine, load_engine
from fastnn.errors import ModelFormatError
from fastnn.io import read_header

ACTIVATIONS = sorted(CODES)
STEPS = {"binary_step", "binary_step_ste"}
LAYOUTS = ["auto", "dense", "sparse"]
BATCHES = [1, 7, 32, 256, 1000]


def _kernel(rng, n_in, n_out, density, dt=np.float32):
    W = (rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)).astype(dt)
    W[rng.random(W.shape) >= density] = 0
    return W


def _dense(rng, n_in, n_out, density, act="linear", dt=np.float32, pieces=1):
    spec = {"kind": "dense", "W": _kernel(rng, n_in, n_out, density, dt),
            "b": (0.1 * rng.standard_normal(n_out)).astype(dt), "activation": act}
    if pieces > 1:
        spec["pieces"] = pieces
    if act == "prelu":
        spec["alpha"] = rng.uniform(0.05, 0.5, n_out // pieces)
    return spec


def _numpy_forward(specs, X):
    """The network in float64 numpy; also returns the last pre-activation."""
    h = X.astype(np.float64)
    for s in specs:
        if s["kind"] == "dense":
            z = h @ s["W"].astype(np.float64)
            if s.get("b") is not None:
                z = z + s["b"]
            p = s.get("pieces", 1)
            if p > 1:
                z = z.reshape(len(z), -1, p).max(axis=2)
        else:
            z = h * s["scale"] + s["shift"]
        alpha = s.get("alpha")
        h = ref_act.forward(s["activation"], z, alpha)
    return h, z


def _assert_close(Y, ref, rtol=1e-5, mask=None):
    assert Y.shape == ref.shape
    if mask is not None:
        Y, ref = Y[mask], ref[mask]
    np.testing.assert_allclose(Y, ref, rtol=rtol, atol=rtol * max(np.abs(ref).max(), 1e-30))


@pytest.fixture(scope="module")
def batches():
    rng = np.random.default_rng(123)
    return {n: rng.standard_normal((n, 40)).astype(np.float32) for n in BATCHES}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_predict_matches_numpy_forward(act, layout, batches):
    rng = np.random.default_rng(sum(map(ord, act + layout)))
    if act in STEPS:
        # A step is discontinuous: keep it last and skip pre-activations near 0.
        specs = [_dense(rng, 40, 33, 0.15), _dense(rng, 33, 9, 0.5, act)]
    else:
        specs = [_dense(rng, 40, 33, 0.15, act), _dense(rng, 33, 9, 0.5)]
    engine = InferenceEngine(specs, layout=layout)
    for n, X in batches.items():
        ref, z = _numpy_forward(specs, X)
        Y = engine.predict(X)
        assert Y.dtype == np.float32
        _assert_close(Y, ref, mask=np.abs(z) > 1e-4 if act in STEPS else None)


@pytest.mark.parametrize("density", [0.0, 0.05, 0.3, 0.6, 1.0])
def test_auto_layout_mixes_forms_and_matches(density, batches):
    rng = np.random.default_rng(7)
    specs = [_dense(rng, 40, 64, density, "relu"), _dense(rng, 64, 64, 0.04, "tanh"),
             _dense(rng, 64, 5, 1.0, "softmax")]
    engine = InferenceEngine(specs)
    for X in batches.values():
        _assert_close(engine.predict(X), _numpy_forward(specs, X)[0])
    report = engine.layout()
    assert report[0]["density"] == pytest.approx(np.count_nonzero(specs[0]["W"]) / (40 * 64))
    # CSR or blocks (1x4 blocks of a random 4% layer are 15% full), both for many rows only
    assert report[1]["storage"] in ("dense+csr", "dense+bsr")
    assert report[1]["index_dtype"] == "uint16"
    assert report[1]["csr_batches"][0] > 2 and report[1]["csr_batches"][1] is None
    assert report[2]["storage"] == "dense" and report[2]["csr_batches"] is None
    assert all("reason" in r for r in report)
    if density == 0.05:
        assert report[0]["storage"] == "dense+csr"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float64_maxout_and_affine(layout, batches):
    rng = np.random.default_rng(8)
    specs = [_dense(rng, 40, 36, 0.2, "relu", np.float64, pieces=3),
             {"kind": "affine", "scale": rng.uniform(0.5, 2, 12), "shift": rng.standard_normal(12),
              "activation": "prelu", "alpha": rng.uniform(0.1, 0.3, 12)},
             _dense(rng, 12, 8, 0.3, "linear", np.float64, pieces=2),
             {"kind": "affine", "scale": rng.uniform(0.5, 2, 4), "shift": rng.standard_normal(4),
              "activation": "softmax"}]
    engine = InferenceEngine(specs, dtype="float64", layout=layout)
    for X in batches.values():
        Y = engine.predict(X.astype(np.float64))
        assert Y.dtype == np.float64
        _assert_close(Y, _numpy_forward(specs, X)[0], rtol=1e-12)


def test_softmax_inside_a_sparse_network(batches):
    rng = np.random.default_rng(9)
    specs = [_dense(rng, 40, 30, 0.1, "softmax"), _dense(rng, 30, 20, 0.1, "prelu"),
             {"kind": "affine", "scale": rng.uniform(0.5, 2, 20), "shift": np.zeros(20),
              "activation": "elu", "alpha": 0.7},
             _dense(rng, 20, 6, 0.1, "sigmoid")]
    engine = InferenceEngine(specs, layout="sparse")
    for X in batches.values():
        _assert_close(engine.predict(X), _numpy_forward(specs, X)[0])


def test_input_checks_conversions_and_out(batches):
    rng = np.random.default_rng(10)
    specs = [_dense(rng, 40, 6, 0.5, "tanh")]
    engine = InferenceEngine(specs)
    X = batches[7]
    expected = engine.predict(X)
    with pytest.raises(ValueError, match=r"X.reshape\(1, -1\) for one sample"):
        engine.predict(X[0])
    np.testing.assert_array_equal(engine.predict(X.astype(np.float64)), expected)
    np.testing.assert_array_equal(engine.predict(np.asfortranarray(X)), expected)
    Xi = np.arange(80).reshape(2, 40) % 3
    np.testing.assert_array_equal(engine.predict(Xi), engine.predict(Xi.astype(np.float32)))
    out = np.empty((7, 6), np.float32)
    assert engine.predict(X, out=out) is out
    np.testing.assert_array_equal(out, expected)
    assert engine.predict(np.zeros((0, 40), np.float32)).shape == (0, 6)
    with pytest.raises(ValueError, match=r"X has shape \(7, 39\) but the engine expects "
                                         r"\(batch, 40\)"):
        engine.predict(X[:, :39])
    with pytest.raises(ValueError, match=r"X has shape \(39,\)"):
        engine.predict(X[0, :39])
    with pytest.raises(ValueError, match=r"X has shape \(1, 7, 40\)"):
        engine.predict(X[None])
    with pytest.raises(TypeError, match="X has dtype"):
        engine.predict(np.array([["a"] * 40]))
    with pytest.raises(ValueError, match="out must be"):
        engine.predict(X, out=np.empty((7, 6)))


@pytest.mark.parametrize("dtype, precision, n_threads", [
    ("float32", None, 1), ("float32", None, 2), ("float64", None, 2),
    ("float32", "int8", 2), ("float32", "bf16", 2)])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_a_nan_or_inf_in_x_leaves_out_untouched(dtype, precision, n_threads, bad):
    rng = np.random.default_rng(12)
    specs = [_dense(rng, 30, 40, 1.0, "relu"), _dense(rng, 40, 3, 1.0, "softmax")]
    if precision is not None:
        specs[0].update(precision=precision, x_scale=4.0 / 255, x_signed=True)
    # chunks of 100 rows, run blockwise; the bad value is in the middle of the batch
    engine = InferenceEngine(specs, dtype=dtype, layout="dense", n_threads=n_threads,
                             max_batch=100)
    X = rng.standard_normal((1030, 30))
    X[500, 3] = bad
    for given in (X.astype(engine.dtype), X.astype(np.float32 if dtype == "float64"
                                                   else np.float64)):
        out = np.full((1030, 3), -7, engine.dtype)
        with pytest.raises(ValueError, match="NaN or infinite"):
            engine.predict(given, out=out)
        assert (out == -7).all()


def test_bad_specs_are_rejected():
    rng = np.random.default_rng(11)
    good = _dense(rng, 5, 4, 1.0)
    cases = [
        ([], "at least one layer"),
        ([dict(good, kind="conv")], "unknown kind 'conv'"),
        ([dict(good, activation="relu6")], "unknown activation 'relu6'"),
        ([good, _dense(rng, 5, 2, 1.0)], r"W has shape \(5, 2\) but the layer before gives 4"),
        ([dict(good, pieces=3)], "pieces=3 must be a positive divisor"),
        ([dict(good, b=np.zeros(3))], r"b has shape \(3,\)"),
        ([dict(good, activation="prelu")], "prelu needs alpha"),
        ([dict(good, W=np.full((5, 4), np.nan))], "NaN"),
        ([good, {"kind": "affine", "scale": np.ones(3), "activation": "relu"}],
         r"scale has shape \(3,\)"),
    ]
    for layers, message in cases:
        with pytest.raises(ValueError, match=message):
            InferenceEngine(layers)
    with pytest.raises(ValueError, match="layout must be one of"):
        InferenceEngine([good], layout="csr")
    with pytest.raises(ValueError, match="dtype must be one of"):
        InferenceEngine([good], dtype="float16")
    with pytest.raises(ValueError, match="n_threads must be a positive integer"):
        InferenceEngine([good], n_threads=0)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_threads_calling_predict_at_once_match_serial_calls(layout):
    rng = np.random.default_rng(12)
    specs = [_dense(rng, 300, 200, 0.1, "relu"), _dense(rng, 200, 100, 0.5, "gelu"),
             _dense(rng, 100, 10, 1.0, "softmax")]
    engine = InferenceEngine(specs, layout=layout, max_batch=64)
    inputs = [rng.standard_normal((n, 300)).astype(np.float32) for n in (1, 5, 64, 150) * 4]
    serial = [engine.predict(X) for X in inputs]
    results = {}
    barrier = threading.Barrier(8)

    def work(tid):
        barrier.wait()
        for rep in range(5):
            for k in range(tid, len(inputs), 8):
                results[tid, rep, k] = engine.predict(inputs[k])

    in_threads(work, 8)
    assert len(results) == 5 * len(inputs)
    for (tid, rep, k), Y in results.items():
        np.testing.assert_array_equal(Y, serial[k])


@pytest.mark.parametrize("layout,dtype", [("auto", "float32"), ("dense", "float32"),
                                          ("sparse", "float64")])
def test_save_load_round_trip_is_bit_exact(tmp_path, layout, dtype):
    rng = np.random.default_rng(13)
    specs = [_dense(rng, 40, 24, 0.1, "prelu", pieces=2), _dense(rng, 12, 12, 0.3, "elu"),
             {"kind": "affine", "scale": rng.uniform(0.5, 2, 12), "shift": np.ones(12),
              "activation": "leaky_relu", "alpha": 0.2},
             _dense(rng, 12, 3, 1.0, "softmax")]
    specs[1]["alpha"] = 0.5
    engine = InferenceEngine(specs, dtype=dtype, layout=layout, max_batch=100)
    path = tmp_path / "model.fastnn"
    engine.save(path)
    loaded = load_engine(path)
    assert loaded.layout() == engine.layout()
    assert (loaded.n_in, loaded.n_out, loaded.dtype) == (40, 3, np.dtype(dtype))
    X = rng.standard_normal((301, 40))
    for rows in (X[:1], X[:9], X):
        np.testing.assert_array_equal(loaded.predict(rows), engine.predict(rows))
    meta = read_header(path.read_bytes())["__metadata__"]
    assert meta["format"] == "fastnn-engine" and meta["format_version"] == "3"
    described = json.loads(meta["layers"])
    assert [d["kind"] for d in described] == ["dense", "dense", "affine", "dense"]
    assert described[0]["activation"] == "prelu" and described[0]["pieces"] == 2


def _as_version_1(tensors, meta):
    """A version-2 engine file's contents as version 1 wrote them: the CSR values named
    "data", and each layer's "n_out" its width before maxout."""
    layers = json.loads(meta["layers"])
    for i, entry in enumerate(layers):
        entry["n_out"] *= entry.get("pieces", 1)
        if f"{i}.values" in tensors:
            tensors[f"{i}.data"] = tensors.pop(f"{i}.values")
    return tensors, dict(meta, format_version="1", layers=json.dumps(layers))


def test_version_1_files_still_load(tmp_path):
    rng = np.random.default_rng(17)
    specs = [_dense(rng, 30, 24, 0.1, "relu", pieces=3), _dense(rng, 8, 6, 0.1, "elu"),
             _dense(rng, 6, 3, 1.0, "softmax")]
    engine = InferenceEngine(specs, layout="sparse")
    engine.save(tmp_path / "v2.fastnn")
    tensors, meta = _raw(tmp_path / "v2.fastnn")
    assert json.loads(meta["layers"])[0]["n_out"] == 8 and "0.values" in tensors
    _write(tmp_path / "v1.fastnn", *_as_version_1(tensors, meta))
    old = load_engine(tmp_path / "v1.fastnn")
    assert old.layout() == engine.layout()
    X = rng.standard_normal((17, 30)).astype(np.float32)
    np.testing.assert_array_equal(old.predict(X), engine.predict(X))
    tensors, meta = _raw(tmp_path / "v1.fastnn")
    _write(tmp_path / "v1-named-values.fastnn", {k.replace(".data", ".values"): v
                                                 for k, v in tensors.items()}, meta)
    with pytest.raises(ModelFormatError, match="'0.data' is missing"):
        load_engine(tmp_path / "v1-named-values.fastnn")


def test_wide_fan_in_uses_int32_indices_and_round_trips(tmp_path):
    rng = np.random.default_rng(16)
    specs = [_dense(rng, 70000, 4, 0.001, "relu"), _dense(rng, 4, 3, 1.0, "softmax")]
    engine = InferenceEngine(specs)
    assert engine.layout()[0]["index_dtype"] == "int32"
    engine.save(tmp_path / "wide.fastnn")
    loaded = load_engine(tmp_path / "wide.fastnn")
    X = rng.standard_normal((20, 70000)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), engine.predict(X))
    _assert_close(engine.predict(X), _numpy_forward(specs, X)[0])


def test_file_of_a_sparse_engine_is_much_smaller(tmp_path):
    rng = np.random.default_rng(14)
    specs = [_dense(rng, 784, 256, 0.1, "relu"), _dense(rng, 256, 128, 0.1, "relu"),
             _dense(rng, 128, 10, 0.1, "softmax")]
    InferenceEngine(specs).save(tmp_path / "sparse.fastnn")
    InferenceEngine(specs, layout="dense").save(tmp_path / "dense.fastnn")
    sparse_size = os.path.getsize(tmp_path / "sparse.fastnn")
    dense_size = os.path.getsize(tmp_path / "dense.fastnn")
    assert sparse_size < 0.2 * dense_size
    header = read_header((tmp_path / "sparse.fastnn").read_bytes())
    assert header["0.indices"]["dtype"] == "U16"
    # layers that run dense are stored as CSR all the same, and loaded as they ran
    engine = InferenceEngine(specs)
    assert "dense" in [r["storage"] for r in engine.layout()]
    loaded = load_engine(tmp_path / "sparse.fastnn")
    assert loaded.layout() == engine.layout()
    X = rng.standard_normal((40, 784)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), engine.predict(X))


# -- hostile files --------------------------------------------------------------

def _valid_file(path):
    rng = np.random.default_rng(15)
    specs = [_dense(rng, 12, 10, 0.3, "relu"), _dense(rng, 10, 4, 1.0, "softmax")]
    InferenceEngine(specs).save(path)
    return path


def _raw(path):
    """(tensors, metadata) of a safetensors file, without any engine checks."""
    from safetensors.numpy import load
    data = path.read_bytes()
    return dict(load(data)), dict(read_header(data)["__metadata__"])


def _write(path, tensors, meta):
    from safetensors.numpy import save
    path.write_bytes(save(tensors, metadata=meta))


def _raw_file(path, header, payload):
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + payload)


def _layers_edit(fn):
    def edit(t, m):
        layers = json.loads(m["layers"])
        fn(layers)
        m["layers"] = json.dumps(layers)
    return edit


def _set(name, value):
    def edit(t, m):
        t[name] = value(t[name]) if callable(value) else value
    return edit


def _del(name):
    def edit(t, m):
        del t[name]
    return edit


TENSOR_AND_META_EDITS = {
    "wrong version": lambda t, m: m.update(format_version="99"),
    "wrong format": lambda t, m: m.update(format="other"),
    "no layers": lambda t, m: m.pop("layers"),
    "layers not json": lambda t, m: m.update(layers="[{"),
    "layers not a list": lambda t, m: m.update(layers="{}"),
    "unknown dtype": lambda t, m: m.update(dtype="float16"),
    "unknown layout": lambda t, m: m.update(layout="fancy"),
    "bad max_batch": lambda t, m: m.update(max_batch="1e9"),
    "unknown activation": _layers_edit(lambda L: L[0].update(activation="__import__('os')")),
    "unknown kind": _layers_edit(lambda L: L[0].update(kind="conv")),
    "extra key": _layers_edit(lambda L: L[0].update(extra=1)),
    "bool width": _layers_edit(lambda L: L[0].update(n_in=True)),
    "huge width": _layers_edit(lambda L: L[0].update(n_in=10**12)),
    "widths disagree": _layers_edit(lambda L: L[1].update(n_in=9)),
    "pieces not dividing": _layers_edit(lambda L: L[1].update(pieces=3)),
    "csr in a dense engine": lambda t, m: m.update(layout="dense"),
    "out-of-range index": _set("0.indices", lambda a: np.where(np.arange(len(a)) == 0, 12,
                                                               a).astype(np.uint16)),
    "repeated index": _set("0.indices", lambda a: np.zeros_like(a)),
    "non-monotone indptr": _set("0.indptr", lambda a: a[::-1].copy()),
    "indptr past the end": _set("0.indptr", lambda a: a + 1),
    "indptr too short": _set("0.indptr", lambda a: a[:-1].copy()),
    "int64 indices": _set("0.indices", lambda a: a.astype(np.int64)),
    "NaN weight": _set("1.W", lambda a: np.where(a == a.flat[0], np.nan, a).astype(a.dtype)),
    "inf bias": _set("1.b", lambda a: np.full_like(a, np.inf)),
    "float64 values": _set("0.values", lambda a: a.astype(np.float64)),
    "values under their version 1 name": lambda t, m: t.update({"0.data": t.pop("0.values")}),
    "wrong W shape": _set("1.W", lambda a: a[:, :3].copy()),
    "missing tensor": _del("1.b"),
    "extra tensor": lambda t, m: t.update(extra=np.zeros(2, np.float32)),
    "prelu without slopes": _layers_edit(lambda L: L[0].update(activation="prelu")),
}


@pytest.mark.parametrize("case", sorted(TENSOR_AND_META_EDITS))
def test_invalid_content_is_refused(tmp_path, case):
    path = _valid_file(tmp_path / "good.fastnn")
    tensors, meta = _raw(path)
    TENSOR_AND_META_EDITS[case](tensors, meta)
    _write(path, tensors, meta)
    with pytest.raises(ModelFormatError):
        load_engine(path)


def test_malformed_files_are_refused(tmp_path):
    good = _valid_file(tmp_path / "good.fastnn").read_bytes()
    bad = tmp_path / "bad.fastnn"
    f32 = {"dtype": "F32", "shape": [2]}
    cases = {
        "empty": b"",
        "random bytes": np.random.default_rng(0).bytes(500),
        "huge header length": struct.pack("<Q", 2**63) + good[8:],
        "header past the end": struct.pack("<Q", len(good)) + good[8:],
        "pickle": pickle.dumps({"layers": [np.ones((3, 3))]}),
    }
    for cut in (7, 8, 40, len(good) // 2, len(good) - 1):
        cases[f"truncated at {cut}"] = good[:cut]
    for name, blob in cases.items():
        bad.write_bytes(blob)
        with pytest.raises(ModelFormatError):
            load_engine(bad)
    meta = {"format": "fastnn-engine", "format_version": "1"}
    for header in (
        {"a": dict(f32, data_offsets=[0, 8]), "b": dict(f32, data_offsets=[4, 12])},  # overlap
        {"a": dict(f32, data_offsets=[0, 2**62])},  # huge length
        {"a": dict(f32, data_offsets=[0, 4])},  # length disagrees with the shape
        {"a": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}},
    ):
        _raw_file(bad, dict(header, __metadata__=meta), bytes(16))
        with pytest.raises(ModelFormatError):
            load_engine(bad)
    with pytest.raises(FileNotFoundError):
        load_engine(tmp_path / "missing.fastnn")


_MUTATION_DIR = tempfile.mkdtemp(prefix="fastnn-engine-")
_GOOD_BYTES = None


def _good_bytes():
    global _GOOD_BYTES
    if _GOOD_BYTES is None:
        from pathlib import Path
        _GOOD_BYTES = _valid_file(Path(_MUTATION_DIR) / "good.fastnn").read_bytes()
    return _GOOD_BYTES


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=6),
       cut=st.one_of(st.none(), st.floats(0, 1)))
def test_mutated_files_raise_only_model_format_error(edits, cut):
    data = bytearray(_good_bytes())
    for where, value in edits:
        data[int(where * len(data))] = value
    if cut is not None:
        data = data[:int(cut * len(data))]
    path = os.path.join(_MUTATION_DIR, "mutated.fastnn")
    with open(path, "wb") as f:
        f.write(bytes(data))
    try:
        engine = load_engine(path)
    except ModelFormatError:
        return
    # Whatever passed the loader must run: finite, of the declared shape.
    X = np.random.default_rng(0).standard_normal((5, engine.n_in))
    for rows in (X[:1], X):
        assert engine.predict(rows).shape == (len(rows), engine.n_out)


def test_engine_keeps_its_own_copy_of_csr_arrays():
    rng = np.random.default_rng(11)
    W = rng.standard_normal((8, 5)) * (rng.random((8, 5)) < 0.3)
    indptr, indices, data = csr_from_dense(W)
    engine = InferenceEngine([{"kind": "dense", "csr": (indptr, indices, data), "n_in": 8}],
                             dtype="float64", layout="sparse")
    X = rng.standard_normal((3, 8))
    expected = engine.predict(X)
    indptr[-1] = 10 ** 12  # the caller's array, not the engine's
    indices[:] = 7
    np.testing.assert_array_equal(engine.predict(X), expected)
    np.testing.assert_allclose(expected, X @ W, rtol=1e-12)


def test_predict_refuses_an_out_that_overlaps_X():
    engine = InferenceEngine([{"kind": "dense", "W": np.eye(4), "b": None,
                               "activation": "relu"}], dtype="float64")
    X = np.ones((2, 4))
    with pytest.raises(ValueError, match="share memory"):
        engine.predict(X, out=X)


def test_sparse_batches_takes_the_upper_of_two_ranges():
    import sys
    from fastnn.engine import sparse_batches
    table = ((1, 0.10), (15, 0.0), (256, 0.05), (sys.maxsize, 0.04))
    d = 0.05  # wins at one row and at 16-256 rows, not at a few nor above 256
    assert sparse_batches(d, 1024, table) == (16, 256)
    assert sparse_batches(d, 256, table) == (16, sys.maxsize)
    assert sparse_batches(d, 1, table) == (1, sys.maxsize)
    assert sparse_batches(d, 15, table) == (1, 1)
    assert sparse_batches(1.0, 1024, table) == (1, 0)
    assert sparse_batches(0.0, 1024, table) == (1, sys.maxsize)


def test_large_chunks_run_blockwise_past_a_layers_sparse_range():
    rng = np.random.default_rng(11)
    specs = [_dense(rng, 40, 64, 0.05, "relu"), _dense(rng, 64, 5, 1.0, "softmax")]
    engine = InferenceEngine(specs, n_threads=2)
    lo, hi = engine.layout()[0]["csr_batches"]  # CSR for 16-95 rows, dense above
    assert engine.layout()[0]["storage"] == "dense+csr" and hi is not None
    assert engine._plan.blockwise_from == hi + 1
    for n in (lo, hi, 200, 1000):
        X = rng.standard_normal((n, 40)).astype(np.float32)
        _assert_close(engine.predict(X), _numpy_forward(specs, X)[0])


def test_one_row_runs_csr_below_the_range_of_many_rows():
    # A layer sparse enough for CSR at one row and at many, not at a few: CSR for one
    # row and for the range of many rows, dense between; a saved engine chooses alike.
    rng = np.random.default_rng(12)
    specs = [_dense(rng, 300, 64, 0.05, "relu"), _dense(rng, 64, 5, 1.0, "softmax")]
    engine = InferenceEngine(specs)
    first, last = engine.layout()
    assert first["csr_one_row"] and first["csr_batches"][0] > 2
    assert first["storage"] == "dense+csr"
    assert not last["csr_one_row"] and last["csr_batches"] is None
    assert not InferenceEngine(specs, layout="dense").layout()[0]["csr_one_row"]
    assert not InferenceEngine(specs, layout="sparse").layout()[0]["csr_one_row"]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "e.fastnn")
        engine.save(path)
        assert load_engine(path).layout() == engine.layout()
    for n in (1, 2, first["csr_batches"][0], 300):
        X = rng.standard_normal((n, 300)).astype(np.float32)
        _assert_close(engine.predict(X), _numpy_forward(specs, X)[0])


def test_a_small_sparse_layer_leaves_large_chunks_blockwise():
    # A small layer in blocks would keep the network from running blockwise at large
    # chunks: its blocks stop there, the big dense layer decides.
    from fastnn.engine import BLOCKWISE_ROWS
    rng = np.random.default_rng(21)
    big = _dense(rng, 300, 200, 1.0, "relu")
    small = _dense(rng, 200, 24, 1.0, "softmax")
    small["W"] *= np.repeat(rng.random((200, 3)) < 0.1, 8, axis=1)  # 1x8 blocks at 10%
    engine = InferenceEngine([big, small], n_threads=2)
    first, last = engine.layout()
    assert first["storage"] == "dense" and last["block"] == "1x8"
    assert last["csr_batches"] == (1, BLOCKWISE_ROWS - 1)
    assert "blockwise" in last["reason"]
    assert engine._plan.blockwise_from == BLOCKWISE_ROWS
    alone = InferenceEngine([small])  # alone, the layer runs in blocks at every size
    assert alone.layout()[0]["csr_batches"] == (1, None)
    for n in (1, BLOCKWISE_ROWS - 1, BLOCKWISE_ROWS, 300):
        X = rng.standard_normal((n, 300)).astype(np.float32)
        _assert_close(engine.predict(X), _numpy_forward([big, small], X)[0])


def test_blockwise_cut_is_where_the_sparse_layers_are_small():
    import sys
    from types import SimpleNamespace
    from fastnn.engine import BLOCKWISE_ROWS, _blockwise_cut

    def layer(n_in, n_z, lo, hi):
        return SimpleNamespace(kind="dense", quant=None, n_in=n_in, n_z=n_z,
                               sparse_batches=(lo, hi))
    big, small = (784, 256), (128, 10)
    # the big layer sparse up to 128 rows, the small one at every size: cut at 129
    layers = [layer(*big, 16, 128), layer(*small, 1, sys.maxsize)]
    assert _blockwise_cut(layers) == (129, [layers[1]])
    # a small layer sparse only from 300 rows: cut where it starts
    layers = [layer(*big, 1, 0), layer(*small, 300, sys.maxsize)]
    assert _blockwise_cut(layers) == (300, [layers[1]])
    # the big layer sparse at every size decides: no cut
    layers = [layer(*big, 16, sys.maxsize), layer(*small, 1, sys.maxsize)]
    assert _blockwise_cut(layers) == (None, [])
    assert _blockwise_cut([layer(*big, 1, BLOCKWISE_ROWS - 1)]) == (None, [])
