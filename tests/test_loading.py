"""Hostile model and engine files, each made here: refused with ModelFormatError, cheaply."""
import json
import resource
import struct
import time
import tracemalloc

import numpy as np
import pytest

import fastnn as fn
from fastnn import layers as L
from fastnn.errors import ModelFormatError


def _model(**kw):
    model = fn.Sequential([L.Dense(8, activation=fn.activations.LeakyReLU(0.2)),
                           L.BatchNormalization(), L.Dense(3, activation="softmax")],
                          input_dim=4, seed=0, **kw)
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _bytes(obj, tmp_path, name="m.fnn"):
    path = tmp_path / name
    obj.save(path)
    return path.read_bytes()


def _split(data):
    n = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + n]), data[8 + n:]


def _join(header, body):
    raw = json.dumps(header).encode()
    raw += b" " * ((8 - len(raw) % 8) % 8)
    return struct.pack("<Q", len(raw)) + raw + body


def _edit_meta(data, key, edit):
    """`data` with the JSON metadata entry `key` replaced by edit(parsed entry)."""
    header, body = _split(data)
    meta = header["__metadata__"]
    meta[key] = json.dumps(edit(json.loads(meta[key])))
    return _join(header, body)


def _layer_config(data, i, **changes):
    def edit(arch):
        arch["layers"][i]["config"].update(changes)
        return arch
    return _edit_meta(data, "architecture", edit)


def _refused(data, match=None, loader=fn.model_from_bytes):
    with pytest.raises(ModelFormatError, match=match):
        loader(data)


# -- sizes are checked against the tensors before anything is built -------------------------
@pytest.mark.parametrize("initializer", ["glorot_uniform", "truncated_normal"])
def test_a_small_file_claiming_a_huge_input_is_refused_before_allocating(tmp_path, initializer):
    data = _bytes(_model(), tmp_path)
    data = _layer_config(data, 0, kernel_initializer={"class_name": initializer, "config": {}}) \
        if initializer != "glorot_uniform" else data
    data = _edit_meta(data, "architecture", lambda a: dict(a, input_dim=4194304))
    tracemalloc.start()
    start = time.perf_counter()
    try:
        _refused(data, "weights do not fit|initializer")
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(data) < 8000
    assert peak < 2 << 20 and elapsed < 0.5


def test_huge_units_are_refused_not_a_memory_error(tmp_path):
    data = _layer_config(_bytes(_model(), tmp_path), 0, units=10 ** 9)
    _refused(data)
    data = _layer_config(_bytes(_model(), tmp_path), 0, units=1e9)
    _refused(data)


def test_a_loaded_model_never_runs_an_initializer(tmp_path, monkeypatch):
    model = _model()
    path = tmp_path / "m.fnn"
    model.save(path)

    def refuse(*args, **kwargs):
        raise AssertionError("an initializer ran")

    for cls in fn.initializers._TABLE.values():
        if isinstance(cls, type):
            monkeypatch.setattr(cls, "__call__", refuse)
    loaded = fn.load_model(path)
    for a, b in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_sparse_kernels_cannot_expand_far_beyond_the_file(tmp_path):
    model = fn.Sequential([L.Dense(64), L.Dense(2)], input_dim=64, seed=0)
    model.layers[0].kernel[:] = 0
    data = _bytes(model, tmp_path)
    header, body = _split(data)
    assert "layers.0.0.indptr" in header
    # an empty CSR kernel of 2^22 x 2^22 fits in a few bytes of metadata
    header["__metadata__"]["sparse"] = json.dumps({"layers.0.0": [1 << 22, 1 << 22]})
    start = time.perf_counter()
    _refused(_join(header, body), "expand")
    assert time.perf_counter() - start < 0.5


# -- the safetensors layer -----------------------------------------------------------------
@pytest.mark.parametrize("loader", [fn.model_from_bytes, fn.engine_from_bytes])
def test_bf16_tensors_are_refused_by_both_loaders(tmp_path, loader):
    obj = _model() if loader is fn.model_from_bytes else fn.deploy(_model())
    header, body = _split(_bytes(obj, tmp_path))
    name = next(k for k in header if k != "__metadata__" and header[k]["dtype"] == "F32")
    header[name]["dtype"] = "BF16"
    header[name]["shape"] = [header[name]["shape"][0] * 2] + header[name]["shape"][1:]
    _refused(_join(header, body), "BF16", loader)


@pytest.mark.parametrize("loader", [fn.model_from_bytes, fn.engine_from_bytes])
@pytest.mark.parametrize("where", ["header", "metadata"])
def test_deeply_nested_json_is_refused(tmp_path, loader, where):
    obj = _model() if loader is fn.model_from_bytes else fn.deploy(_model())
    header, body = _split(_bytes(obj, tmp_path))
    deep = "[" * 2000 + "]" * 2000
    if where == "metadata":
        key = "architecture" if loader is fn.model_from_bytes else "layers"
        header["__metadata__"][key] = deep
        data = _join(header, body)
    else:
        raw = json.dumps(header).encode()
        raw = raw[:-1] + b', "x": ' + deep.encode() + b"}"
        data = struct.pack("<Q", len(raw)) + raw + body
    _refused(data, "nests deeper", loader)


@pytest.mark.parametrize("loader", [fn.model_from_bytes, fn.engine_from_bytes])
def test_overlapping_or_gapped_tensor_data_is_refused(tmp_path, loader):
    obj = _model() if loader is fn.model_from_bytes else fn.deploy(_model())
    header, body = _split(_bytes(obj, tmp_path))
    first = min((k for k in header if k != "__metadata__"),
                key=lambda k: header[k]["data_offsets"][0])
    second = min((k for k in header if k not in ("__metadata__", first)),
                 key=lambda k: header[k]["data_offsets"][0])
    header[second]["data_offsets"] = [0, header[second]["data_offsets"][1]
                                      - header[second]["data_offsets"][0]]
    _refused(_join(header, body), None, loader)
    _refused(_join(*_split(_bytes(obj, tmp_path))[:1], body + b"\0" * 8), None, loader)


# -- every number is typed and in range ----------------------------------------------------
@pytest.mark.parametrize("alpha", ["a", {"x": 1}, [0.2], None, float("nan"), float("inf"), True])
def test_activation_parameters_must_be_finite_numbers(tmp_path, alpha):
    data = _bytes(_model(), tmp_path)

    def edit(arch):
        act = arch["layers"][0]["config"]["activation"]
        act["config"]["alpha"] = alpha
        return arch
    _refused(_edit_meta(data, "architecture", edit), "layer 0")


def test_a_generic_activation_with_a_string_alpha_is_refused(tmp_path):
    data = _layer_config(_bytes(_model(), tmp_path), 0, activation={
        "class_name": "Activation", "config": {"kernel": "leaky_relu", "alpha": "0.1"}})
    _refused(data, "alpha")
    data = _layer_config(_bytes(_model(), tmp_path), 0, activation={
        "class_name": "Activation", "config": {"kernel": "prelu", "alpha": None}})
    _refused(data, "prelu")


@pytest.mark.parametrize("changes,match", [
    ({"eps": float("nan")}, "layer 1"), ({"eps": 0.0}, "eps"), ({"eps": -1e-5}, "eps"),
    ({"eps": 1e-45}, "eps"), ({"momentum": 1.5}, "momentum"), ({"momentum": -0.1}, "momentum"),
    ({"momentum": "0.1"}, "layer 1"), ({"momentum": float("inf")}, "layer 1"),
    ({"unknown": 1}, "layer 1")])
def test_batch_normalization_parameters_are_range_checked(tmp_path, changes, match):
    _refused(_layer_config(_bytes(_model(), tmp_path), 1, **changes), match)


def test_negative_running_variance_is_refused(tmp_path):
    model = _model()
    model.layers[1].running_var[2] = -0.5
    _refused(_bytes(model, tmp_path), "running_var")


@pytest.mark.parametrize("edit,match", [
    (lambda a: dict(a, input_dim="4"), "input_dim"),
    (lambda a: dict(a, input_dim=4.0), "input_dim"),
    (lambda a: dict(a, input_dim=True), "input_dim"),
    (lambda a: dict(a, dtype="float16"), "dtype"),
    (lambda a: dict(a, seed=-1), "seed"),
    (lambda a: dict(a, seed=1.5), "seed"),
    (lambda a: dict(a, extra=1), "unknown"),
    (lambda a: dict(a, layers=[]), "layers"),
    (lambda a: {k: v for k, v in a.items() if k != "input_dim"}, "missing"),
])
def test_architecture_fields_are_type_and_range_checked(tmp_path, edit, match):
    _refused(_edit_meta(_bytes(_model(), tmp_path), "architecture", edit), match)


@pytest.mark.parametrize("edit,match", [
    (lambda t: dict(t, optimizer={"class_name": "Adam", "config": {"learning_rate": -1}}),
     "optimizer"),
    (lambda t: dict(t, loss="nonsense"), "loss"),
    (lambda t: dict(t, metrics=["accuracy", 3]), "metrics"),
    (lambda t: dict(t, clip={"clipnorm": float("nan")}), "clip"),
    (lambda t: dict(t, clip={"clipnorm": -1.0}), "clip"),
    (lambda t: dict(t, extra=1), "unknown"),
])
def test_training_metadata_is_checked(tmp_path, edit, match):
    _refused(_edit_meta(_bytes(_model(), tmp_path), "training", edit), match)


# -- every tensor and every key is accounted for -------------------------------------------
def _pruned(tmp_path):
    model = fn.Sequential([L.Dense(32, activation="relu"), L.Dense(3)], input_dim=16, seed=0)
    fn.pruning.prune_magnitude(model, sparsity=0.8)
    return model, _bytes(model, tmp_path)


def test_metadata_listing_no_sparse_layers_cannot_hide_csr_tensors(tmp_path):
    _, data = _pruned(tmp_path)
    header, body = _split(data)
    header["__metadata__"]["sparse"] = "{}"
    _refused(_join(header, body), "sparse")


def test_masked_layers_must_name_kernel_layers_once(tmp_path):
    model, data = _pruned(tmp_path)
    assert fn.model_from_bytes(data).layers[0].kernel_mask is not None
    for masked in ([0, 0], [5], [-1], ["0"], {"0": 1}):
        header, body = _split(data)
        header["__metadata__"]["masked_layers"] = json.dumps(masked)
        _refused(_join(header, body), "masked_layers")


def test_unknown_or_unused_tensors_are_refused(tmp_path):
    model = _model()
    data = _bytes(model, tmp_path)
    header, body = _split(data)
    extra = np.zeros(3, np.float32).tobytes()
    for name in ("layers.0.2", "layers.7.0", "bonus", "layers.00.0"):
        h = dict(header)
        h[name] = {"dtype": "F32", "shape": [3], "data_offsets": [len(body), len(body) + 12]}
        _refused(_join(h, body + extra), "tensor|weights")


def test_unknown_metadata_keys_are_refused_by_both_loaders(tmp_path):
    for obj, loader in ((_model(), fn.model_from_bytes), (fn.deploy(_model()),
                                                          fn.engine_from_bytes)):
        header, body = _split(_bytes(obj, tmp_path))
        header["__metadata__"]["surprise"] = "1"
        _refused(_join(header, body), "unknown metadata", loader)


def test_a_missing_metadata_entry_is_named(tmp_path):
    header, body = _split(_bytes(_model(), tmp_path))
    del header["__metadata__"]["masked_layers"]
    _refused(_join(header, body), "masked_layers")


def test_metadata_checks_are_a_table_a_new_key_extends(tmp_path, monkeypatch):
    from fastnn import saving

    seen = []

    def check(text):
        seen.append(text)
        if text != "ok":
            raise ModelFormatError("precision must be ok")
        return text

    monkeypatch.setitem(saving.METADATA, "precision", (False, check))
    header, body = _split(_bytes(_model(), tmp_path))
    header["__metadata__"]["precision"] = "ok"
    fn.model_from_bytes(_join(header, body))
    header["__metadata__"]["precision"] = "bad"
    _refused(_join(header, body), "precision must be ok")
    assert seen == ["ok", "bad"]


# -- bytes and paths -----------------------------------------------------------------------
def test_loading_from_bytes_equals_loading_from_the_path(tmp_path):
    model = _model()
    path = tmp_path / "m.fnn"
    model.save(path)
    X = np.random.default_rng(0).standard_normal((5, 4))
    np.testing.assert_array_equal(fn.model_from_bytes(path.read_bytes()).predict(X),
                                  fn.load_model(path).predict(X))
    engine = fn.deploy(model)
    engine.save(tmp_path / "e.fastnn")
    np.testing.assert_array_equal(
        fn.engine_from_bytes(bytearray((tmp_path / "e.fastnn").read_bytes())).predict(X),
        engine.predict(X))
    with pytest.raises(TypeError):
        fn.model_from_bytes(str(path))


def test_missing_paths_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        fn.load_model(tmp_path / "nothing.fnn")
    with pytest.raises(FileNotFoundError):
        fn.load_engine(tmp_path / "nothing.fastnn")


def test_truncations_of_a_file_are_all_refused(tmp_path):
    data = _bytes(_model(), tmp_path)
    for n in list(range(0, 64)) + list(range(64, len(data), 97)):
        _refused(data[:n])


# -- memory and threads --------------------------------------------------------------------
def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.mark.skipif(not hasattr(resource, "getpagesize"), reason="needs /proc")
def test_predict_does_not_grow_memory(tmp_path):
    model = fn.model_from_bytes(_bytes(_model(), tmp_path))
    engine = fn.deploy(model)
    X = np.random.default_rng(0).standard_normal((7, 4)).astype(np.float32)
    for _ in range(2000):
        model.predict(X), engine.predict(X)
    before = _rss()
    for _ in range(20000):
        model.predict(X), engine.predict(X)
    assert _rss() - before < 4 << 20


def test_loading_time_grows_linearly_with_the_file(tmp_path):
    sizes, times = [], []
    for width in (256, 1024):
        model = fn.Sequential([L.Dense(width), L.Dense(width)], input_dim=width, seed=0)
        data = _bytes(model, tmp_path)
        best = min(_timed(fn.model_from_bytes, data) for _ in range(3))
        sizes.append(len(data))
        times.append(best)
    # 16 times the bytes: well under 64 times the time (linear, not quadratic)
    assert times[1] / times[0] < 4 * sizes[1] / sizes[0]


def _timed(f, *args):
    start = time.perf_counter()
    f(*args)
    return time.perf_counter() - start


@pytest.mark.parametrize("classes", ['"abc"', "[1, 1, 2]", "[1, 2]", '[1, "a", 2]', "[NaN, 1, 2]",
                                     "{}", "[0, 1, 99999999999999999999]",  # found by the fuzzer
                                     "[0.5, 1, " + "9" * 400 + "]"])
def test_class_labels_are_checked_by_both_loaders(tmp_path, classes):
    for obj, loader in ((_model(), fn.model_from_bytes), (fn.deploy(_model()),
                                                          fn.engine_from_bytes)):
        header, body = _split(_bytes(obj, tmp_path))
        header["__metadata__"]["classes"] = classes
        _refused(_join(header, body), "classes", loader)


@pytest.mark.parametrize("name", [["a"], {"a": 1}, 3])
def test_a_layer_name_that_is_not_a_string_is_refused(tmp_path, name):
    # found by the fuzzer: a list as a layer name reached a set of names
    _refused(_layer_config(_bytes(_model(), tmp_path), 1, name=name), "name")


def test_a_csv_of_only_the_label_column_is_a_usage_error(tmp_path):
    # found by the fuzzer: np.concatenate of no feature columns raised ValueError
    from fastnn.cli import UsageError, read_data

    path = tmp_path / "t.csv"
    path.write_bytes(b"label\n0.\x10\n")
    with pytest.raises(UsageError, match="no feature columns"):
        read_data(path)
    path.write_bytes(b"label\n1\n0\n")
    with pytest.raises(UsageError, match="no feature columns"):
        read_data(path)
