"""Turn a trained `Sequential` into an `InferenceEngine`.

Dropout and GaussianNoise are dropped (they are the identity at inference).
BatchNormalization and Normalization, affine maps ``x * s + t`` at inference, are
folded into the Dense layer before them when that layer has no activation, else into
the Dense layer after them when nothing but the affine map stands between
(``W' = diag(s) W``, ``b' = b + t W``: a Normalization in front of the first Dense
layer costs nothing); otherwise they stay as an affine step. An Activation or PReLU layer becomes the activation of the step before it
when that step has none.
"""
import numpy as np

from fastnn import layers as L
from fastnn.engine import InferenceEngine
from fastnn.quantization import plan_precision

__all__ = ["deploy", "engine_layers"]


def engine_layers(model):
    """The model as engine layer specs (float64 arrays, folded where exact)."""
    model.require_built("deploy")
    specs = []
    pending = None  # an affine (scale, shift) waiting to be folded into the next Dense
    for layer in model.layers:
        if isinstance(layer, (L.Dropout, L.GaussianNoise)):
            continue
        last = specs[-1] if specs else None
        if isinstance(layer, L.Dense):
            W = layer.kernel.astype(np.float64)
            b = np.zeros(W.shape[1]) if layer.bias is None else layer.bias.astype(np.float64)
            if pending is not None:
                scale, shift = pending
                b = b + shift @ W
                W = W * scale[:, None]
                pending = None
            spec = {"kind": "dense", "W": W, "b": b, "activation": "linear", "alpha": None}
            if isinstance(layer, L.Maxout):
                spec["pieces"] = layer.pieces
            else:
                spec["activation"] = layer.activation.kernel
                spec["alpha"] = layer.activation.alpha
            specs.append(spec)
        elif isinstance(layer, (L.BatchNormalization, L.Normalization)):
            if pending is not None:
                specs.append(_affine(*pending))
            scale, shift = layer.inference_affine()
            if (last is not None and last["kind"] == "dense" and last["activation"] == "linear"
                    and last.get("pieces", 1) == 1 and pending is None):
                last["W"] = last["W"] * scale
                last["b"] = last["b"] * scale + shift
            else:
                pending = (scale, shift)
        elif isinstance(layer, (L.Activation, L.PReLU)):
            if pending is not None:
                specs.append(_affine(*pending))
                pending = None
                last = specs[-1]
            if isinstance(layer, L.PReLU):
                act, alpha = "prelu", layer.alpha.astype(np.float64)
            else:
                act, alpha = layer.activation.kernel, layer.activation.alpha
            if last is None or last["activation"] != "linear":
                specs.append(_affine(np.ones(layer.input_dim), np.zeros(layer.input_dim)))
                last = specs[-1]
            last["activation"], last["alpha"] = act, alpha
        else:
            raise TypeError(f"cannot deploy layer {layer.name!r} of type {type(layer).__name__}")
    if pending is not None:
        specs.append(_affine(*pending))
    return specs


def _affine(scale, shift):
    return {"kind": "affine", "scale": np.asarray(scale, np.float64),
            "shift": np.asarray(shift, np.float64), "activation": "linear", "alpha": None}


def deploy(model, layout="auto", *, precision=None, calibration=None, **engine_options):
    """Compile `model` for inference: an `InferenceEngine` in the model's dtype.

    Parameters
    ----------
    model : Sequential
    layout : {"auto", "dense", "sparse", "block"}
        Storage of Dense kernels: chosen per layer from density (of single weights and of
        blocks of consecutive outputs) and batch size, or forced ("sparse": CSR,
        "block": block-sparse; see `fastnn.engine`).
    precision : {None, "int8", "bf16"}
        None computes in the model's dtype. "int8" and "bf16" quantize the Dense
        layers of a float32 engine (see `fastnn.quantization`): an opt-in loss of
        precision that `engine.layout()` reports per layer and
        `fastnn.quantization.evaluate` measures.
    calibration : ndarray of shape (n_samples, n_in), optional
        int8 only: representative inputs that fix each layer's input scale and decide
        whether the last layer stays float; without them inputs are scaled per call.
    **engine_options
        Passed to `InferenceEngine` (``max_batch``, ``n_threads``). The engine keeps the
        model's `classes`.
    """
    specs = engine_layers(model)
    dtype = model.dtype.name
    if precision is not None:
        specs = plan_precision(specs, precision, calibration, layout)
        dtype = "float32"
    elif calibration is not None:
        raise ValueError("calibration is for precision='int8'")
    return InferenceEngine(specs, dtype=dtype, layout=layout, classes=model.classes,
                           **engine_options)
