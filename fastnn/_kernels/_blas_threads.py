"""The thread count of the BLAS behind ``scipy.linalg.cython_blas``, where it can be set,
and the kernels it chose for this CPU.

scipy's wheels ship OpenBLAS with the ``scipy_openblas_`` symbol prefix; distribution
builds link a plain OpenBLAS. Both expose a ``set_num_threads`` entry point, found here
among the libraries loaded into the process. Elsewhere (another BLAS, another OS) the
BLAS keeps its own setting and these functions do nothing.

`ADDRESSES` holds the addresses of the two entry points, through which the kernels put
the BLAS on one thread while they run (see `fastnn._kernels._threads`).
"""
import ctypes
import sys

_PREFIXES = ("scipy_openblas_", "openblas_")


def _find_openblas():
    if not sys.platform.startswith("linux"):
        return None
    import scipy.linalg.cython_blas  # noqa: F401  (loads the BLAS that the kernels call)
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths, key=lambda p: "scipy" not in p):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for prefix in _PREFIXES:
            setter = getattr(lib, prefix + "set_num_threads", None)
            getter = getattr(lib, prefix + "get_num_threads", None)
            core = getattr(lib, prefix + "get_corename", None)
            if setter is not None and getter is not None:
                setter.argtypes, setter.restype = [ctypes.c_int], None
                getter.argtypes, getter.restype = [], ctypes.c_int
                if core is not None:
                    core.argtypes, core.restype = [], ctypes.c_char_p
                return setter, getter, core
    return None


_OPENBLAS = _find_openblas()
ADDRESSES = (None if _OPENBLAS is None else
             tuple(ctypes.cast(f, ctypes.c_void_p).value for f in _OPENBLAS[:2]))


def set_blas_threads(n):
    """Use `n` BLAS threads (the BLAS's own setting, which fastnn's kernels leave alone)."""
    if _OPENBLAS is not None:
        _OPENBLAS[0](int(n))


def get_blas_threads():
    """The BLAS's thread count, or None when it cannot be read."""
    return _OPENBLAS[1]() if _OPENBLAS is not None else None


def get_blas_core():
    """The CPU kernels OpenBLAS chose at load, e.g. "Haswell" (AVX2) or "SkylakeX"
    (AVX-512), or None when it cannot be read. The environment variable
    ``OPENBLAS_CORETYPE`` overrides OpenBLAS's own choice: on a Zen 5 machine whose
    environment set it to Haswell, the eight products of a 784-256-128-10 training step
    at batch 128 took 1.12-1.16 ms on one thread, against 0.62-0.65 ms with SkylakeX
    (`bench/bench_hot_paths.py`). fastnn's float32 training step calls BLAS only where
    the CPU lacks AVX-512F or `dense.use_packed(False)` was called (and for layers of
    fewer than 32 units)."""
    if _OPENBLAS is None or _OPENBLAS[2] is None:
        return None
    name = _OPENBLAS[2]()
    return name.decode("ascii", "replace") if name else None
