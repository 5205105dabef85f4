import csv
import sys

import numpy as np
import pytest

import fastnn
from fastnn import callbacks as cb, layers as L, optimizers as O


class StubModel:
    """What a callback may touch: weights, stop_training, an optimizer and save."""

    def __init__(self, optimizer=None):
        self.weights = [np.zeros(2)]
        self.stop_training = False
        self.optimizer = optimizer
        self.saved = []

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def set_weights(self, weights):
        self.weights = [np.array(w) for w in weights]

    def save(self, path):
        self.saved.append(path)


class Recorder(cb.Callback):
    """Copies of the model's weights at the end of every epoch and batch."""

    def __init__(self):
        self.epoch_weights = []
        self.batch_weights = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch_weights.append(self.model.get_weights())

    def on_batch_end(self, batch, logs=None):
        self.batch_weights.append(self.model.get_weights())


def _drive(callback, values, monitor="val_loss"):
    """Run the hooks over crafted logs, the model's weights filled with the epoch number;
    returns the model and the epoch at which it stopped."""
    model = StubModel()
    callback.set_model(model)
    callback.on_train_begin({})
    stopped = None
    for epoch, value in enumerate(values):
        model.weights = [np.full(2, float(epoch))]
        callback.on_epoch_begin(epoch, {})
        callback.on_epoch_end(epoch, {"loss": 0.0, "lr": 0.1, monitor: value})
        if model.stop_training:
            stopped = epoch
            break
    callback.on_train_end({})
    return model, stopped


def _same(a, b):
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


def _regression(n=48, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3))
    y = X @ np.array([[1.0], [-2.0], [0.5]]) + 0.1 * rng.standard_normal((n, 1))
    return X, y


def _classification(n=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    return X, y


def _regressor(seed=0, lr=0.05, **compile_kwargs):
    model = fastnn.Sequential([L.Dense(6, activation="tanh"), L.Dense(1)], input_dim=3,
                              dtype="float64", seed=seed)
    model.compile(O.SGD(lr=lr), "mse", **compile_kwargs)
    return model


# -- History -----------------------------------------------------------------------------------
def test_history_records_every_epoch():
    X, y = _classification()
    model = fastnn.Sequential([L.Dense(8, activation="relu"), L.Dense(3, activation="softmax")],
                              input_dim=4, seed=1)
    model.compile(O.Adam(lr=0.01), "sparse_categorical_crossentropy", metrics=["accuracy"])
    Xv, yv = X[:20], y[:20]
    history = model.fit(X, y, epochs=3, batch_size=16, validation_data=(Xv, yv), verbose=0)
    assert isinstance(history, cb.History) and model.history is history
    assert history.epoch == [0, 1, 2]
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"):
        assert len(history.history[key]) == 3, key
    assert history.history["lr"] == [0.01] * 3
    assert all(0 <= a <= 1 for a in history.history["accuracy"])
    # the validation entries are the model's evaluation at the end of the epoch
    final = model.evaluate(Xv, yv)
    assert history.history["val_loss"][-1] == pytest.approx(final["loss"], rel=1e-6)
    assert history.history["val_accuracy"][-1] == pytest.approx(final["accuracy"])
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_history_on_epoch_end_direct():
    h = cb.History()
    h.on_epoch_end(0, {"loss": 2.0})
    h.on_epoch_end(1, {"loss": 1.0, "val_loss": 1.5})
    assert h.epoch == [0, 1]
    assert h.history == {"loss": [2.0, 1.0], "val_loss": [1.5]}


# -- EarlyStopping -----------------------------------------------------------------------------
@pytest.mark.parametrize(("patience", "stop"), [(0, 2), (1, 2), (2, 3), (3, 4)])
def test_early_stopping_patience(patience, stop):
    # best at epoch 1; epochs 2, 3, 4 ... do not improve
    values = [1.0, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    es = cb.EarlyStopping(patience=patience)
    _, stopped = _drive(es, values)
    # stop once `patience` epochs in a row (at least one) brought no improvement
    assert stopped == stop
    assert es.stopped_epoch == stop


def test_early_stopping_keeps_going_while_improving():
    model, stopped = _drive(cb.EarlyStopping(patience=1), [5.0, 4.0, 3.0, 2.0, 1.0])
    assert stopped is None and not model.stop_training


def test_early_stopping_min_delta():
    # each epoch improves by 0.01 only: not enough with min_delta 0.05
    values = [1.0, 0.99, 0.98, 0.97, 0.96]
    es = cb.EarlyStopping(monitor="loss", min_delta=0.05, patience=2)
    _, stopped = _drive(es, values, monitor="loss")
    assert stopped == 2
    # the same sequence without min_delta never stops
    _, stopped = _drive(cb.EarlyStopping(monitor="loss", patience=2), values, monitor="loss")
    assert stopped is None
    # an improvement of more than min_delta resets the count
    values = [1.0, 0.99, 0.90, 0.89, 0.88]
    _, stopped = _drive(cb.EarlyStopping(monitor="loss", min_delta=0.05, patience=2), values,
                        monitor="loss")
    assert stopped == 4


@pytest.mark.parametrize(("monitor", "values", "stop"), [
    ("val_accuracy", [0.5, 0.6, 0.7, 0.65, 0.6], 3),   # auto: higher is better
    ("val_acc", [0.5, 0.4, 0.3], 1),
    ("val_loss", [0.5, 0.6, 0.7], 1),                  # auto: lower is better
    ("val_loss", [0.5, 0.4, 0.3, 0.35], 3),
])
def test_early_stopping_mode_auto(monitor, values, stop):
    _, stopped = _drive(cb.EarlyStopping(monitor=monitor, patience=1), values, monitor=monitor)
    assert stopped == stop


def test_early_stopping_explicit_mode():
    _, stopped = _drive(cb.EarlyStopping(monitor="score", mode="max", patience=1),
                        [1.0, 2.0, 1.5], monitor="score")
    assert stopped == 2
    _, stopped = _drive(cb.EarlyStopping(monitor="val_accuracy", mode="min", patience=1),
                        [0.5, 0.4, 0.6], monitor="val_accuracy")
    assert stopped == 2
    with pytest.raises(ValueError, match="mode"):
        cb.EarlyStopping(mode="best")


def test_early_stopping_restore_best_weights():
    values = [1.0, 0.3, 0.5, 0.2001, 0.25, 0.4, 0.6]
    es = cb.EarlyStopping(patience=2, restore_best_weights=True)
    model, stopped = _drive(es, values)
    assert stopped == 5
    np.testing.assert_array_equal(model.weights[0], [3.0, 3.0])  # epoch 3's weights
    # without restore the last weights stay
    model, _ = _drive(cb.EarlyStopping(patience=2), values)
    np.testing.assert_array_equal(model.weights[0], [5.0, 5.0])


def test_early_stopping_start_from_epoch():
    # the early epochs are ignored, even though they hold the best value
    values = [0.1, 0.2, 1.0, 0.9, 0.95, 0.96]
    es = cb.EarlyStopping(patience=2, start_from_epoch=2, restore_best_weights=True)
    model, stopped = _drive(es, values)
    assert stopped == 5
    np.testing.assert_array_equal(model.weights[0], [3.0, 3.0])
    # without start_from_epoch the run stops on epoch 2
    _, stopped = _drive(cb.EarlyStopping(patience=2), values)
    assert stopped == 2


def test_early_stopping_resets_between_runs():
    es = cb.EarlyStopping(patience=1)
    _, stopped = _drive(es, [0.1, 0.2])
    assert stopped == 1
    _, stopped = _drive(es, [5.0, 4.0, 3.0])
    assert stopped is None


def test_early_stopping_missing_monitor():
    es = cb.EarlyStopping(monitor="val_loss")
    es.set_model(StubModel())
    es.on_train_begin({})
    with pytest.raises(KeyError, match="val_loss.*loss"):
        es.on_epoch_end(0, {"loss": 1.0})


def test_early_stopping_in_fit_restores_best_weights():
    X, y = _regression()
    model = _regressor()
    rec = Recorder()
    # min_delta so large that nothing after the first epoch counts as an improvement
    es = cb.EarlyStopping(monitor="loss", min_delta=1e9, patience=2, restore_best_weights=True)
    history = model.fit(X, y, epochs=10, batch_size=16, callbacks=[rec, es], verbose=0)
    assert history.epoch == [0, 1, 2]
    assert es.stopped_epoch == 2
    assert not _same(rec.epoch_weights[0], rec.epoch_weights[2])
    assert _same(model.get_weights(), rec.epoch_weights[0])


# -- ReduceLROnPlateau -------------------------------------------------------------------------
def _lr_trace(callback, values, lr=1.0, monitor="val_loss"):
    model = StubModel(O.SGD(lr=lr))
    callback.set_model(model)
    callback.on_train_begin({})
    trace = []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {monitor: value})
        trace.append(model.optimizer.learning_rate)
    return trace


def test_reduce_lr_factor_and_patience():
    flat = [1.0] * 7
    trace = _lr_trace(cb.ReduceLROnPlateau(factor=0.5, patience=2), flat)
    # epoch 0 sets the best; each run of 2 epochs without improvement halves the rate
    assert trace == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.125]
    trace = _lr_trace(cb.ReduceLROnPlateau(factor=0.1, patience=1), [1.0, 0.5, 0.25, 0.3, 0.2])
    assert trace == pytest.approx([1.0, 1.0, 1.0, 0.1, 0.1])


def test_reduce_lr_min_delta_and_mode():
    # improvements of 0.001 are below min_delta
    trace = _lr_trace(cb.ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.01),
                      [1.0, 0.999, 0.998, 0.997])
    assert trace == [1.0, 1.0, 0.5, 0.5]
    trace = _lr_trace(cb.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=1),
                      [0.5, 0.6, 0.55, 0.7], monitor="val_accuracy")
    assert trace == [1.0, 1.0, 0.5, 0.5]


def test_reduce_lr_cooldown():
    trace = _lr_trace(cb.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2), [1.0] * 8)
    # a reduction, then two epochs of cooldown, then one bad epoch is enough again
    assert trace == [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.125]


def test_reduce_lr_cooldown_counts_epochs_not_bad_epochs():
    # improvements during the cooldown still use it up: the cooldown lasts `cooldown` epochs
    values = [1.0, 1.0, 0.9, 0.8, 0.8]
    trace = _lr_trace(cb.ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2), values)
    assert trace == [1.0, 0.5, 0.5, 0.5, 0.25]


def test_reduce_lr_min_lr():
    trace = _lr_trace(cb.ReduceLROnPlateau(factor=0.1, patience=1, min_lr=0.05), [1.0] * 5)
    assert trace == pytest.approx([1.0, 0.1, 0.05, 0.05, 0.05])
    # a rate already below min_lr is never raised
    trace = _lr_trace(cb.ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.1), [1.0] * 3,
                      lr=0.01)
    assert trace == [0.01, 0.01, 0.01]


def test_reduce_lr_argument_checks():
    for factor in (0.0, 1.0, 2.0):
        with pytest.raises(ValueError, match="factor"):
            cb.ReduceLROnPlateau(factor=factor)
    callback = cb.ReduceLROnPlateau(patience=0)
    model = StubModel(O.SGD(lr=fastnn.schedules.ExponentialDecay(0.1, 10, 0.5)))
    callback.set_model(model)
    callback.on_train_begin({})
    callback.on_epoch_end(0, {"val_loss": 1.0})
    with pytest.raises(TypeError, match="schedule"):
        callback.on_epoch_end(1, {"val_loss": 1.0})


def test_reduce_lr_in_fit():
    X, y = _regression()
    model = _regressor(lr=0.02)
    callback = cb.ReduceLROnPlateau(monitor="loss", min_delta=1e9, factor=0.5, patience=1)
    history = model.fit(X, y, epochs=4, batch_size=16, callbacks=[callback], verbose=0)
    # the logged rate is the one each epoch trained with
    assert history.history["lr"] == pytest.approx([0.02, 0.02, 0.01, 0.005])
    assert model.optimizer.learning_rate == pytest.approx(0.0025)


# -- ModelCheckpoint ---------------------------------------------------------------------------
def test_checkpoint_every_epoch(tmp_path):
    X, y = _regression()
    model = _regressor()
    rec = Recorder()
    path = tmp_path / "model-{epoch:02d}.fnn"
    model.fit(X, y, epochs=3, batch_size=16, callbacks=[rec, cb.ModelCheckpoint(path)],
              verbose=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model-01.fnn", "model-02.fnn", "model-03.fnn"]
    for epoch in range(3):
        loaded = fastnn.load_model(tmp_path / f"model-{epoch + 1:02d}.fnn")
        assert _same(loaded.get_weights(), rec.epoch_weights[epoch])
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_checkpoint_best_only_in_fit(tmp_path):
    X, y = _regression()
    model = _regressor(lr=0.3)
    rec = Recorder()
    path = tmp_path / "best.fnn"
    history = model.fit(X[:32], y[:32], epochs=6, batch_size=8, validation_data=(X[32:], y[32:]),
                        callbacks=[rec, cb.ModelCheckpoint(path, save_best_only=True)],
                        verbose=0)
    best = int(np.argmin(history.history["val_loss"]))
    loaded = fastnn.load_model(path)
    assert _same(loaded.get_weights(), rec.epoch_weights[best])
    assert loaded.evaluate(X[32:], y[32:])["loss"] == pytest.approx(
        history.history["val_loss"][best], rel=1e-12)


def test_checkpoint_best_only_saves_on_improvement():
    ckpt = cb.ModelCheckpoint("m-{epoch}-{val_loss:.1f}.fnn", save_best_only=True)
    model, _ = _drive(ckpt, [1.0, 0.5, 0.7, 0.4, 0.4, 0.9])
    assert model.saved == ["m-1-1.0.fnn", "m-2-0.5.fnn", "m-4-0.4.fnn"]
    ckpt = cb.ModelCheckpoint("m.fnn", monitor="val_accuracy", save_best_only=True)
    model, _ = _drive(ckpt, [0.5, 0.4, 0.6], monitor="val_accuracy")
    assert model.saved == ["m.fnn", "m.fnn"]
    ckpt = cb.ModelCheckpoint("m-{epoch}.fnn")
    model, _ = _drive(ckpt, [1.0, 2.0, 3.0])
    assert model.saved == ["m-1.fnn", "m-2.fnn", "m-3.fnn"]


# -- CSVLogger ---------------------------------------------------------------------------------
def test_csv_logger(tmp_path):
    X, y = _regression()
    model = _regressor()
    path = tmp_path / "log.csv"
    history = model.fit(X, y, epochs=3, batch_size=16, validation_split=0.25,
                        callbacks=[cb.CSVLogger(path)], verbose=0)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header == ["epoch", "loss", "lr", "time", "val_loss"]
    assert len(body) == 3
    assert [int(r[0]) for r in body] == [0, 1, 2]
    for key in ("loss", "val_loss", "lr"):
        column = [float(r[header.index(key)]) for r in body]
        assert column == history.history[key]
    # append adds rows under the same header
    model.fit(X, y, epochs=2, batch_size=16, validation_split=0.25,
              callbacks=[cb.CSVLogger(path, append=True)], verbose=0)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == header and len(rows) == 6
    assert sum(r == header for r in rows) == 1
    # without append the file starts over
    model.fit(X, y, epochs=1, batch_size=16, callbacks=[cb.CSVLogger(path)], verbose=0)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "lr", "time"] and len(rows) == 2


# -- TerminateOnNaN ----------------------------------------------------------------------------
def test_terminate_on_nan_with_huge_learning_rate():
    X, y = _regression(n=64)
    X = X * 10
    model = fastnn.Sequential([L.Dense(8, activation="relu"), L.Dense(1)], input_dim=3,
                              dtype="float32", seed=0)
    model.compile(O.SGD(lr=1e10), "mse")
    rec = Recorder()
    before = model.get_weights()
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(cb.NonFiniteLossError, match="loss became") as info:
            model.fit(X, y, epochs=5, batch_size=16, shuffle=False, callbacks=[rec], verbose=0)
    assert isinstance(info.value, FloatingPointError)
    assert isinstance(info.value.history, cb.History)
    assert info.value.history is model.history
    weights = model.get_weights()
    assert all(np.all(np.isfinite(w)) for w in weights)
    # The loss of the failing batch was computed on the weights of the update before it:
    # that update was taken back, so the model holds the last weights whose loss was finite
    # (the callbacks of the failing batch already see them), and the optimizer its state.
    assert len(rec.batch_weights) >= 2
    last_finite = rec.batch_weights[-3] if len(rec.batch_weights) >= 3 else before
    assert _same(weights, last_finite)
    assert _same(weights, rec.batch_weights[-1])
    assert not _same(weights, rec.batch_weights[-2])
    assert model.optimizer.iterations == len(rec.batch_weights) - 2


def test_terminate_on_nan_carries_history_of_finished_epochs():
    X, y = _regression(n=32)
    model = _regressor(lr=0.01)

    class Blowup(cb.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                self.model.optimizer.learning_rate = 1e200

    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(cb.NonFiniteLossError) as info:
            model.fit(X * 1e3, y, epochs=6, batch_size=32, callbacks=[Blowup()], verbose=0)
    history = info.value.history
    assert history.epoch[:2] == [0, 1]
    assert all(np.isfinite(v) for v in history.history["loss"])
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())


def _blowup_run(epochs, n_batches, blowup):
    """A float32 regression whose update on batch `blowup` of the first epoch turns the
    weights infinite while that batch's loss is still finite. The other batches carry a
    tiny sample weight, so their updates are small but real."""
    rng = np.random.default_rng(0)
    n = 16 * n_batches
    X = (rng.standard_normal((n, 4)) * 10).astype(np.float32)
    y = (X @ rng.standard_normal((4, 1)) + 50).astype(np.float32)
    weights = np.full(n, 1e-36)
    weights[16 * blowup:16 * (blowup + 1)] = 1.0
    model = fastnn.Sequential([L.Dense(1)], input_dim=4, dtype="float32", seed=0)
    model.compile(O.SGD(lr=1e37), "mse")
    rec = Recorder()
    start = model.get_weights()
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(cb.NonFiniteLossError, match="non-finite"):
            model.fit(X, y, epochs=epochs, batch_size=16, shuffle=False, sample_weight=weights,
                      callbacks=[rec], verbose=0)
    return model, [start] + rec.batch_weights


@pytest.mark.parametrize(("epochs", "n_batches", "blowup"), [(1, 2, 1), (2, 2, 1), (1, 3, 1)],
                         ids=["last-update", "next-epoch", "mid-epoch"])
def test_weights_stay_at_last_finite_values_when_an_update_overflows(epochs, n_batches,
                                                                      blowup):
    model, trail = _blowup_run(epochs, n_batches, blowup)
    # trail[k] holds the weights after k updates: update blowup + 1 overflowed, was undone
    # and stopped training before any callback saw it
    assert len(trail) == blowup + 1
    assert all(np.all(np.isfinite(w)) for w in trail[blowup])
    assert not _same(trail[blowup], trail[0])
    assert all(np.all(np.isfinite(w)) for w in model.get_weights())
    assert _same(model.get_weights(), trail[blowup])


# -- GradientMonitor ---------------------------------------------------------------------------
def test_gradient_monitor_flags_saturated_sigmoid():
    X, y = _regression()
    model = fastnn.Sequential([L.Dense(8, activation="sigmoid"), L.Dense(1)], input_dim=3,
                              dtype="float64", seed=0)
    model.compile(O.SGD(lr=0.01), "mse")
    kernel, bias = model.layers[0].get_weights()
    model.layers[0].set_weights([kernel * 1000, bias])
    before = model.get_weights()
    monitor = cb.GradientMonitor(X, y)
    monitor.set_model(model)
    monitor.on_epoch_end(0, {})
    assert len(monitor.reports) == 1 and monitor.reports[0][0] == 0
    flagged = {row["layer"]: row["flag"] for row in monitor.flagged}
    assert "saturated" in flagged[model.layers[0].name]
    assert model.layers[1].name not in flagged
    rows = monitor.reports[0][1].rows
    assert rows[0]["saturated_fraction"] > 0.9
    assert _same(model.get_weights(), before)


def test_gradient_monitor_flags_dead_relu_and_healthy_net():
    X, y = _regression()
    model = fastnn.Sequential([L.Dense(8, activation="relu"), L.Dense(1)], input_dim=3,
                              dtype="float64", seed=0)
    model.compile(O.SGD(lr=0.01), "mse")
    monitor = cb.GradientMonitor(X, y)
    monitor.set_model(model)
    monitor.on_epoch_end(0, {})
    assert monitor.flagged == []
    kernel, _ = model.layers[0].get_weights()
    model.layers[0].set_weights([kernel, np.full(8, -100.0)])
    monitor.on_epoch_end(1, {})
    row = monitor.reports[-1][1].rows[0]
    assert row["dead_fraction"] == 1.0
    assert "dead" in row["flag"].split(",")
    assert [r["layer"] for r in monitor.flagged] == [model.layers[0].name]


def test_gradient_monitor_every_in_fit(capsys):
    X, y = _regression()
    model = _regressor()
    monitor = cb.GradientMonitor(X, y, every=2, verbose=True)
    model.fit(X, y, epochs=5, batch_size=16, callbacks=[monitor], verbose=0)
    assert [epoch for epoch, _ in monitor.reports] == [1, 3]
    out = capsys.readouterr().out
    assert "epoch 2:" in out and "epoch 4:" in out and "grad_norm" in out
    assert monitor.reports[0][1].rows[0]["grad_norm"] > 0
    assert cb.GradientMonitor(X, y).flagged == []


class _FailsAtEnd(cb.Callback):
    def on_train_end(self, logs=None):
        raise RuntimeError("cleanup failed")


class _FailsAtEpochEnd(cb.Callback):
    def on_epoch_end(self, epoch, logs=None):
        raise KeyError("epoch hook failed")


class _RecordsEnd(cb.Callback):
    ended = False

    def on_train_end(self, logs=None):
        self.ended = True


def test_an_error_in_on_train_end_does_not_mask_the_error_that_ended_training():
    X, y = _regression()
    last = _RecordsEnd()

    def fit():
        _regressor().fit(X, y, epochs=2, verbose=0,
                         callbacks=[_FailsAtEpochEnd(), _FailsAtEnd(), last])

    if sys.version_info < (3, 11):  # no exception notes: the note is a warning
        with pytest.warns(RuntimeWarning, match=r"_FailsAtEnd\.on_train_end .*cleanup failed"):
            with pytest.raises(KeyError, match="epoch hook failed"):
                fit()
    else:
        with pytest.raises(KeyError, match="epoch hook failed") as info:
            fit()
        notes = getattr(info.value, "__notes__", [])
        assert any("_FailsAtEnd.on_train_end" in n and "cleanup failed" in n
                   for n in notes), notes
    assert last.ended  # every callback still ends


def test_an_error_in_on_train_end_after_a_finished_fit_propagates():
    X, y = _regression()
    last = _RecordsEnd()
    with pytest.raises(RuntimeError, match="cleanup failed"):
        _regressor().fit(X, y, epochs=1, verbose=0, callbacks=[_FailsAtEnd(), last])
    assert last.ended
