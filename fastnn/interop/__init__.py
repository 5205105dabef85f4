"""Models in and out: ONNX import and export, PyTorch and scikit-learn import.

Every importer translates a foreign network into a chain of steps that
`fastnn.interop._chain.build` turns into a `fastnn.Sequential`; each converter is a
table from op or module type to a small function. onnx, torch and scikit-learn are
imported only inside the functions that need them.
"""
from fastnn.interop.from_sklearn import from_sklearn
from fastnn.interop.onnx_export import to_onnx
from fastnn.interop.onnx_import import from_onnx
from fastnn.interop.pytorch import from_torch, to_torch

__all__ = ["from_onnx", "to_onnx", "from_torch", "to_torch", "from_sklearn"]
