"""Quantized inference: choose each layer's precision, and measure what it costs.

`fastnn.deploy(model, precision="int8", calibration=X)` runs through `plan_precision`:

- int8: weights symmetric per output unit; a layer's inputs unsigned 8-bit when they
  are non-negative (after ReLU, sigmoid, softmax or softplus, or inputs that were
  non-negative over the calibration data), else signed. With calibration data the
  input scale of each layer is static, ``max |input| / 255`` (or ``/ 127``) over that
  data; without it each row is scaled on its own at every call. The last layer stays
  float32 when quantizing it more than doubles the calibration error of the outputs
  (or when there is no calibration data to tell), since its few weights cost little
  time and its errors reach the outputs unattenuated.
- bf16: weights and inputs rounded to bfloat16 (to nearest, ties to even), sums in
  float32. The last layer stays float32, for the reasons above: with it in bf16 a
  digits network lost 1 of 450 test samples, more than the 0.2 points allowed.

Affine steps (BatchNormalization that could not be folded) stay float32. The engine's
`layout()` says each layer's precision and why; `evaluate` compares the model and the
engine on data.
"""
import numpy as np

from fastnn._kernels._checks import as_float_array
from fastnn.engine import InferenceEngine

__all__ = ["plan_precision", "evaluate", "NONNEGATIVE", "LAST_LAYER_ERROR_RATIO"]

NONNEGATIVE = frozenset({"relu", "sigmoid", "softmax", "softplus", "binary_step",
                         "binary_step_ste"})
"""Activations whose outputs are never negative: the next layer's inputs are unsigned."""

LAST_LAYER_ERROR_RATIO = 2.0
"""The last layer stays float when int8 multiplies the calibration error by more."""


def _float_outputs(specs, X):
    """The input of every layer and the final output, in float32, over X."""
    inputs = [X]
    for spec in specs:
        inputs.append(InferenceEngine([spec], dtype="float32").predict(inputs[-1]))
    return inputs


def plan_precision(specs, precision, calibration=None):
    """Engine layer specs with each dense layer's precision, input scale and reason.

    Parameters
    ----------
    specs : list of dict
        Engine layer specs in float (as from `fastnn.deployment.engine_layers`).
    precision : {"int8", "bf16"}
    calibration : ndarray of shape (n_samples, n_in), optional
        Representative inputs: int8 input scales become static and the last layer's
        precision is chosen from the error they show.
    """
    if precision not in ("int8", "bf16"):
        raise ValueError(f"precision must be 'int8' or 'bf16', got {precision!r}")
    specs = [dict(spec) for spec in specs]
    dense = [i for i, spec in enumerate(specs) if spec["kind"] == "dense"]
    if precision == "bf16":
        for i in dense:
            specs[i].update(precision="bf16", precision_reason="bf16 requested")
        if dense:
            specs[dense[-1]].update(precision="float", precision_reason=(
                "last layer kept float32: its rounding errors reach the outputs unattenuated"))
        return specs
    X = None
    if calibration is not None:
        X = as_float_array(calibration, "calibration", ndim=2).astype(np.float32)
        if X.shape[0] == 0 or not np.isfinite(X).all():
            raise ValueError("calibration must hold at least one row of finite values")
        inputs = _float_outputs(specs, X)
    for i in dense:
        spec = specs[i]
        before = specs[i - 1] if i else None
        if X is not None:
            signed = bool(inputs[i].min() < 0)
            amax = float(np.abs(inputs[i]).max())
            x_scale = amax / (127 if signed else 255) if amax > 0 else 1.0
            how = "static input scale from calibration"
        else:
            signed = before is None or before["activation"] not in NONNEGATIVE
            x_scale = 0.0
            how = "input scale per row and call"
        spec.update(precision="int8", x_scale=x_scale, x_signed=signed,
                    precision_reason=f"int8 requested; {how}")
    if dense:
        _choose_last(specs, dense[-1], X)
    return specs


def _choose_last(specs, last, X):
    spec = specs[last]
    if X is None:
        spec.update(precision="float", precision_reason="last layer kept float32: no "
                    "calibration data to measure its int8 error")
        return
    exact = InferenceEngine([dict(s, precision=None) for s in specs], dtype="float32").predict(X)
    all_int8 = InferenceEngine(specs, dtype="float32").predict(X)
    kept = [dict(s) for s in specs]
    kept[last]["precision"] = None
    last_float = InferenceEngine(kept, dtype="float32").predict(X)
    err_int8 = float(np.abs(all_int8 - exact).max())
    err_float = float(np.abs(last_float - exact).max())
    if err_int8 > LAST_LAYER_ERROR_RATIO * err_float:
        spec.update(precision="float", precision_reason=(
            f"last layer kept float32: int8 makes the largest calibration output error "
            f"{err_int8:.3g}, against {err_float:.3g} with this layer float"))
    else:
        spec["precision_reason"] += (f"; largest calibration output error {err_int8:.3g} "
                                     f"({err_float:.3g} with this layer float)")


def evaluate(model, engine, X, y):
    """The model's first metric (or loss) from the model and from the engine, and the
    largest difference between their outputs.

    Returns
    -------
    dict
        ``metric`` (its name), ``model`` and ``engine`` (its values), ``max_abs_diff``
        and, for outputs of more than one column, ``agreement``: the fraction of rows
        whose largest output is in the same column.
    """
    X = model.check_input(X)
    expected = model.predict(X)
    got = engine.predict(X).astype(expected.dtype)
    result = model.evaluate(X, y)
    y_enc = model._check_y(y, X.shape[0])
    if model.metrics:
        name, metric = model.metrics[0]
        engine_value = metric(y_enc, got)
    else:
        name = "loss"
        engine_value = model.loss(y_enc, got, None)[0] + model._penalty()
    report = {"metric": name, "model": float(result[name]), "engine": float(engine_value),
              "max_abs_diff": float(np.abs(got - expected).max()) if got.size else 0.0}
    if got.shape[1] > 1:
        report["agreement"] = float((got.argmax(1) == expected.argmax(1)).mean())
    return report
