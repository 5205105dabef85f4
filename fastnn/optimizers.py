"""Optimizers with torch.optim's update rules, defaults and argument names, and gradient clipping.

An optimizer updates a list of parameter arrays in place from a list of gradient
arrays, one fused kernel call per parameter. Its state (momentum buffers, moment
estimates) is made on the first step, one set of buffers per parameter position,
in the parameter's shape and dtype, and reused afterwards.

The optimizer owns everything about an update, as in Keras: gradient clipping
(`clipvalue`, `clipnorm`, `global_clipnorm`, constructor arguments of every optimizer),
the step count, and the undo of a step. The kernel keeps the parameter values it
overwrites (a block at a time) and writes the new state into a second set of buffers,
which then takes the first one's place, so the state before the step stays whole; it
reports whether the new parameters are finite. A step that makes one non-finite is
undone at once, and `undo` takes back the last step on request (training does so when
the loss of its result is not finite).

The learning rate is a float or a schedule: any callable ``schedule(step, epoch)``
returning a float, such as the classes of `fastnn.schedules`. It is read once per
step with the optimizer's `iterations` and `epoch`.
"""
import math

import numpy as np
import scipy.linalg

from fastnn import _registry, schedules
from fastnn._kernels import optim as _kernels
from fastnn._kernels._checks import FLOAT_DTYPES
from fastnn._kernels._memory import aligned_copy, aligned_empty, aligned_full
from fastnn._validation import check_real
from fastnn._kernels._threads import get_num_threads

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adadelta", "Adam", "AdamW",
           "clip_gradients", "get", "serialize"]


class Optimizer:
    """Base class: ``step(params, grads)`` updates the parameters in place.

    Subclasses name their hyperparameters in `_config_keys` (attributes of the same
    names) and define ``_slot_fill`` (the initial value of each state buffer, None for
    a buffer the configuration does not use), ``_scalars`` (the kernel's keyword
    arguments for one step), the public kernel `_kernel` and its rule name, `_rule`.

    Every optimizer takes the keyword arguments `clipvalue`, `clipnorm` and
    `global_clipnorm` (at most one; see `clip_gradients`), applied to the gradients
    before each step.

    Attributes
    ----------
    iterations : int
        Updates done so far.
    epoch : int
        The current epoch, counted from 0; set by the training loop at each epoch start.
    """

    _config_keys = ()
    _clip_keys = ("clipvalue", "clipnorm", "global_clipnorm")

    def __init__(self, lr, learning_rate, default_lr, clip):
        if learning_rate is not None:
            if lr is not default_lr and lr != default_lr:
                raise TypeError("give lr or its alias learning_rate, not both")
            lr = learning_rate
        self.learning_rate = lr
        self.iterations = 0
        self.epoch = 0
        self._slots = []  # per parameter: its state buffers (as `_slot_fill` says)
        # Per parameter, buffers like its state: a step reads the state and writes these,
        # and the two swap (`_swap`), so the state before the last step is kept whole.
        self._spare = []
        self._flip = False  # whether the plan's states are now its spares (`_swap`)
        self._prev = []  # per parameter: its values before the last step
        # (params, iterations, slot count, swapped) to take the last step back
        self._undo = None
        self._undo_before = None  # the record `begin_step` replaced, for `cancel_step`
        self._checked = None  # ids of the parameter and gradient arrays last checked
        self._plan = None  # the kernel's plan for those arrays (`fastnn._kernels.optim.Plan`)
        self.set_clipping(**clip)

    def set_clipping(self, clipvalue=None, clipnorm=None, global_clipnorm=None):
        """Set gradient clipping (Keras's meaning, at most one of the three; see
        `clip_gradients`); all None turns it off."""
        given = [(name, value) for name, value in zip(self._clip_keys,
                                                      (clipvalue, clipnorm, global_clipnorm))
                 if value is not None]
        if len(given) > 1:
            raise ValueError(f"give at most one of clipvalue, clipnorm and global_clipnorm, "
                             f"got {', '.join(name for name, _ in given)}")
        self.clipvalue = self.clipnorm = self.global_clipnorm = None
        self._clip = None
        if given:
            name, limit = given[0]
            limit = check_real(limit, name, 0.0, closed="neither")
            setattr(self, name, limit)
            self._clip = (name, limit)

    @property
    def learning_rate(self):
        """The learning rate of the next step, as a float.

        With a schedule, its value at ``(iterations, epoch)``. Setting a float or a
        schedule replaces the current one.
        """
        lr = self._learning_rate
        return float(lr(self.iterations, self.epoch)) if callable(lr) else lr

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, dict):
            value = schedules.get(value)
        if callable(value):
            self._learning_rate = value
        else:
            self._learning_rate = check_real(value, "learning rate", low=0.0)

    @property
    def schedule(self):
        """The learning-rate schedule, or None for a constant learning rate."""
        lr = self._learning_rate
        return lr if callable(lr) else None

    def step(self, params, grads):
        """Apply one update to every parameter, in place (after clipping the gradients).

        Parameters
        ----------
        params : list of ndarray
            float32 or float64, C-contiguous and writeable; any shapes. Updated in place.
        grads : list of ndarray
            One per parameter, of the same shape and dtype; clipped in place.

        Returns
        -------
        bool
            True; False when the update made a parameter NaN or infinite: the step was
            then undone (parameters, state and step count are as before it).

        The arrays are checked when they are not the ones of the previous call; a caller
        that updates the same arrays every step (as `Sequential.fit` does) pays for the
        checks once.
        """
        plan, hyper, fresh_from = self.begin_step(params, grads)
        return self.end_step(plan.run(hyper, fresh_from, get_num_threads()))

    def begin_step(self, params, grads):
        """Everything of `step` before the update itself: checks, clipping, the kernel's
        plan and the undo record. Returns ``(plan, hyper, fresh_from)`` for
        ``plan.run(hyper, fresh_from, n_threads)`` (or a caller that runs the plan's
        updates itself, as `fastnn._kernels.train` does); `end_step` must follow."""
        key = tuple(map(id, params)) + tuple(map(id, grads))
        if key != self._checked:
            self._check(params, grads)
            self._checked = key
            self._plan = None
        if self._clip is not None:
            _clip(grads, *self._clip)
        scalars = self._scalars(self.learning_rate, self.iterations + 1)  # may raise
        n_slots = len(self._slots)
        if self._plan is None or n_slots < len(params):
            self._plan = self._make_plan(params, grads)
        hyper = _kernels.Hyper(_kernels.RULES[self._rule], flip=self._flip, **scalars)
        self._undo_before, self._undo = self._undo, (params, self.iterations, n_slots, False)
        return self._plan, hyper, n_slots

    def cancel_step(self):
        """Forget the step `begin_step` began when it was not run (nothing was updated):
        the state it made for new parameters goes, and `undo` takes back the step before
        it again."""
        self._forget_slots(self._undo[2])
        self._undo = self._undo_before

    def end_step(self, finite):
        """Count the step `begin_step` began; undo it when the update was not `finite`.
        Returns `finite`."""
        self.iterations += 1
        if not finite:
            self.undo()
            return finite
        self._swap()
        self._undo = self._undo[:3] + (True,)
        return finite

    def _swap(self):
        """The spares of the last step's parameters hold their state now (the step wrote
        them), and their state buffers are the spares: after a step, and again when it is
        taken back. Parameters the step did not update keep theirs."""
        for i in range(len(self._undo[0])):
            self._slots[i], self._spare[i] = self._spare[i], self._slots[i]
        self._flip = not self._flip

    def _forget_slots(self, n_slots):
        """Drop the state of parameters from `n_slots` on (made by a step taken back)."""
        if len(self._slots) > n_slots:
            del self._slots[n_slots:]
            del self._spare[n_slots:]
            self._plan = None

    @property
    def clipping(self):
        """``(name, limit)`` of the gradient clipping set, or None."""
        return self._clip

    def _make_plan(self, params, grads):
        """The kernel's plan for these arrays, after making the state buffers, their spares
        and the undo records that are missing (state: filled as ``_slot_fill`` says)."""
        for param in params[len(self._slots):]:
            self._slots.append(tuple(
                None if fill is None else aligned_full(param.shape, fill, param.dtype)
                for fill in self._slot_fill()))
        for slots in self._slots[len(self._spare):]:
            self._spare.append(tuple(None if s is None else aligned_empty(s.shape, s.dtype)
                                    for s in slots))
        for param in params[len(self._prev):]:
            self._prev.append(aligned_empty(param.size, param.dtype))
        self._flip = False  # the plan reads the state from `_slots` as they are now
        n = len(params)
        return _kernels.Plan(params, grads, self._slots[:n], self._prev[:n], self._spare[:n])

    def undo(self):
        """Take back the last step: parameters, state buffers and step count return to
        what they were before it. Only the last step can be taken back, once.

        Returns
        -------
        bool
            True when a step was taken back.
        """
        if self._undo is None:
            return False
        params, iterations, n_slots, swapped = self._undo
        if swapped:  # the state before the step is whole in the other buffers
            self._swap()
        self._undo = None
        for param, prev in zip(params, self._prev):
            np.copyto(param.reshape(-1), prev)
        self._forget_slots(n_slots)
        self.iterations = iterations
        return True

    def forget_step(self):
        """Make the last step permanent: `undo` has nothing to take back afterwards."""
        self._undo = None

    def _check(self, params, grads):
        if len(params) != len(grads):
            raise ValueError(f"got {len(params)} parameters but {len(grads)} gradients")
        for i, (param, grad) in enumerate(zip(params, grads)):
            if not isinstance(param, np.ndarray) or param.dtype not in FLOAT_DTYPES:
                raise TypeError(f"parameter {i} must be a float32 or float64 numpy array, "
                                f"got {type(param).__name__} {getattr(param, 'dtype', '')}")
            if not param.flags.c_contiguous or not param.flags.writeable:
                raise ValueError(f"parameter {i} must be a writeable C-contiguous array")
            if not isinstance(grad, np.ndarray) or grad.dtype != param.dtype \
                    or grad.shape != param.shape or not grad.flags.c_contiguous \
                    or not grad.flags.writeable:
                raise ValueError(f"gradient {i} must be a writeable C-contiguous array of the "
                                 f"shape {param.shape} and dtype {param.dtype} of parameter {i}")
            if i < len(self._slots):
                _check_buffers(i, param, self._slots[i])
                _check_buffers(i, param, self._spare[i] if i < len(self._spare) else ())
            if i < len(self._prev) and (self._prev[i].dtype != param.dtype
                                        or self._prev[i].size != param.size):
                del self._prev[i:]

    def _slot_fill(self):
        return ()

    def _scalars(self, lr, t):
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments as a JSON-serialisable dict.

        A schedule is stored as ``fastnn._registry.serialize(schedule)``.
        """
        lr = self._learning_rate
        if callable(lr):
            if not hasattr(lr, "get_config"):
                raise TypeError(f"the learning-rate schedule {lr!r} has no get_config, "
                                "so the optimizer cannot be serialised")
            lr = _registry.serialize(lr)
        config = {"lr": lr}
        for key in self._config_keys:
            value = getattr(self, key)
            config[key] = list(value) if isinstance(value, tuple) else value
        if self._clip is not None:
            config[self._clip[0]] = self._clip[1]
        return config

    def get_state(self):
        """``[iterations, *buffers]``: the step count, then the state buffers in order.

        Returns
        -------
        list
            A 0-d int64 array, then for each parameter position its buffers (as in
            ``_slot_fill``, skipping unused ones). The arrays are the live buffers (two
            sets take turns, step by step; see `_swap`).
        """
        return [np.array(self.iterations, dtype=np.int64)] + [
            s for slots in self._slots for s in slots if s is not None]

    def set_state(self, state, params=None):
        """Restore what `get_state` returned (the arrays are copied).

        With `params` (the parameter arrays the state belongs to, in order), every
        buffer must have its parameter's shape and dtype, and there must be a buffer set
        for every parameter or none at all; ValueError otherwise, before anything changes.
        """
        if len(state) < 1:
            raise ValueError("the state needs at least the iteration count")
        used = [fill is not None for fill in self._slot_fill()]
        per_param = sum(used)
        arrays = list(state[1:])
        if (per_param == 0 and arrays) or (per_param and len(arrays) % per_param):
            raise ValueError(f"{type(self).__name__} keeps {per_param} buffers per parameter; "
                             f"got {len(arrays)} arrays")
        iterations = int(np.asarray(state[0]))
        if iterations < 0:
            raise ValueError(f"iterations must be at least 0, got {iterations}")
        slots = []
        for start in range(0, len(arrays), max(per_param, 1)):
            group = iter(arrays[start:start + per_param])
            slots.append(tuple(_state_array(next(group)) if on else None for on in used))
        if params is not None:
            if len(slots) not in (0, len(params)):
                raise ValueError(f"the state holds buffers for {len(slots)} parameters, "
                                 f"the model has {len(params)}")
            for i, (param, group) in enumerate(zip(params, slots)):
                _check_buffers(i, param, group)
        self.iterations = iterations
        self._slots = slots
        self._spare = []
        self._flip = False
        self._prev = []
        self._undo = self._undo_before = None
        self._checked = None
        self._plan = None

    def __repr__(self):
        lr = self._learning_rate
        args = ", ".join(f"{k}={v!r}" for k, v in
                         [("lr", lr)] + [(k, getattr(self, k)) for k in self._config_keys]
                         + ([self._clip] if self._clip is not None else []))
        return f"{type(self).__name__}({args})"


def _check_buffers(i, param, buffers):
    """ValueError unless every buffer of parameter `i` has the parameter's shape and dtype."""
    for s in buffers:
        if s is not None and (s.shape != param.shape or s.dtype != param.dtype):
            raise ValueError(f"parameter {i} has shape {param.shape} and dtype {param.dtype}, "
                             f"but its optimizer state has shape {s.shape} and dtype {s.dtype}")


class SGD(Optimizer):
    """Stochastic gradient descent with momentum, as torch.optim.SGD.

    With ``d = g + weight_decay * p``: ``buf = momentum * buf + (1 - dampening) * d``
    (``buf = d`` on the first step), then ``p -= lr * (d + momentum * buf)`` with
    nesterov, ``p -= lr * buf`` without, and ``p -= lr * d`` when momentum is 0.

    Parameters
    ----------
    lr : float or schedule, default 0.01
    momentum : float, default 0.0
    dampening : float, default 0.0
    nesterov : bool, default False
        Needs momentum > 0 and dampening 0.
    weight_decay : float, default 0.0
        L2 penalty added to the gradient.
    learning_rate : float or schedule, optional
        Alias of `lr`.
    """

    _config_keys = ("momentum", "dampening", "nesterov", "weight_decay")
    _rule = "sgd"

    def __init__(self, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0, *, learning_rate=None, **clip):
        super().__init__(lr, learning_rate, 0.01, clip)
        self.momentum = check_real(momentum, "momentum", low=0.0)
        self.dampening = check_real(dampening, "dampening")
        self.nesterov = bool(nesterov)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        if self.nesterov and (self.momentum <= 0 or self.dampening != 0):
            raise ValueError("nesterov momentum needs momentum > 0 and dampening = 0")

    def _slot_fill(self):
        return (0.0,) if self.momentum != 0 else ()

    def _scalars(self, lr, t):
        return {"lr": lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adagrad(Optimizer):
    """Adagrad, as torch.optim.Adagrad.

    With ``d = g + weight_decay * p`` at step t (from 1): ``sum += d**2``, then
    ``p -= lr / (1 + (t - 1) * lr_decay) * d / (sqrt(sum) + eps)``.

    Parameters
    ----------
    lr : float or schedule, default 0.01
    lr_decay : float, default 0.0
    weight_decay : float, default 0.0
    initial_accumulator_value : float, default 0.0
    eps : float, default 1e-10
    learning_rate : float or schedule, optional
        Alias of `lr`.
    """

    _config_keys = ("lr_decay", "weight_decay", "initial_accumulator_value", "eps")
    _rule = "adagrad"

    def __init__(self, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, *, learning_rate=None, **clip):
        super().__init__(lr, learning_rate, 0.01, clip)
        self.lr_decay = check_real(lr_decay, "lr_decay", low=0.0)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self.initial_accumulator_value = check_real(initial_accumulator_value,
                                                    "initial_accumulator_value", low=0.0)
        self.eps = check_real(eps, "eps", low=0.0)

    def _slot_fill(self):
        return (self.initial_accumulator_value,)

    def _scalars(self, lr, t):
        return {"lr": lr / (1 + (t - 1) * self.lr_decay), "eps": self.eps,
                "weight_decay": self.weight_decay}


class RMSprop(Optimizer):
    """RMSprop, as torch.optim.RMSprop.

    With ``d = g + weight_decay * p``: ``sq = alpha * sq + (1 - alpha) * d**2``;
    centered, ``ga = alpha * ga + (1 - alpha) * d`` and ``r = d / (sqrt(sq - ga**2) + eps)``,
    else ``r = d / (sqrt(sq) + eps)``; then ``buf = momentum * buf + r`` and
    ``p -= lr * buf``, or ``p -= lr * r`` when momentum is 0.

    Parameters
    ----------
    lr : float or schedule, default 0.01
    alpha : float, default 0.99
    eps : float, default 1e-8
    weight_decay : float, default 0.0
    momentum : float, default 0.0
    centered : bool, default False
    learning_rate : float or schedule, optional
        Alias of `lr`.
    """

    _config_keys = ("alpha", "eps", "weight_decay", "momentum", "centered")
    _rule = "rmsprop"

    def __init__(self, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered=False, *, learning_rate=None, **clip):
        super().__init__(lr, learning_rate, 0.01, clip)
        self.alpha = check_real(alpha, "alpha", low=0.0)
        self.eps = check_real(eps, "eps", low=0.0)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self.momentum = check_real(momentum, "momentum", low=0.0)
        self.centered = bool(centered)

    def _slot_fill(self):
        return (0.0, 0.0 if self.centered else None, 0.0 if self.momentum > 0 else None)

    def _scalars(self, lr, t):
        return {"lr": lr, "alpha": self.alpha, "eps": self.eps,
                "weight_decay": self.weight_decay, "momentum": self.momentum}


class Adadelta(Optimizer):
    """Adadelta, as torch.optim.Adadelta.

    With ``d = g + weight_decay * p``: ``sq = rho * sq + (1 - rho) * d**2``,
    ``u = sqrt(acc + eps) / sqrt(sq + eps) * d``, ``acc = rho * acc + (1 - rho) * u**2``,
    then ``p -= lr * u``.

    Parameters
    ----------
    lr : float or schedule, default 1.0
    rho : float in [0, 1], default 0.9
    eps : float, default 1e-6
    weight_decay : float, default 0.0
    learning_rate : float or schedule, optional
        Alias of `lr`.
    """

    _config_keys = ("rho", "eps", "weight_decay")
    _rule = "adadelta"

    def __init__(self, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, learning_rate=None,
                 **clip):
        super().__init__(lr, learning_rate, 1.0, clip)
        self.rho = check_real(rho, "rho", 0.0, 1.0)
        self.eps = check_real(eps, "eps", low=0.0)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)

    def _slot_fill(self):
        return (0.0, 0.0)

    def _scalars(self, lr, t):
        return {"lr": lr, "rho": self.rho, "eps": self.eps, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam, as torch.optim.Adam, with weight decay as an L2 penalty on the gradient.

    With ``d = g + weight_decay * p`` at step t (from 1): ``m = beta1 * m + (1 - beta1) * d``,
    ``v = beta2 * v + (1 - beta2) * d**2`` (amsgrad: ``v`` is the running maximum of it),
    then ``p -= lr / (1 - beta1**t) * m / (sqrt(v) / sqrt(1 - beta2**t) + eps)``.

    Parameters
    ----------
    lr : float or schedule, default 1e-3
    betas : (float, float) in [0, 1), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0.0
    amsgrad : bool, default False
    learning_rate : float or schedule, optional
        Alias of `lr`.
    """

    _config_keys = ("betas", "eps", "weight_decay", "amsgrad")
    _rule = "adam"
    _decoupled = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False,
                 *, learning_rate=None, **clip):
        super().__init__(lr, learning_rate, 1e-3, clip)
        try:
            beta1, beta2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair of floats, got {betas!r}") from None
        self.betas = (check_real(beta1, "betas[0]", 0.0, 1.0, closed="left"),
                      check_real(beta2, "betas[1]", 0.0, 1.0, closed="left"))
        self.eps = check_real(eps, "eps", low=0.0)
        self.weight_decay = check_real(weight_decay, "weight_decay", low=0.0)
        self.amsgrad = bool(amsgrad)

    def _slot_fill(self):
        return (0.0, 0.0, 0.0 if self.amsgrad else None)

    def _scalars(self, lr, t):
        beta1, beta2 = self.betas
        kwargs = {"lr": lr / (1 - beta1 ** t), "beta1": beta1, "beta2": beta2,
                  "bias_correction2_sqrt": (1 - beta2 ** t) ** 0.5, "eps": self.eps}
        if self._decoupled:
            kwargs["param_scale"] = 1 - lr * self.weight_decay
        else:
            kwargs["weight_decay"] = self.weight_decay
        return kwargs


class AdamW(Adam):
    """AdamW, as torch.optim.AdamW: Adam with decoupled weight decay.

    Each step first shrinks the parameter, ``p *= 1 - lr * weight_decay``, then applies
    Adam's update without an L2 term.

    Parameters
    ----------
    lr : float or schedule, default 1e-3
    betas : (float, float) in [0, 1), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 0.01
    amsgrad : bool, default False
    learning_rate : float or schedule, optional
        Alias of `lr`.
    """

    _decoupled = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 amsgrad=False, *, learning_rate=None, **clip):
        super().__init__(lr, betas, eps, weight_decay, amsgrad, learning_rate=learning_rate,
                         **clip)


def clip_gradients(grads, clipvalue=None, clipnorm=None, global_clipnorm=None):
    """Clip gradients in place, with Keras's meaning of the three options (give at most one).

    - `clipvalue`: every element is clipped to ``[-clipvalue, clipvalue]``.
    - `clipnorm`: every array whose L2 norm exceeds `clipnorm` is scaled to norm `clipnorm`.
    - `global_clipnorm`: all arrays are scaled by
      ``global_clipnorm / max(global_norm, global_clipnorm)``, where `global_norm` is
      the L2 norm of all the gradients taken together.

    Parameters
    ----------
    grads : list of ndarray
        float32 or float64, writeable; any shapes. Modified in place.
    clipvalue, clipnorm, global_clipnorm : float > 0, optional

    Returns
    -------
    list of ndarray
        `grads` itself.
    """
    given = [(name, value) for name, value in (("clipvalue", clipvalue), ("clipnorm", clipnorm),
                                               ("global_clipnorm", global_clipnorm))
             if value is not None]
    if len(given) > 1:
        raise ValueError(f"give at most one of clipvalue, clipnorm and global_clipnorm, "
                         f"got {', '.join(name for name, _ in given)}")
    if not given:
        return grads
    name, limit = given[0]
    limit = check_real(limit, name, 0.0, closed="neither")
    for i, g in enumerate(grads):
        if not isinstance(g, np.ndarray) or g.dtype not in FLOAT_DTYPES:
            raise TypeError(f"gradient {i} must be a float32 or float64 numpy array")
        if not g.flags.writeable:
            raise ValueError(f"gradient {i} is not writeable")
    return _clip(grads, name, limit)


def _clip(grads, name, limit):
    """`clip_gradients` for checked arguments: one option `name` with its float `limit`."""
    if name == "clipvalue":
        for g in grads:
            np.clip(g, -limit, limit, out=g)
        return grads
    norms = [_l2_norm(g) for g in grads]
    if name == "clipnorm":
        for g, norm in zip(grads, norms):
            if norm > limit:
                g *= limit / norm
    else:
        total = math.hypot(*norms)
        if total > limit:
            for g in grads:
                g *= limit / total
    return grads


def _l2_norm(g):
    """The L2 norm of all elements of `g`, without overflow for large values."""
    return float(scipy.linalg.norm(g.reshape(-1), check_finite=False)) if g.size else 0.0


def _state_array(a):
    """A C-contiguous float32/float64 copy of a saved state buffer, on a cache line."""
    a = np.asarray(a)
    if a.dtype not in FLOAT_DTYPES:
        raise TypeError(f"optimizer state arrays must be float32 or float64, got {a.dtype}")
    return aligned_copy(a, a.dtype)


_CLASSES = (SGD, Adagrad, RMSprop, Adadelta, Adam, AdamW)
_TABLE = {cls.__name__.lower(): cls for cls in _CLASSES}


def get(identifier):
    """Resolve an optimizer.

    Parameters
    ----------
    identifier : str, Optimizer or dict
        A name (sgd, adagrad, rmsprop, adadelta, adam, adamw; case-insensitive), an
        instance (returned as is), or ``{"class_name": ..., "config": {...}}`` as
        written by `serialize`.

    Returns
    -------
    Optimizer

    Raises
    ------
    ValueError
        For an unknown name; the message lists the valid names.
    """
    return _registry.get(identifier, _TABLE, "optimizer", Optimizer)


serialize = _registry.serialize
