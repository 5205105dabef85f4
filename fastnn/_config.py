"""Build and runtime configuration."""
import sys

import numpy as np

from fastnn._kernels._blas_threads import get_blas_core, get_blas_threads
from fastnn._kernels._threads import get_num_threads, openmp_enabled, set_num_threads
from fastnn._kernels.quant import paths as quant_paths

__all__ = ["show_config", "get_num_threads", "set_num_threads", "config"]


def _scipy_blas():
    try:
        import scipy
        blas = scipy.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    except Exception:  # scipy builds differ in what they report
        return "unknown"


def config():
    """The configuration as a dict (what `show_config` prints)."""
    from fastnn import __version__
    import scipy
    return {
        "fastnn": __version__,
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "openmp": openmp_enabled(),
        "threads": get_num_threads(),
        "blas": _scipy_blas(),
        "blas_threads": get_blas_threads(),
        "blas_core": get_blas_core(),
        "dtypes": ["float32", "float64"],
        "int8_path": quant_paths()["int8"],
        "bf16_path": quant_paths()["bf16"],
    }


def show_config():
    """Print the version, OpenMP, thread count, the BLAS scipy uses (its threads and the
    CPU kernels it chose), the dtypes and the live paths of the int8 and bf16 kernels (see
    `fastnn._kernels.quant.paths`)."""
    for key, value in config().items():
        if isinstance(value, list):
            value = ", ".join(value)
        elif isinstance(value, bool):
            value = "on" if value else "off (serial build)"
        print(f"{key:>12}: {value}")
