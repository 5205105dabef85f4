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

A layer pruned in blocks runs where it is estimated fastest of three forms: dense in
the precision asked for; float32 in blocks, where the engine would store it float32 in
blocks at every batch size (`fastnn.engine.sparse_form`, layout "auto" or "block") and
its block density in those blocks is at most the crossover of `FLOAT_BLOCK_CROSSOVER`
for their width (the float32 block kernel reads only the kept blocks, and loses
nothing); for int8, int8 in blocks (the same int8 results as dense int8, reading only
the kept blocks), where a width's block density is at most its crossover in
`INT8_BLOCK_CROSSOVER`. Each block form is estimated at ``density / crossover`` of the
dense quantized time, as the engine's cost model does; layout "block" takes int8 blocks
in the width the float engine would store, "dense" and "sparse" no int8 blocks.

Affine steps (BatchNormalization that could not be folded) stay float32. The engine's
`layout()` says each layer's precision and why; `evaluate` compares the model and the
engine on data.
"""
import sys

import numpy as np

from fastnn._kernels._checks import as_float_array
from fastnn._kernels.quant import MAX_BLOCK_INPUTS
from fastnn.engine import InferenceEngine, sparse_form

__all__ = ["plan_precision", "evaluate", "NONNEGATIVE", "LAST_LAYER_ERROR_RATIO",
           "FLOAT_BLOCK_CROSSOVER", "INT8_BLOCK_CROSSOVER"]

NONNEGATIVE = frozenset({"relu", "sigmoid", "softmax", "softplus", "binary_step",
                         "binary_step_ste"})
"""Activations whose outputs are never negative: the next layer's inputs are unsigned."""

LAST_LAYER_ERROR_RATIO = 2.0
"""The last layer stays float when int8 multiplies the calibration error by more."""


FLOAT_BLOCK_CROSSOVER = {"int8": {4: 0.0, 8: 0.05, 16: 0.10},
                         "bf16": {4: 0.10, 8: 0.20, 16: 0.25}}
"""Per precision and block width, the block density up to which a layer kept float32 in
blocks runs faster than the same layer dense in that precision, at every batch size.

Measured with ``python bench/bench_blocksparse.py --calibrate-quantized int8`` (and
``bf16``) on the development machine (AMD EPYC Zen 4, AVX-512 VNNI and BF16, shared), one
thread, layers 784x256 and 256x128, batches 1, 8 and 256: float32 blocks over dense int8
broke even at block density 0.05-0.10 (1x4), 0.10-0.15 (1x8: 0.70-0.91 at 0.10, 1.01-1.03
at 0.15, one row being the tightest) and 0.15-0.20 (1x16); over dense bf16 at 0.10-0.15
(1x4), 0.20-0.30 (1x8) and 0.30 or more (1x16, the densest tried). On a 2-core AMD EPYC
(Zen 5) over dense int8 the same runs broke even lower, at one row on 256x128 first:
below 0.05 (1x4: 1.27x at 0.05), 0.05 (1x8: 0.95x at 0.05, 1.06x at 0.10) and 0.10
(1x16: 0.85x at 0.10, 1.04x at 0.15); the int8 values are those (bf16 not re-measured).
"""


INT8_BLOCK_CROSSOVER = {4: 0.08, 8: 0.20, 16: 0.30}
"""Per block width, the block density up to which the int8 block-sparse product runs
faster than the dense int8 one at every batch size.

Measured with ``python bench/bench_blocksparse.py --calibrate-quantized int8`` on the
development machine (AMD EPYC Zen 4, AVX512-VNNI, shared), one thread, layers 784x256
and 256x128, batches 1, 2, 3, 8, 256 and 1024, int8 blocks over dense int8: 1x4 won up
to 0.08 (0.43-0.88 there) and lost at 0.10 on 256x128 at 2 rows (1.07-1.08; a group of
four rows half used); 1x8 won up to 0.20 (0.38-0.86) and lost at 0.30 on 784x256 at one
row (1.04); 1x16 won up to 0.30, the densest tried (0.40-0.80). One row costs most: its
four inputs of a quad are gathered byte by byte. Against float32 blocks int8 blocks ran
0.32-0.94x at densities 0.05-0.30, but for the 256x128 layer at 256 rows in blocks of
1x8 at 0.05 (1.01x) and of 1x16 at 0.05-0.10 (1.05-1.26x; 1.09x at 1024 rows); the
crossovers being higher than `FLOAT_BLOCK_CROSSOVER`'s, a layer whose blocks int8 takes
runs int8 blocks. On a 2-core AMD EPYC (Zen 5) int8 blocks broke even a little lower at
one row: 1x4 between 0.05 and 0.10 on 256x128 (0.92x and 1.03x), 1x8 at 0.15-0.20 (1.00x
and 1.07x on 256x128, 1.01x on 784x256 at 0.20) and 1x16 still at 0.30 or more. The
table stays: with 1x8 at 0.15 the estimate (block density over crossover) took 1x16
blocks for a layer pruned in 1x8 blocks to 0.10, where 1x8 ran 0.65x dense int8 and
1x16 0.73x.
"""


def _blocks(spec, precision, layout):
    """The fastest estimated block form of `spec`'s layer: ``(block, precision, reason)``
    with precision "float" (float32 blocks) or "int8" (int8 blocks), or None when dense
    `precision` is estimated faster, or the layer has no W."""
    W = spec.get("W")
    if W is None:
        return None
    b, batches, densities = sparse_form(np.asarray(W), layout)
    forms = {}
    limit = FLOAT_BLOCK_CROSSOVER[precision].get(b)
    if b and batches == (1, sys.maxsize) and densities[b] <= limit:
        forms[(b, "float")] = (densities[b] / limit if limit else 0.0, (
            f"kept float32: block density {densities[b]:.3f} in 1x{b} blocks (the engine's "
            f"storage), where float32 blocks run faster than dense {precision} (up to {limit})"))
    if precision == "int8" and layout in ("auto", "block") and len(W) <= MAX_BLOCK_INPUTS:
        for w in ((b,) if layout == "block" else INT8_BLOCK_CROSSOVER):
            limit = INT8_BLOCK_CROSSOVER[w]
            if layout == "block" or densities[w] <= limit:
                forms[(w, "int8")] = (densities[w] / limit if limit else 1.0, (
                    f"int8 in 1x{w} blocks: block density {densities[w]:.3f}, where int8 "
                    f"blocks run faster than dense int8 (up to {limit})"
                    + ("" if layout == "auto" else f"; layout={layout!r} requested")))
    if not forms:
        return None
    (w, form), (_, reason) = min(forms.items(), key=lambda item: item[1][0])
    if len(forms) > 1:
        reason += "; estimated faster than " + ", ".join(
            f"{'float32' if f == 'float' else f} 1x{v} blocks" for v, f in forms
            if (v, f) != (w, form))
    return w, form, reason


def _float_outputs(specs, X):
    """The input of every layer and the final output, in float32, over X."""
    inputs = [X]
    for spec in specs:
        inputs.append(InferenceEngine([spec], dtype="float32").predict(inputs[-1]))
    return inputs


def plan_precision(specs, precision, calibration=None, layout="auto"):
    """Engine layer specs with each dense layer's precision, input scale and reason.

    Parameters
    ----------
    specs : list of dict
        Engine layer specs in float (as from `fastnn.deployment.engine_layers`).
    precision : {"int8", "bf16"}
    calibration : ndarray of shape (n_samples, n_in), optional
        Representative inputs: int8 input scales become static and the last layer's
        precision is chosen from the error they show.
    layout : {"auto", "dense", "sparse", "block"}
        The engine's layout: where it stores a float layer in blocks at every batch size,
        the layer stays float32 if `FLOAT_BLOCK_CROSSOVER` says that is faster; with
        "auto" or "block" an int8 layer runs in int8 blocks (spec key ``block``) where
        `INT8_BLOCK_CROSSOVER` says that is faster still.
    """
    if precision not in ("int8", "bf16"):
        raise ValueError(f"precision must be 'int8' or 'bf16', got {precision!r}")
    specs = [dict(spec) for spec in specs]
    dense, in_blocks = [], {}
    for i, spec in enumerate(specs):
        form = _blocks(spec, precision, layout) if spec["kind"] == "dense" else None
        if form and form[1] == "float":
            spec.update(precision="float", precision_reason=form[2])
        elif spec["kind"] == "dense":
            dense.append(i)
            if form:
                in_blocks[i] = form
    last = max((i for i, spec in enumerate(specs) if spec["kind"] == "dense"), default=None)
    if precision == "bf16":
        for i in dense:
            specs[i].update(precision="bf16", precision_reason="bf16 requested")
        if dense and dense[-1] == last:
            specs[last].update(precision="float", precision_reason=(
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
        if i in in_blocks:
            spec.update(block=in_blocks[i][0],
                        precision_reason=f"{spec['precision_reason']}; {in_blocks[i][2]}")
    if dense and dense[-1] == last:
        _choose_last(specs, last, X)
    return specs


def _choose_last(specs, last, X):
    spec = specs[last]
    if X is None:
        spec.pop("block", None)
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
        spec.pop("block", None)
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
