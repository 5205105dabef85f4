"""The Sequential model: build, compile, fit, evaluate, predict and weights.

Saving and loading live in `fastnn.saving`, gradient diagnostics in `fastnn.diagnostics`.
"""
import math
import re
import time

import numpy as np

from fastnn import callbacks as cb
from fastnn import augment as augment_mod, labels, layers as layers_mod, losses, optimizers
from fastnn import regularizers
from fastnn._kernels._checks import as_input
from fastnn._kernels._threads import get_num_threads
from fastnn._kernels.dense import DenseChain
from fastnn._kernels.train import DenseTrainer
from fastnn._table import format_table
from fastnn._validation import check_int, check_real

__all__ = ["Sequential"]


class Sequential:
    """A stack of layers trained with a loss and an optimizer.

    Parameters
    ----------
    layers : list of `fastnn.layers.Layer`
    input_dim : int, optional
        Number of input features; without it the model is built by the first `fit`.
    dtype : "float32" or "float64"
        The dtype of every weight and computation; inputs are converted to it.
    seed : int, optional
        Fixes initialisation, dropout, noise and shuffling: the same seed and thread count
        give the same trained weights.
    """

    def __init__(self, layers=None, input_dim=None, dtype="float32", seed=None,
                 name="sequential"):
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype}")
        self.dtype = dtype
        self.seed = seed
        self.name = name
        self._rng = np.random.default_rng(seed)
        self.layers = []
        self.input_dim = None
        self.optimizer = None
        self.loss = None
        self.metrics = []
        self.stop_training = False
        self._classes = None
        #: how a CSV table becomes this model's input (see `fastnn.tables`), or None
        self.table = None
        self._chain, self._chain_layers = None, []  # see _wire
        self._plain, self._trainer = False, None
        for layer in layers or []:
            self.add(layer)
        if input_dim is not None:
            self.build(input_dim)

    # -- structure ---------------------------------------------------------
    @property
    def built(self):
        return self.input_dim is not None

    @property
    def output_dim(self):
        return self.layers[-1].output_dim if self.built else None

    @property
    def classes(self):
        """The class labels (1-D array; entry i names output unit i, and one sigmoid unit
        has two: negative, positive), or None.

        `fit` with a classification loss sets them from its labels when they are not set;
        set them yourself (a list of unique strings, booleans or numbers) to fix the order.
        """
        return self._classes

    @classes.setter
    def classes(self, value):
        self._classes = None if value is None else labels.check_classes(value, self.output_dim)

    def add(self, layer):
        """Append a layer (built at once when the model already is)."""
        if not isinstance(layer, layers_mod.Layer):
            raise TypeError(f"expected a fastnn layer, got {type(layer).__name__}")
        if layer.built:
            raise ValueError(f"layer {layer.name!r} is already part of a built model")
        base = re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", type(layer).__name__).lower()
        if layer.name is None:
            taken = {l.name for l in self.layers}
            k, name = 0, base
            while name in taken:
                k += 1
                name = f"{base}_{k}"
            layer.name = name
        self.layers.append(layer)
        if self.built:
            layer.build(self.layers[-2].output_dim if len(self.layers) > 1 else self.input_dim,
                        self.dtype, self._rng)
        self._wire()

    def build(self, input_dim, weights=None):
        """Make every layer's weights for inputs of width `input_dim`.

        `weights`, one list per layer as `fastnn.layers.Layer.build` takes them, gives the
        weights instead of the initializers (used by the loader).
        """
        input_dim = check_int(input_dim, "input_dim", low=1)
        if not self.layers:
            raise ValueError("the model has no layers")
        if self.built:
            if input_dim != self.input_dim:
                raise ValueError(f"the model is built for {self.input_dim} features, "
                                 f"not {input_dim}")
            return
        dim = int(input_dim)
        for layer, given in zip(self.layers, weights or [None] * len(self.layers)):
            dim = layer.build(dim, self.dtype, self._rng, given)
        self.input_dim = int(input_dim)
        self._wire()
        if self._classes is not None:
            labels.check_classes(self._classes, self.output_dim)

    def _wire(self):
        """Derive the flat parameter lists and the fused-loss choice from the layers."""
        self._params = [p for l in self.layers if l.built for p in l.params]
        self._grads = [g for l in self.layers if l.built for g in l.grads]
        first = [i for i, l in enumerate(self.layers) if l.params]
        self._first_trainable = first[0] if first else len(self.layers)
        last = self.layers[-1] if self.layers else None
        self._fused = bool(
            self.loss is not None and isinstance(last, layers_mod.Dense)
            and not isinstance(last, layers_mod.Maxout)
            and self.loss.logits_activation is not None
            and last.activation.kernel == self.loss.logits_activation)
        for layer in self.layers:
            if isinstance(layer, layers_mod.Dense):
                layer.keep_preact = self._fused and layer is last
        # Inference in one compiled call when every layer is a plain Dense layer. The
        # chain reads the layers' arrays, as _params holds them: weights are written in
        # place (set_weights, updates, pruning), never replaced.
        self._chain_layers = list(self.layers)
        plain = self.built and all(type(l) is layers_mod.Dense for l in self.layers)
        self._chain = DenseChain([l.inference_step() for l in self.layers]) if plain else None
        # Training steps in compiled calls on the same arrays, made on the first step that
        # may take them (`_compiled_l2`).
        self._plain, self._trainer = plain, None

    def compile(self, optimizer="adam", loss=None, metrics=None, clipnorm=None, clipvalue=None,
                global_clipnorm=None):
        """Set the optimizer, loss and metrics.

        `clipnorm`, `clipvalue` and `global_clipnorm` (Keras's meaning) are passed on to the
        optimizer, whose own clipping they replace when one is given.
        """
        if loss is None:
            raise ValueError(f"compile needs a loss; valid names: "
                             f"{', '.join(sorted(k for k in losses._TABLE if '_' in k))}")
        optimizer = optimizers.get(optimizer)
        if (clipnorm, clipvalue, global_clipnorm) != (None, None, None):
            optimizer.set_clipping(clipvalue=clipvalue, clipnorm=clipnorm,
                                   global_clipnorm=global_clipnorm)
        self.optimizer = optimizer
        self.loss = losses.get(loss)
        self._metric_specs = list(metrics or [])
        self.metrics = [losses.get_metric(m) for m in self._metric_specs]
        self._wire()

    def get_compile_config(self):
        """What `compile` was given, as a dict that `compile_from_config` takes (with a
        fresh optimizer and loss), or None before `compile`: ``optimizer`` and ``loss``
        as serialized configs, ``metrics`` as given."""
        if self.loss is None:
            return None
        return {"optimizer": optimizers.serialize(self.optimizer),
                "loss": losses.serialize(self.loss), "metrics": list(self._metric_specs)}

    def compile_from_config(self, config):
        """`compile` with a `get_compile_config` dict: a new optimizer (in its initial
        state) and loss made from their configs. A ``clip`` entry (the clipping arguments
        of `compile`, as older model files hold them) is passed on."""
        self.compile(optimizers.get(config["optimizer"]), losses.get(config["loss"]),
                     config.get("metrics"), **config.get("clip", {}))

    # -- input checks ------------------------------------------------------
    def check_input(self, X, name="X", allow_empty=False):
        """`X` as `fit`, `evaluate` and `predict` take it: converted by the input rule
        (`fastnn._kernels._checks.as_input`) and of the width the model is built for.

        Empty `X` raises ValueError unless `allow_empty`; so do NaN, infinity, a 1-D `X`
        and a width other than `input_dim`."""
        return self._check_width(as_input(X, self.dtype, name, allow_empty), name)

    def _check_width(self, X, name="X"):
        """X (already converted) unless its width differs from the built input width."""
        if self.built and X.shape[1] != self.input_dim:
            first = self.layers[0]
            raise ValueError(f"layer {first.name!r} ({type(first).__name__}) expects inputs of "
                             f"shape (n, {self.input_dim}), but {name} has shape {X.shape}")
        return X

    def _check_y(self, y, n, name="y", learn=False):
        """y as the targets the loss reads; class labels are encoded by `classes`, which
        ``learn`` sets from them when they are not set yet."""
        y = np.asarray(y)
        if y.shape[:1] != (n,):
            raise ValueError(f"X has {n} samples but {name} has shape {y.shape}")
        form = self.loss.label_form
        if form is not None and y.shape[1:] in ((), (1,)) and (form != "binary" or (
                self.output_dim == 1 and not labels.are_soft(y))):
            y = y.reshape(n)
            if self._classes is not None:
                index = labels.encode(y, self._classes, name)
            else:
                classes, index = labels.infer(y, self.output_dim, name)
                if learn:
                    self._classes = classes
            return labels.as_targets(index, form, self.output_dim, self.dtype)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{name} has dtype {y.dtype}; expected numbers")
        if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinite values")
        y = self.loss.check_targets(y, self.output_dim)
        if y.dtype.kind == "f" or not isinstance(self.loss, losses.SparseCategoricalCrossentropy):
            y = np.ascontiguousarray(y, dtype=self.dtype)
        return y

    def require_built(self, what):
        """RuntimeError, saying that `what` needs it, unless the model is built."""
        if not self.built:
            raise RuntimeError(f"the model is not built: call build(input_dim) or fit before "
                               f"{what}")

    def require_compiled(self, what):
        """RuntimeError, saying that `what` needs it, unless the model is compiled."""
        if self.loss is None:
            raise RuntimeError(f"the model is not compiled: call compile before {what}")

    # -- computation -------------------------------------------------------
    def _forward(self, X, training):
        for layer in self.layers:
            X = layer.forward(X, training=training)
        return X

    def _loss_and_grad(self, yb, out, wb, logits=None):
        """(loss, its gradient): of the last layer's pre-activation (`logits`, by default
        the last layer's own) when the loss is fused with its activation, else of `out`."""
        if self._fused:
            return self.loss.from_logits(
                yb, self.layers[-1]._Z if logits is None else logits, out, wb)
        return self.loss(yb, out, wb)

    def _backward(self, dY):
        last = len(self.layers) - 1
        dY = np.ascontiguousarray(dY, dtype=self.dtype)  # the loss's gradient, as layers take it
        for i in range(last, self._first_trainable - 1, -1):
            layer = self.layers[i]
            need_dX = i > self._first_trainable
            if i == last and self._fused:
                dY = layer.backward(dY, need_dX, linear=True)
            else:
                dY = layer.backward(dY, need_dX)

    def _penalty(self):
        return sum(layer.penalty() for layer in self.layers)

    def _trainer_layers(self):
        """What `DenseTrainer` takes of each (plain Dense) layer, with the places of its
        parameters in `_params`."""
        steps, at = [], 0
        for layer in self.layers:
            bias = layer.bias if layer.use_bias else None
            steps.append((layer.kernel, bias, layer.grads[0],
                          layer.grads[1] if layer.use_bias else None, layer._act,
                          layer._alpha, layer._needs_preact or layer.keep_preact, at,
                          at + 1 if layer.use_bias else -1))
            at += len(layer.params)
        return steps

    def _compiled_l2(self):
        """Per layer the L2 coefficient of its kernel when a training step can run as
        `DenseTrainer` calls: plain Dense layers without masks, constraints or penalties
        other than L2 on the kernels, and an optimizer of fastnn's own step without
        gradient clipping (which needs every gradient before any update). Else None."""
        opt = self.optimizer
        if not self._plain or self.layers != self._chain_layers or opt.clipping is not None \
                or type(opt).step is not optimizers.Optimizer.step:
            return None
        l2 = []
        for layer in self.layers:
            reg = layer.kernel_regularizer
            if layer.kernel_mask is not None or layer.kernel_constraint is not None \
                    or layer.bias_regularizer is not None or (reg is not None and (
                        type(reg).add_gradient is not regularizers.L1L2.add_gradient
                        or reg.l1)):
                return None
            l2.append(0.0 if reg is None else reg.l2)
        if self._trainer is None:
            self._trainer = DenseTrainer(self._trainer_layers())
        return l2

    def _compiled_loss(self):
        """How `DenseTrainer.train_step` takes the targets ("labels" or "targets") when
        the loss is softmax cross-entropy fused with the last layer, else None."""
        if not self._fused:
            return None
        from_logits = type(self.loss).from_logits
        if from_logits is losses.SparseCategoricalCrossentropy.from_logits:
            return "labels"
        if from_logits is losses.CategoricalCrossentropy.from_logits:
            return "targets"
        return None

    def _train_step(self, X, yb, wb, rows=None, buffer=None):
        """One update on the batch X, or with `rows` on the rows `rows` of X (gathered into
        `buffer` where the step needs them as an array); returns the batch loss and output.

        A non-finite loss takes back the previous update (the optimizer's `undo`), so the
        model keeps the last weights whose loss was finite; an update that would make a
        weight non-finite is undone by the optimizer and raises
        `fastnn.callbacks.NonFiniteLossError`.
        """
        l2 = self._compiled_l2()
        n_threads = get_num_threads()
        form = None if l2 is None else self._compiled_loss()
        if form is not None:  # the whole step in one compiled call
            plan, hyper, fresh_from = self.optimizer.begin_step(self._params, self._grads)
            try:
                value, updated, out = self._trainer.train_step(
                    X, rows, yb if form == "labels" else None,
                    yb if form == "targets" else None, wb, self._penalty(), plan, hyper,
                    fresh_from, l2, n_threads)
            except BaseException:
                self.optimizer.cancel_step()
                raise
            if updated is None:  # the loss is not finite: nothing was updated
                self.optimizer.cancel_step()
                self.optimizer.undo()
                return value, out
            finite = self.optimizer.end_step(updated)
        else:
            if rows is not None:
                X = np.take(X, rows, axis=0, out=buffer[:len(rows)], mode="clip")
            if l2 is not None:
                out, logits = self._trainer.forward(X, n_threads)
            else:
                out, logits = self._forward(X, training=True), None
            with np.errstate(over="ignore", invalid="ignore"):
                value, grad = self._loss_and_grad(yb, out, wb, logits)
                value += self._penalty()
            if not math.isfinite(value):
                self.optimizer.undo()
                return value, out
            if l2 is not None:
                plan, hyper, fresh_from = self.optimizer.begin_step(self._params, self._grads)
                finite = self.optimizer.end_step(self._trainer.backward_step(
                    np.ascontiguousarray(grad, dtype=self.dtype), self._fused, plan, hyper,
                    fresh_from, l2, n_threads))
            else:
                self._backward(grad)
                finite = self.optimizer.step(self._params, self._grads)
        if not finite:
            raise cb.NonFiniteLossError("an update made the weights non-finite (the learning "
                                        "rate is likely too large); training stopped, the "
                                        "update was undone and the optimizer state with it")
        if l2 is None:
            for layer in self.layers:
                layer.apply_constraints()
        return value, out

    def _sample_weights(self, y, n, sample_weight, class_weight):
        """Per-sample weights from `sample_weight` times `class_weight` (None for none).

        Weights must be finite and non-negative, and not all zero; class_weight keys must
        be classes of the model (its labels, or output indices when it has none).
        """
        w = None
        if sample_weight is not None:
            w = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
            if w.shape != (n,):
                raise ValueError(f"sample_weight has shape {w.shape}; expected ({n},)")
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError("sample_weight must be finite and non-negative")
        if class_weight is not None:
            index = (y if y.ndim == 1 else (np.argmax(y, axis=1) if y.shape[1] > 1
                                            else y[:, 0] > 0.5)).astype(np.int64)
            w = self._class_weights(class_weight)[index] * (1.0 if w is None else w)
        if w is not None and not np.any(w > 0):
            raise ValueError("the sample weights (sample_weight times class_weight) are all "
                             "zero: nothing would be learned")
        return w

    def _class_weights(self, class_weight):
        """A weight per output class from the `class_weight` mapping, checked key by key."""
        if not isinstance(class_weight, dict):
            raise TypeError(f"class_weight must be a dict from class to weight, got "
                            f"{type(class_weight).__name__}")
        k = labels.n_classes(self.output_dim)
        cw = np.ones(k)
        for key, weight in class_weight.items():
            cw[self._class_index(key, k)] = check_real(
                weight, f"class_weight[{key!r}]", low=0, high=None)
        return cw

    def _class_index(self, key, k):
        """The output index of class `key`; ValueError naming the key when it is none."""
        classes = self._classes
        if classes is None:
            if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)) \
                    and 0 <= key < k:
                return int(key)
            raise ValueError(f"class_weight key {key!r} is not a class: the model's output "
                             f"has classes 0 to {k - 1}")
        if isinstance(key, (bool, np.bool_)) == (classes.dtype.kind == "b"):
            try:
                return int(labels.encode([key], classes, "class_weight")[0])
            except (TypeError, ValueError):
                pass
        raise ValueError(f"class_weight key {key!r} is not one of the model's classes "
                         f"{classes.tolist()}")

    def fit(self, X, y, epochs=1, batch_size=32, validation_split=0.0, validation_data=None,
            shuffle=True, callbacks=None, verbose=1, sample_weight=None, class_weight=None,
            augment=None):
        """Train for `epochs` passes over (X, y); returns a `fastnn.callbacks.History`.

        ``augment`` (a transform of `fastnn.augment`, or a list of them) transforms each
        training batch on the fly; validation data are never augmented.

        ``validation_split`` holds out the last fraction of the samples (before shuffling),
        as Keras does. A non-finite loss stops training with
        `fastnn.callbacks.NonFiniteLossError`: the model keeps the last weights whose loss
        was finite and the optimizer the state that goes with them, so `fit` can continue
        (after `compile`, or with a lower learning rate); the error's ``history`` holds the
        finished epochs and the batches of the failing epoch that finished before it.
        """
        self.require_compiled("fit")
        batch_size = check_int(batch_size, "batch_size", low=1)
        epochs = check_int(epochs, "epochs", low=0)
        validation_split = check_real(validation_split, "validation_split", 0.0, 1.0,
                                      closed="left")
        X = as_input(X, self.dtype, allow_empty=False)
        if np.shape(y)[:1] != (X.shape[0],):
            raise ValueError(f"X has {X.shape[0]} samples but y has shape {np.shape(y)}")
        if not self.built:
            self.build(X.shape[1])
        X = self._check_width(X)
        augment = augment_mod.get(augment)
        if augment is not None:  # a wrong image shape fails here, before any training
            augment(X[:1].copy(), np.random.default_rng(0))
        y = self._check_y(y, X.shape[0], learn=True)
        w = self._sample_weights(y, X.shape[0], sample_weight, class_weight)
        if validation_data is None and validation_split > 0:
            n_val = int(round(X.shape[0] * validation_split))
            if n_val < 1 or n_val >= X.shape[0]:
                raise ValueError(f"validation_split={validation_split} leaves no samples for "
                                 f"{'validation' if n_val < 1 else 'training'}")
            cut = X.shape[0] - n_val
            validation_data = (X[cut:], y[cut:], None if w is None else w[cut:])
            X, y, w = X[:cut], y[:cut], (None if w is None else w[:cut])
        elif validation_data is not None:
            validation_data = self._check_validation(validation_data)

        history = cb.History()
        cbs = [history] + list(callbacks or [])
        if not any(isinstance(c, cb.TerminateOnNaN) for c in cbs):
            cbs.append(cb.TerminateOnNaN())
        for c in cbs:
            c.set_model(self)
        self.history = history
        self.stop_training = False
        n = X.shape[0]
        batch_size = min(int(batch_size), n)
        Xb_full = np.empty((batch_size, X.shape[1]), dtype=self.dtype)
        for c in cbs:
            c.on_train_begin({})
        self.optimizer.forget_step()  # a non-finite loss takes back steps of this fit only
        try:
            for epoch in range(epochs):
                self.optimizer.epoch = epoch
                for c in cbs:
                    c.on_epoch_begin(epoch, {})
                logs = self._run_epoch(X, y, w, batch_size, Xb_full, shuffle, cbs, epoch,
                                       epochs, verbose, augment)
                if validation_data is not None:
                    val = self._evaluate(*validation_data, batch_size=None)
                    logs.update({f"val_{k}": v for k, v in val.items()})
                logs["lr"] = self.optimizer.learning_rate
                if verbose:
                    print(self._epoch_line(epoch, epochs, logs), flush=True)
                for c in cbs:
                    c.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
        except BaseException as exc:
            if isinstance(exc, cb.NonFiniteLossError):
                if getattr(exc, "epoch_logs", None):
                    history.on_epoch_end(epoch, exc.epoch_logs)
                exc.history = history
            cb.end_training(cbs, exc)  # exc propagates, never masked by a callback's error
            raise
        cb.end_training(cbs)
        return history

    def _check_validation(self, data):
        """(X_val, y_val, weights or None), checked once for the whole of `fit`."""
        if not isinstance(data, (tuple, list)) or len(data) not in (2, 3):
            raise ValueError("validation_data must be (X_val, y_val) or (X_val, y_val, weights)")
        Xv = self.check_input(data[0], "X_val")
        yv = self._check_y(data[1], Xv.shape[0], "y_val")
        wv = data[2] if len(data) > 2 else None
        return Xv, yv, self._sample_weights(yv, Xv.shape[0], wv, None)

    def _run_epoch(self, X, y, w, batch_size, Xb_full, shuffle, cbs, epoch, epochs, verbose,
                   augment=None):
        n = X.shape[0]
        order = self._rng.permutation(n) if shuffle else np.arange(n)
        n_batches = (n + batch_size - 1) // batch_size
        bar = None
        if verbose == 1:
            from tqdm import tqdm
            # disable=None: no bar (and no carriage-return fragments) unless on a terminal
            bar = tqdm(total=n, desc=f"Epoch {epoch + 1}/{epochs}", unit="sample", leave=False,
                       disable=None)
        total_loss = 0.0
        metric_sums = [0.0] * len(self.metrics)  # each metric's stats, summed over batches
        batch_cbs = [c for c in cbs if type(c).on_batch_end is not cb.Callback.on_batch_end]
        start = time.perf_counter()
        seen = 0
        try:
            for b in range(n_batches):
                idx = order[b * batch_size:(b + 1) * batch_size]
                yb = y[idx]
                wb = None if w is None else w[idx]
                if augment is None:  # the step gathers the rows itself
                    value, out = self._train_step(X, yb, wb, rows=idx, buffer=Xb_full)
                else:
                    Xb = np.take(X, idx, axis=0, out=Xb_full[:len(idx)], mode="clip")
                    Xb = np.ascontiguousarray(augment(Xb, self._rng), dtype=self.dtype)
                    value, out = self._train_step(Xb, yb, wb)
                for c in batch_cbs:
                    c.on_batch_end(b, {"loss": value})
                total_loss += value * len(idx)
                for k, (_, metric) in enumerate(self.metrics):
                    metric_sums[k] = metric_sums[k] + metric.stats(yb, out)
                seen += len(idx)
                if bar is not None:
                    bar.update(len(idx))
                    bar.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
        except cb.NonFiniteLossError as exc:
            # The batches that finished before the failure, for the history the error carries.
            if seen:
                exc.epoch_logs = self._epoch_logs(total_loss, metric_sums, seen, start)
            raise
        finally:
            if bar is not None:
                bar.close()
        return self._epoch_logs(total_loss, metric_sums, n, start)

    def _epoch_logs(self, total_loss, metric_sums, seen, start):
        logs = {"loss": total_loss / seen}
        for (name, metric), stats in zip(self.metrics, metric_sums):
            logs[name] = metric.result(stats)
        logs["time"] = time.perf_counter() - start
        return logs

    @staticmethod
    def _epoch_line(epoch, epochs, logs):
        parts = [f"{k}: {v:.4g}" for k, v in logs.items() if k != "time"]
        return f"Epoch {epoch + 1}/{epochs} - {logs['time']:.2f}s - " + " - ".join(parts)

    def predict(self, X, batch_size=None):
        """Outputs for X of shape (n, input_dim), as an array of shape (n, output_dim)."""
        self.require_built("predict")
        Y = self._chained(X) if batch_size is None else None  # X as given, when ready
        if Y is None:
            Y = self._predict(self.check_input(X, allow_empty=True), batch_size)
        return Y

    def predict_classes(self, X, batch_size=None):
        """The label of each row of X: the class of the largest output, or for one sigmoid
        unit the positive class where the output exceeds 0.5; class indices when
        `classes` is None."""
        return labels.decode(self.predict(X, batch_size), self._classes)

    def _predict(self, X, batch_size):
        """`predict` for X already checked."""
        if batch_size is None or batch_size >= X.shape[0]:
            return self._infer(X)
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        return np.concatenate([self._infer(X[i:i + batch_size])
                               for i in range(0, X.shape[0], batch_size)])

    def _infer(self, X):
        """The outputs for X already checked, in one call where the layers allow it."""
        Y = self._chained(X)
        return np.ascontiguousarray(self._forward(X, training=False)) if Y is None else Y

    def _chained(self, X):
        """The outputs for X in one compiled call (`fastnn._kernels.dense.DenseChain`), or
        None unless every layer is a Dense layer and X is ready as it is: a C-ordered 2-D
        finite array of the model's dtype and input width."""
        if self._chain is None or self.layers != self._chain_layers:
            return None
        return self._chain.predict(X, get_num_threads())

    def evaluate(self, X, y, batch_size=None, sample_weight=None, verbose=0):
        """The loss (with regularization penalties) and metrics on (X, y), as a dict."""
        self.require_compiled("evaluate")
        self.require_built("evaluate")
        X = self.check_input(X)
        y = self._check_y(y, X.shape[0])
        result = self._evaluate(X, y, self._sample_weights(y, X.shape[0], sample_weight, None),
                                batch_size)
        if verbose:
            print(" - ".join(f"{k}: {v:.4g}" for k, v in result.items()))
        return result

    def _evaluate(self, X, y, w, batch_size):
        """`evaluate` on arrays already checked and encoded."""
        if self._fused:
            last = self.layers[-1]
            hidden = X
            for layer in self.layers[:-1]:
                hidden = layer.forward(hidden, training=False)
            out, logits = last.forward_with_logits(hidden)
            value, _ = self.loss.from_logits(y, logits, out, w)
        else:
            out = self._predict(X, batch_size)
            value, _ = self.loss(y, out, w)
        result = {"loss": value + self._penalty()}
        for name, fn in self.metrics:
            result[name] = fn(y, out)
        return result

    # -- weights -----------------------------------------------------------
    def get_weights(self):
        """Copies of every layer's weights, in Keras order (kernel, bias, then others)."""
        return [w for layer in self.layers for w in layer.get_weights()]

    def set_weights(self, weights):
        self.require_built("set_weights")
        weights = list(weights)
        expected = sum(len(layer.weights) for layer in self.layers)
        if len(weights) != expected:
            raise ValueError(f"the model takes {expected} arrays, got {len(weights)}")
        chunks, k = [], 0
        for layer in self.layers:  # check every layer's arrays before changing any
            n = len(layer.weights)
            chunks.append(layer.check_weights(weights[k:k + n]))
            k += n
        if self.optimizer is not None:
            self.optimizer.forget_step()  # the step before these weights is not theirs to undo
        for layer, chunk in zip(self.layers, chunks):
            layer.set_weights(chunk)

    def count_params(self):
        self.require_built("count_params")
        return sum(layer.count_params() for layer in self.layers)

    def summary(self, print_fn=print):
        """Print (and return) a table: layer, output shape, parameters, nonzeros."""
        self.require_built("summary")
        rows = [("Layer (type)", "Output shape", "Params", "Nonzeros")]
        for layer in self.layers:
            nnz = sum(int(np.count_nonzero(w)) for w in layer.weights)
            rows.append((f"{layer.name} ({type(layer).__name__})", f"(None, {layer.output_dim})",
                         str(layer.count_params()), str(nnz)))
        header, *body = format_table(rows).splitlines()
        line = "-" * max(len(r) for r in [header, *body])
        total = self.count_params()
        nnz = sum(int(np.count_nonzero(w)) for layer in self.layers for w in layer.weights)
        text = "\n".join([line, header, line, *body, line,
                          f"Total params: {total}  Nonzeros: {nnz}  dtype: {self.dtype}"])
        print_fn(text)
        return text

    # -- diagnostics -------------------------------------------------------
    def gradient_report(self, X, y):
        """Gradient health per layer on (X, y), without changing the model
        (see `fastnn.diagnostics.gradient_report`)."""
        from fastnn.diagnostics import gradient_report

        return gradient_report(self, X, y)

    def copy(self):
        """An independent model with the same layers, weights, masks and compile settings."""
        self.require_built("copy")
        clone = Sequential([layers_mod.get({"class_name": type(l).__name__,
                                            "config": l.get_config()}) for l in self.layers],
                           input_dim=self.input_dim, dtype=self.dtype, seed=self.seed,
                           name=self.name)
        clone.set_weights(self.get_weights())
        clone.classes = self._classes
        clone.table = self.table
        for src, dst in zip(self.layers, clone.layers):
            mask = getattr(src, "kernel_mask", None)
            if mask is not None:
                dst.kernel_mask = mask.copy()
        if self.loss is not None:
            clone.compile_from_config(self.get_compile_config())
        return clone

    # -- saving ------------------------------------------------------------
    def get_config(self):
        return {"name": self.name, "input_dim": self.input_dim, "dtype": self.dtype.name,
                "seed": self.seed,
                "layers": [{"class_name": type(l).__name__, "config": l.get_config()}
                           for l in self.layers]}

    def save(self, path, include_optimizer=False):
        """Write the model to one safetensors file, atomically (see `fastnn.saving`);
        with `include_optimizer`, also the training state, so that training resumes
        exactly after `fastnn.load_model`."""
        from fastnn.saving import save_model

        save_model(self, path, include_optimizer)

    def __getstate__(self):
        # Pickles carry the model file's bytes only (training state included), read back
        # by the validated loader.
        from fastnn.saving import model_to_bytes

        return {"fastnn-model": model_to_bytes(self, include_optimizer=True)}

    def __setstate__(self, state):
        from fastnn.saving import model_from_bytes

        self.__dict__.update(model_from_bytes(state["fastnn-model"]).__dict__)
