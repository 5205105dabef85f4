"""fastnn: a compact CPU engine for training dense neural networks and serving pruned ones."""
__version__ = "0.1.0"

import os as _os

# Idle OpenMP threads sleep instead of spinning, so that they never compete for the cores
# with the BLAS threads of the next matrix product (set it yourself to choose otherwise).
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from fastnn._config import config, get_num_threads, set_num_threads, show_config
from fastnn import (activations, callbacks, constraints, datasets, initializers, layers, losses,
                    optimizers, regularizers, schedules)
from fastnn.errors import ModelFormatError
from fastnn import io
from fastnn.model import Sequential
from fastnn.saving import load_model, model_from_bytes
from fastnn.engine import InferenceEngine, load_engine, engine_from_bytes
from fastnn.deployment import deploy
from fastnn import diagnostics, pruning, quantization, saving
from fastnn.interop import from_onnx, from_sklearn, from_torch, to_onnx, to_torch

__all__ = [
    "__version__", "config", "show_config", "get_num_threads", "set_num_threads",
    "Sequential", "load_model", "model_from_bytes", "ModelFormatError", "deploy",
    "InferenceEngine", "load_engine", "engine_from_bytes",
    "from_onnx", "to_onnx", "from_torch", "to_torch", "from_sklearn",
    "activations", "callbacks", "constraints", "datasets", "diagnostics", "initializers", "io",
    "layers", "losses", "optimizers", "pruning", "quantization", "regularizers", "saving",
    "schedules",
]
