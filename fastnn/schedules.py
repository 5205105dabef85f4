"""Learning-rate schedules: the learning rate as a function of training progress.

A schedule is called as ``schedule(step, epoch)``, with `step` the number of optimizer
updates done so far and `epoch` the number of completed epochs, both counted from 0.
Each class reads one of them, named by its class attribute `unit` (``"step"`` or
``"epoch"``).
"""
import bisect
import math

from fastnn import _registry
from fastnn._validation import check_int, check_real

__all__ = [
    "LearningRateSchedule", "InverseTimeDecay", "ExponentialDecay", "StepDecay",
    "PiecewiseConstantDecay", "PolynomialDecay", "CosineDecay", "get", "serialize",
]


class LearningRateSchedule(_registry.Configurable):
    """Base class: subclasses set `unit` and implement ``_rate(t)`` and `get_config`.

    Attributes
    ----------
    unit : {"step", "epoch"}
        Which counter the schedule reads.
    """

    unit = "step"

    def __call__(self, step, epoch=0):
        """The learning rate.

        Parameters
        ----------
        step : int
            Optimizer updates done so far (0 before the first).
        epoch : int, default 0
            Epochs completed so far.

        Returns
        -------
        float
        """
        step = check_real(step, "step", 0.0)
        epoch = check_real(epoch, "epoch", 0.0)
        return float(self._rate(step if self.unit == "step" else epoch))

    def _rate(self, t):
        raise NotImplementedError

    def get_config(self):
        """The constructor arguments, as a JSON-serialisable dict."""
        raise NotImplementedError



class _StepwiseDecay(LearningRateSchedule):
    """Shared by the decays of ``lr0`` over ``progress = step / decay_steps``."""

    unit = "step"
    #: which ends of [0, inf) decay_rate may take: "both" allows 0, "neither" does not
    _rate_closed = "both"

    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False):
        self.initial_learning_rate = check_real(initial_learning_rate, "initial_learning_rate", 0.0)
        self.decay_steps = check_real(decay_steps, "decay_steps", 0.0, closed="neither")
        self.decay_rate = check_real(decay_rate, "decay_rate", 0.0, closed=self._rate_closed)
        self.staircase = bool(staircase)

    def _progress(self, t):
        p = t / self.decay_steps
        return math.floor(p) if self.staircase else p

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "decay_rate": self.decay_rate,
                "staircase": self.staircase}


class InverseTimeDecay(_StepwiseDecay):
    """``lr = lr0 / (1 + decay_rate * step / decay_steps)``; counts steps.

    Parameters
    ----------
    initial_learning_rate : float
        lr0, non-negative.
    decay_steps : float
        Positive.
    decay_rate : float
        Non-negative.
    staircase : bool, default False
        Use ``floor(step / decay_steps)``, so the rate changes every `decay_steps`.
    """

    def _rate(self, t):
        return self.initial_learning_rate / (1.0 + self.decay_rate * self._progress(t))


class ExponentialDecay(_StepwiseDecay):
    """``lr = lr0 * decay_rate ** (step / decay_steps)``; counts steps.

    Parameters
    ----------
    initial_learning_rate : float
        lr0, non-negative.
    decay_steps : float
        Positive.
    decay_rate : float
        Positive.
    staircase : bool, default False
        Use ``floor(step / decay_steps)``, so the rate changes every `decay_steps`.
    """

    _rate_closed = "neither"

    def _rate(self, t):
        return self.initial_learning_rate * self.decay_rate ** self._progress(t)


class StepDecay(LearningRateSchedule):
    """``lr = lr0 * factor ** floor(epoch / every)``; counts epochs.

    Parameters
    ----------
    initial_learning_rate : float
        lr0, non-negative.
    factor : float, default 0.5
        Positive.
    every : int, default 10
        Positive; epochs between changes.
    """

    unit = "epoch"

    def __init__(self, initial_learning_rate, factor=0.5, every=10):
        self.initial_learning_rate = check_real(initial_learning_rate, "initial_learning_rate", 0.0)
        self.factor = check_real(factor, "factor", 0.0, closed="neither")
        self.every = check_int(every, "every", low=1)

    def _rate(self, t):
        return self.initial_learning_rate * self.factor ** math.floor(t / self.every)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate, "factor": self.factor,
                "every": self.every}


class PiecewiseConstantDecay(LearningRateSchedule):
    """``values[i]`` for ``boundaries[i-1] < step <= boundaries[i]``; counts steps.

    That is ``values[0]`` while ``step <= boundaries[0]`` and ``values[-1]`` once
    ``step > boundaries[-1]``.

    Parameters
    ----------
    boundaries : sequence of float
        Strictly increasing.
    values : sequence of float
        Non-negative learning rates, one more than `boundaries`.
    """

    unit = "step"

    def __init__(self, boundaries, values):
        boundaries = [check_real(b, "boundaries[i]") for b in boundaries]
        values = [check_real(v, "values[i]", 0.0) for v in values]
        if len(values) != len(boundaries) + 1:
            raise ValueError(f"values needs one more entry than boundaries, got "
                             f"{len(values)} values and {len(boundaries)} boundaries")
        if any(a >= b for a, b in zip(boundaries, boundaries[1:])):
            raise ValueError(f"boundaries must be strictly increasing, got {boundaries}")
        self.boundaries = boundaries
        self.values = values

    def _rate(self, t):
        return self.values[bisect.bisect_left(self.boundaries, t)]

    def get_config(self):
        return {"boundaries": list(self.boundaries), "values": list(self.values)}


class PolynomialDecay(LearningRateSchedule):
    """Polynomial decay from lr0 to `end_learning_rate` over `decay_steps`; counts steps.

    ``lr = (lr0 - end) * (1 - min(step, decay_steps) / decay_steps) ** power + end``.
    With ``cycle=True`` the horizon is instead ``decay_steps * ceil(step / decay_steps)``
    (``decay_steps`` at step 0) and the step is not clipped, so the rate jumps back up
    at each multiple of `decay_steps` and decays again, a little less far each time.

    Parameters
    ----------
    initial_learning_rate : float
        lr0, non-negative.
    decay_steps : float
        Positive.
    end_learning_rate : float, default 0.0001
        Non-negative.
    power : float, default 1.0
        Positive.
    cycle : bool, default False
    """

    unit = "step"

    def __init__(self, initial_learning_rate, decay_steps, end_learning_rate=0.0001,
                 power=1.0, cycle=False):
        self.initial_learning_rate = check_real(initial_learning_rate, "initial_learning_rate", 0.0)
        self.decay_steps = check_real(decay_steps, "decay_steps", 0.0, closed="neither")
        self.end_learning_rate = check_real(end_learning_rate, "end_learning_rate", 0.0)
        self.power = check_real(power, "power", 0.0, closed="neither")
        self.cycle = bool(cycle)

    def _rate(self, t):
        if self.cycle:
            horizon = self.decay_steps * max(1.0, math.ceil(t / self.decay_steps))
        else:
            horizon, t = self.decay_steps, min(t, self.decay_steps)
        span = self.initial_learning_rate - self.end_learning_rate
        return span * (1.0 - t / horizon) ** self.power + self.end_learning_rate

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "end_learning_rate": self.end_learning_rate,
                "power": self.power, "cycle": self.cycle}


class CosineDecay(LearningRateSchedule):
    """Cosine decay, after an optional linear warm-up; counts steps.

    Without warm-up, ``lr = lr0 * decayed(min(step, decay_steps))`` with
    ``decayed(s) = (1 - alpha) * 0.5 * (1 + cos(pi * s / decay_steps)) + alpha``.
    With `warmup_target`, the rate rises linearly from lr0 to `warmup_target` over
    `warmup_steps`, then is ``warmup_target * decayed(min(step - warmup_steps,
    decay_steps))``.

    Parameters
    ----------
    initial_learning_rate : float
        lr0, non-negative.
    decay_steps : float
        Positive.
    alpha : float, default 0.0
        In [0, 1]: the final rate as a fraction of the rate decay starts from.
    warmup_target : float, optional
        Non-negative; the rate reached at the end of warm-up.
    warmup_steps : float, default 0
        Non-negative; needs `warmup_target` when positive.
    """

    unit = "step"

    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, warmup_target=None,
                 warmup_steps=0):
        self.initial_learning_rate = check_real(initial_learning_rate, "initial_learning_rate", 0.0)
        self.decay_steps = check_real(decay_steps, "decay_steps", 0.0, closed="neither")
        self.alpha = check_real(alpha, "alpha", 0.0, 1.0)
        self.warmup_target = (None if warmup_target is None
                              else check_real(warmup_target, "warmup_target", 0.0))
        self.warmup_steps = check_real(warmup_steps, "warmup_steps", 0.0)
        if self.warmup_steps > 0 and self.warmup_target is None:
            raise ValueError("warmup_steps > 0 needs a warmup_target")

    def _rate(self, t):
        start = self.initial_learning_rate
        if self.warmup_target is not None:
            if t < self.warmup_steps:
                return start + (self.warmup_target - start) * t / self.warmup_steps
            start, t = self.warmup_target, t - self.warmup_steps
        fraction = min(t, self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1.0 + math.cos(math.pi * fraction))
        return start * ((1.0 - self.alpha) * cosine + self.alpha)

    def get_config(self):
        return {"initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps, "alpha": self.alpha,
                "warmup_target": self.warmup_target, "warmup_steps": self.warmup_steps}


_CLASSES = (InverseTimeDecay, ExponentialDecay, StepDecay, PiecewiseConstantDecay,
            PolynomialDecay, CosineDecay)
_TABLE = {cls.__name__.lower(): cls for cls in _CLASSES}
_TABLE.update({
    "inverse_time_decay": InverseTimeDecay, "exponential_decay": ExponentialDecay,
    "step_decay": StepDecay, "piecewise_constant_decay": PiecewiseConstantDecay,
    "polynomial_decay": PolynomialDecay, "cosine_decay": CosineDecay,
})


def get(identifier):
    """Resolve a schedule.

    Parameters
    ----------
    identifier : dict or LearningRateSchedule
        A config dict as written by `serialize`, or an instance (returned as is).
        Every schedule takes arguments, so a bare name is not enough.

    Returns
    -------
    LearningRateSchedule

    Raises
    ------
    ValueError
        For an unknown class name; the message lists the valid names.
    """
    return _registry.get(identifier, _TABLE, "learning-rate schedule", LearningRateSchedule)


serialize = _registry.serialize

