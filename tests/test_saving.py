"""fastnn.saving: the model file, written by the function or the method alike."""
import json
import pickle

import numpy as np
import pytest

import fastnn as fn
from fastnn import io, layers as L, saving


def test_save_model_and_method_write_files_that_load_the_same(tmp_path):
    model = fn.Sequential([L.Dense(5, activation="relu"), L.Dense(2)], input_dim=3, seed=0)
    model.compile("adam", "mse")
    saving.save_model(model, tmp_path / "a.safetensors")
    model.save(tmp_path / "b.safetensors")
    assert fn.load_model is saving.load_model
    a = saving.load_model(tmp_path / "a.safetensors")
    b = fn.load_model(tmp_path / "b.safetensors")
    for x, y, w in zip(a.get_weights(), b.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(x, w)
        np.testing.assert_array_equal(y, w)
    assert a.get_config() == model.get_config()
    assert type(a.loss) is type(model.loss) and type(a.optimizer) is type(model.optimizer)


def _trained(optimizer="adam", **kw):
    X = np.random.default_rng(0).normal(size=(64, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]])
    model = fn.Sequential([L.Dense(6, activation="relu"), L.Dropout(0.2), L.Dense(1)],
                          input_dim=3, seed=0, **kw)
    model.compile(optimizer, "mse")
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    return model, X, y


@pytest.mark.parametrize("optimizer", ["adam", "sgd", fn.optimizers.SGD(momentum=0.9),
                                       fn.optimizers.RMSprop(centered=True, momentum=0.5)])
@pytest.mark.parametrize("how", ["file", "pickle"])
def test_training_continues_exactly_after_saving_and_loading(tmp_path, optimizer, how):
    import copy

    model, X, y = _trained(copy.deepcopy(optimizer))
    twin, _, _ = _trained(copy.deepcopy(optimizer))
    if how == "file":
        twin.save(tmp_path / "m.safetensors", include_optimizer=True)
        twin = fn.load_model(tmp_path / "m.safetensors")
    else:
        twin = pickle.loads(pickle.dumps(twin))
    assert twin.optimizer.iterations == model.optimizer.iterations == 8
    for a, b in zip(twin.optimizer.get_state(), model.optimizer.get_state()):
        np.testing.assert_array_equal(a, b)
    model.fit(X, y, epochs=2, batch_size=16, verbose=0)
    twin.fit(X, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(twin.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_mostly_zero_optimizer_buffers_are_stored_as_csr():
    model, _, _ = _trained()
    model.optimizer.get_state()[1][:] = 0  # the first moment of the first kernel
    tensors, meta = io.tensors_from_bytes(saving.model_to_bytes(model, include_optimizer=True))
    assert "optimizer.0.values" in tensors and "optimizer.0" not in tensors
    again = saving.model_from_bytes(saving.model_to_bytes(model, include_optimizer=True))
    for a, b in zip(again.optimizer.get_state(), model.optimizer.get_state()):
        np.testing.assert_array_equal(a, b)


def _rewritten(model, change):
    tensors, meta = io.tensors_from_bytes(saving.model_to_bytes(model, include_optimizer=True))
    tensors, meta = dict(tensors), dict(meta)
    change(tensors, meta)
    return io.tensors_to_bytes(tensors, meta)


def _set_state(meta, **changes):
    state = json.loads(meta["training_state"])
    state.update(changes)
    meta["training_state"] = json.dumps(state)


@pytest.mark.parametrize("change, message", [
    (lambda t, m: t.update({"optimizer.0": np.zeros((2, 2), np.float32)}), "shape"),
    (lambda t, m: t.pop("optimizer.3"), "numbered"),
    (lambda t, m: [t.pop(k) for k in ("optimizer.6", "optimizer.7")], "buffers for 3 parameters"),
    (lambda t, m: t.update({"optimizer.99": np.zeros(1, np.float32)}), "numbered"),
    (lambda t, m: t.update({"optimizer.0": np.full((3, 6), np.nan, np.float32)}), "non-finite"),
    (lambda t, m: m.pop("training_state"), "without a 'training_state'"),
    (lambda t, m: _set_state(m, iterations=-1), "iterations"),
    (lambda t, m: _set_state(m, rng={"bit_generator": "MT19937", "state": {"state": 1, "inc": 1},
                                     "has_uint32": 0, "uinteger": 0}), "PCG64"),
    (lambda t, m: _set_state(m, extra=1), "unknown"),
    (lambda t, m: m.pop("training"), "needs a built model"),
    (lambda t, m: m.update({"format_version": "1"}), "version 1"),
])
def test_a_bad_training_state_is_a_format_error(change, message):
    model, _, _ = _trained()
    with pytest.raises(fn.ModelFormatError, match=message):
        saving.model_from_bytes(_rewritten(model, change))


def test_files_leave_the_training_state_out_unless_asked(tmp_path):
    model, X, _ = _trained()
    model.save(tmp_path / "m.safetensors")
    tensors, meta = io.tensors_from_bytes(io.read_file(tmp_path / "m.safetensors"))
    assert "training_state" not in meta and not any(n.startswith("optimizer") for n in tensors)
    assert meta["format_version"] == "1"  # what fastnn before the training state reads
    loaded = fn.load_model(tmp_path / "m.safetensors")
    assert loaded.optimizer.iterations == 0 and loaded.optimizer.get_state()[1:] == []
    assert model.optimizer.iterations == 8 and len(model.optimizer.get_state()) == 9


def test_version_1_files_without_training_state_still_load():
    model, X, _ = _trained()

    def as_version_1(tensors, meta):
        for name in [n for n in tensors if n.startswith("optimizer.")]:
            del tensors[name]
        del meta["training_state"]
        assert meta["format_version"] == "2"
        meta["format_version"] = "1"

    old = saving.model_from_bytes(_rewritten(model, as_version_1))
    np.testing.assert_array_equal(old.predict(X), model.predict(X))
    assert old.optimizer.iterations == 0
