"""Callbacks for `Sequential.fit`.

The training loop calls, in order: ``on_train_begin(logs)``; per epoch
``on_epoch_begin(epoch, logs)``, ``on_batch_end(batch, logs)`` after each update (logs
hold the batch ``loss``), and ``on_epoch_end(epoch, logs)`` with the epoch's ``loss``,
metrics, ``val_*`` entries and ``lr``; finally ``on_train_end(logs)``, also when training
ends with an error (which then propagates; see `end_training`). A callback sees
the model as ``self.model`` and stops training by setting ``model.stop_training``.
"""
import csv
import math
import os
import warnings

import numpy as np

from fastnn._validation import check_choice, check_real

__all__ = ["Callback", "History", "EarlyStopping", "ReduceLROnPlateau", "ModelCheckpoint",
           "CSVLogger", "TerminateOnNaN", "GradientMonitor", "NonFiniteLossError"]


class NonFiniteLossError(FloatingPointError):
    """Training produced a loss that is NaN or infinite; the model keeps the last weights
    whose loss was finite. ``history`` holds what was recorded until then."""

    def __init__(self, message, history=None):
        super().__init__(message)
        self.history = history


class Callback:
    """Base class; every hook does nothing."""

    model = None

    def set_model(self, model):
        self.model = model

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


def end_training(callbacks, error=None):
    """Call ``on_train_end({})`` of every callback, each even when one before it raised.

    `error` is the exception that ended training, or None. With an error, that error is
    the one that propagates: a callback's failure is added to it as a note. Without
    one, the first failure is raised once every callback has run (later failures are
    noted on it).
    """
    first = None
    for callback in callbacks:
        try:
            callback.on_train_end({})
        except Exception as exc:
            if error is None and first is None:
                first = exc
                continue
            note = (f"while ending training, {type(callback).__name__}.on_train_end raised "
                    f"{type(exc).__name__}: {exc}")
            target = error if error is not None else first
            if hasattr(target, "add_note"):  # Python 3.11+
                target.add_note(note)
            else:  # pragma: no cover - Python 3.10
                warnings.warn(note, RuntimeWarning, stacklevel=2)
    if first is not None:
        raise first


class History(Callback):
    """Records the epoch logs: ``history[key]`` is a list with one value per epoch."""

    def __init__(self):
        self.history = {}
        self.epoch = []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


class _Monitor:
    """Which way is better for a monitored quantity, and by how much it must improve."""

    def __init__(self, monitor, mode, min_delta):
        check_choice(mode, "mode", ("auto", "min", "max"))
        if mode == "auto":
            mode = "max" if ("acc" in monitor or monitor.endswith("auc")) else "min"
        self.monitor = monitor
        self.sign = 1.0 if mode == "min" else -1.0
        self.min_delta = abs(min_delta)
        self.best = math.inf

    def value(self, logs):
        if self.monitor not in (logs or {}):
            raise KeyError(f"cannot monitor {self.monitor!r}: the logs hold "
                           f"{', '.join(sorted(logs or {})) or 'nothing'}")
        return logs[self.monitor]

    def improved(self, value):
        """True (and remembers it) when `value` beats the best by more than min_delta."""
        v = self.sign * value
        if v < self.best - self.min_delta:
            self.best = v
            return True
        return False


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than `min_delta` for `patience` epochs.

    With ``restore_best_weights`` the model gets back the weights of its best epoch when
    training stops. Epochs before `start_from_epoch` are not monitored.
    """

    def __init__(self, monitor="val_loss", min_delta=0, patience=0, mode="auto",
                 restore_best_weights=False, start_from_epoch=0):
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.patience = int(patience)
        self.restore_best_weights = restore_best_weights
        self.start_from_epoch = int(start_from_epoch)

    def on_train_begin(self, logs=None):
        self._monitor.best = math.inf
        self.wait = 0
        self.best_weights = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        if epoch < self.start_from_epoch:
            return
        if self._monitor.improved(self._monitor.value(logs)):
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(Callback):
    """Multiply the learning rate by `factor` when `monitor` stalls for `patience` epochs,
    then wait `cooldown` epochs; never below `min_lr`."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto", min_delta=1e-4,
                 cooldown=0, min_lr=0.0):
        self.factor = check_real(factor, "factor", 0.0, 1.0, closed="neither")
        self._monitor = _Monitor(monitor, mode, min_delta)
        self.patience = int(patience)
        self.cooldown = int(cooldown)
        self.min_lr = min_lr

    def on_train_begin(self, logs=None):
        self._monitor.best = math.inf
        self.wait = 0
        self.cooldown_left = 0

    def on_epoch_end(self, epoch, logs=None):
        improved = self._monitor.improved(self._monitor.value(logs))
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
        elif improved:
            self.wait = 0
        else:
            self.wait += 1
            if self.wait >= self.patience:
                opt = self.model.optimizer
                if opt.schedule is not None:
                    raise TypeError("ReduceLROnPlateau needs a float learning rate, "
                                    "not a schedule")
                lr = opt.learning_rate
                opt.learning_rate = min(lr, max(lr * self.factor, self.min_lr))
                self.wait = 0
                self.cooldown_left = self.cooldown


class ModelCheckpoint(Callback):
    """Save the model to `path` after each epoch (or only when `monitor` improves).

    `path` may contain ``{epoch}`` and log keys, e.g. ``"model-{epoch:02d}.fnn"``.
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, mode="auto"):
        self.path = os.fspath(path)
        self.save_best_only = save_best_only
        self._monitor = _Monitor(monitor, mode, 0)

    def on_train_begin(self, logs=None):
        self._monitor.best = math.inf

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only and not self._monitor.improved(self._monitor.value(logs)):
            return
        self.model.save(self.path.format(epoch=epoch + 1, **logs))


class CSVLogger(Callback):
    """Write one CSV row per epoch: the epoch number, then every log entry."""

    def __init__(self, path, append=False):
        self.path = os.fspath(path)
        self.append = append

    def on_train_begin(self, logs=None):
        self._keys = None
        self._file = open(self.path, "a" if self.append else "w", newline="")
        self._writer = csv.writer(self._file)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            if not (self.append and self._file.tell() > 0):
                self._writer.writerow(["epoch"] + self._keys)
        self._writer.writerow([epoch] + [logs.get(k, "") for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        self._file.close()


class TerminateOnNaN(Callback):
    """Stop with `NonFiniteLossError` as soon as a batch loss is NaN or infinite.

    `Sequential.fit` adds one unless it is given one; the model then keeps the last weights
    whose loss was finite.
    """

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            raise NonFiniteLossError(f"the loss became {loss} at batch {batch}; training stopped "
                                     f"and the model keeps the last weights whose loss was "
                                     f"finite")


class GradientMonitor(Callback):
    """Runs `Sequential.gradient_report` on (X, y) every `every` epochs and keeps the rows.

    The flagged layers of the newest report are in ``flagged``; with ``verbose`` the report
    is printed.
    """

    def __init__(self, X, y, every=1, verbose=False):
        self.X, self.y = X, y
        self.every = int(every)
        self.verbose = verbose
        self.reports = []

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        report = self.model.gradient_report(self.X, self.y)
        self.reports.append((epoch, report))
        if self.verbose:
            print(f"epoch {epoch + 1}:")
            print(report)

    @property
    def flagged(self):
        if not self.reports:
            return []
        return [row for row in self.reports[-1][1].rows if row["flag"]]
