"""Inference engine: a network compiled into one plan, each layer stored dense or sparse.

An `InferenceEngine` is built from a list of layer specs, independent of any model
class, so that a deployment step only has to translate layers:

- ``{"kind": "dense", "W": (n_in, n_out), "b": (n_out,) or None, "activation": name,
  "alpha": float or (units,) or None, "pieces": int}``: ``Y := act(X @ W + b)``; with
  ``pieces > 1`` it is a maxout layer, ``Y[:, u] := act(max_p Z[:, u * pieces + p])``
  over ``units = n_out / pieces`` groups of consecutive columns of ``Z = X @ W + b``;
- ``{"kind": "affine", "scale": (n,), "shift": (n,), "activation": name, "alpha": ...}``:
  ``Y := act(X * scale + shift)``, a per-feature affine that could not be folded.

A dense layer may give ``"csr": (indptr, indices, data)`` and ``"n_in"`` instead of
``W``: the CSR arrays of W.T as made by `fastnn._kernels.sparse.csr_from_dense`
(column indices strictly increasing within each row); or ``"bsr": (indptr, indices,
values)``, ``"n_in"`` and ``"n_out"`` (W's width): W in blocks of 4, 8 or 16
consecutive outputs as made by `fastnn._kernels.blocksparse.bsr_from_dense`.

A dense layer may also give ``"precision": "int8"`` or ``"bf16"`` (float32 engines; see
`fastnn.quantization.plan_precision`): its W is quantized (or given quantized as ``"Wq"``
with ``"w_scale"``, or ``"Wh"``), with ``"x_scale"`` and ``"x_signed"`` for int8 inputs
and, for int8, ``"block"``: 4, 8 or 16 to run the product over the blocks of that many
consecutive outputs of one input row that hold a nonzero (identical results, fewer
bytes to read for a layer pruned in blocks), 0 or absent for the dense product.

``predict`` is a single call into compiled code that runs every layer without the
GIL (see `fastnn._kernels.engine`).

Choosing a layer's storage
--------------------------
A dense layer is kept dense (BLAS GEMV for one row, GEMM otherwise), in CSR (the
kernels of `fastnn._kernels.sparse`), in blocks of 1x4, 1x8 or 1x16 (the kernel of
`fastnn._kernels.blocksparse`), or dense and one sparse form, from a cost model fitted on the
development machine (AMD EPYC Zen 4, 2 cores, AVX-512, OpenBLAS 0.3.30) with
``python bench/bench_engine.py --calibrate``, which times both forms of single
layers of several shapes over densities and batch sizes. On that machine the
time of the CSR kernels relative to the dense ones depends, to first order, on
the density and the batch size, much less on the layer's shape; so the model is
a crossover density per range of batch sizes (`CROSSOVER_DENSITY`): CSR runs for
a chunk of m rows when the layer's density is at most the crossover at m, with
the lowest crossover measured over the shapes as the margin. The crossover is
low for one row (GEMV streams the weights at memory speed), nil for 2 to 15 rows
(the packed dense kernel is fast there, the CSR kernel for several rows is not), and
low again for more rows. Where CSR wins at one row and at many, the engine takes the
range of many rows (`sparse_batches`) and runs CSR for a chunk of one row too
(`InferenceEngine.layout`'s ``csr_one_row``).
A layer keeps both forms only when the crossover splits the range of chunk sizes
(1 to ``max_batch``); the choice is a function of the weights alone, so a loaded
engine makes the same one. `InferenceEngine.layout` reports it with the density
and the crossovers.

The block-sparse form is costed the same way, by the density of its blocks (the
share of blocks of b consecutive outputs of one input row that hold a nonzero, so a
layer pruned in blocks elsewhere is found by its zeros) against crossover densities
per block width (`BLOCK_CROSSOVER_DENSITY`, fitted with
``python bench/bench_blocksparse.py --calibrate``). Of the sparse forms whose
crossover the layer passes for some chunk size, the engine keeps the one of lowest
estimated time, ``density / crossover`` relative to dense summed over the batch sizes
of `ESTIMATE_BATCHES` (1 where dense runs instead).

Large chunks of a dense network run blockwise (each block of rows through every layer
on one thread), which one layer running sparse at that size prevents. Where the layers
sparse there hold less than half the network's weights, their sparse ranges stop below
it (`_blockwise_cut`; `layout()` says so in the reason).
"""
import json
import os
import sys

import numpy as np

from fastnn._kernels._checks import as_input, resolve_threads
from fastnn._kernels._memory import gather
from fastnn._kernels._threads import get_num_threads
from fastnn._kernels.activations import CODES, DEFAULT_ALPHA
from fastnn._kernels.blocksparse import (BLOCKS, block_density, bsr_from_dense, check_bsr,
                                         dense_from_bsr)
from fastnn._kernels.engine import BLOCKWISE_ROWS, KINDS, Plan, chunk_rows
from fastnn._kernels.quant import QuantDense, quantize_weights, to_bf16
from fastnn._kernels.sparse import (check_canonical, check_csr, csr_from_dense, dense_from_csr,
                                    index_dtype)
from fastnn._validation import check_choice, check_int
from fastnn import labels
from fastnn.errors import ModelFormatError
from fastnn.io import (check_metadata, parse_json, read_file, save_tensors, tensors_from_bytes,
                       tensors_to_bytes)

__all__ = ["InferenceEngine", "load_engine", "engine_from_bytes", "CROSSOVER_DENSITY",
           "sparse_batches", "sparse_form"]

FORMAT = "fastnn-engine"
FORMAT_VERSION = "3"
# What each readable version calls things: the tensor of a CSR layer's nonzero values,
# whether a layer's "n_out" is its width before maxout (version 1) or its output, and
# the storages a dense layer may have.
VERSIONS = {"1": {"values": "data", "n_out_before_maxout": True, "storages": ("dense", "csr")},
            "2": {"values": "values", "n_out_before_maxout": False,
                  "storages": ("dense", "csr")},
            "3": {"values": "values", "n_out_before_maxout": False,
                  "storages": ("dense", "csr", "bsr")}}
LAYOUTS = ("auto", "dense", "sparse", "block")
FORCED = {"csr": "sparse", "bsr": "block"}
"""The layout that forces each sparse storage."""
DTYPES = ("float32", "float64")
PRECISIONS = ("float", "int8", "bf16")
QUANT_WEIGHTS = {"int8": ("Wq", np.int8), "bf16": ("Wh", np.uint16)}
"""Name and dtype of the stored weights of each quantized precision."""

CROSSOVER_DENSITY = ((1, 0.10), (15, 0.0), (95, 0.05), (sys.maxsize, 0.04))
"""(batch, density) steps: for chunks up to ``batch`` rows (and above the step before),
CSR beats dense when the layer's density is at most ``density``.

Measured crossovers (``--calibrate``, layers 784x256, 256x128 and 1024x1024) on one
thread on the development machine (AMD EPYC Zen 4, AVX-512), against the dense path of
today (BLAS below `PACKED_MIN_ROWS` rows, the packed kernel from there): 0.10-0.20 for
one row; 0.00-0.02 for 2-6 and 12 rows (below 0.05 wherever CSR won at all: the CSR
kernel for several rows is fast at 8 and 16 rows only, the dense one fast from 5);
0.05-0.15 for 8, 0.20 for 16 and 32, 0.30-0.40 for 128 rows. With two threads (the
default) the earlier calibration found 0.15-0.30 for 128, 0.10-0.30 for 256 and
0.10-0.25 for 1024 rows. The table takes the lowest, and dense for 2 to 15 rows, where
CSR at 80-90% sparsity ran 2-7x slower than dense. For 128 rows on two threads the
single layers of 256x128 broke even at 0.15 (0.12: 0.45 of dense) and the 784-256-128-10
network at 85% sparsity ran 1.15x dense with every layer in CSR (a dense network runs
such chunks blockwise, in blocks of rows through every layer on one thread, which a
layer in CSR forgoes).

On a 2-core Intel Xeon with AVX-512 (default threads), CSR pays less from 32 rows: the
784x256 layer at density 0.10 ran 1.32x dense at 32 rows and 1.21-1.30x at 256-1024,
at 0.05 0.34x at 32 rows, 0.63x at 128 and 0.99-1.06x at 256-1024; 256x128 at 0.05
ran 0.61-0.68x up to 256 rows and 1.71x at 1024. The network at 90% sparsity ran
1.08-1.39x dense from 32 rows with the Zen 4 steps (0.20, 0.12, 0.11). The steps from
16 rows are the lower of the two machines: 0.05 up to 95 rows, and 0.04 from 96 rows,
where a dense network then ran blockwise (it does from 40 rows since, on Zen 5; the
network at 95% ran 0.94-1.20x dense at 128 rows in CSR, 1.08x at 256) and 784x256
broke even at 0.05 and 256x128 lost.
"""

BLOCK_CROSSOVER_DENSITY = {
    4: ((1, 0.10), (2, 0.10), (8, 0.10), (32, 0.20), (128, 0.20), (256, 0.20),
        (sys.maxsize, 0.20)),
    8: ((1, 0.30), (2, 0.30), (8, 0.30), (32, 0.30), (128, 0.30), (256, 0.30),
        (sys.maxsize, 0.30)),
    16: ((1, 0.40), (2, 0.40), (8, 0.40), (32, 0.40), (128, 0.40), (256, 0.40),
         (sys.maxsize, 0.40)),
}
"""Per block width, (batch, block density) steps as in `CROSSOVER_DENSITY`: the block-
sparse form beats dense for chunks up to ``batch`` rows when the layer's block
density is at most ``density``.

Measured crossovers on the development machine (AMD EPYC Zen 4, AVX-512, 2 cores,
shared, so timed on one thread; ``--calibrate``, layers 256x128 and 784x256):

====  ==========  =========  =========  =========  =========  =========  ==========
      1 row       2 rows     4 rows     7-8 rows   15 rows    32 rows    256, 1024
====  ==========  =========  =========  =========  =========  =========  ==========
1x4   0.30-0.45   0.20-0.30  0.10       0.30-0.80  0.30-0.80  0.45       0.30
1x8   0.60-0.80   0.30-0.80  0.30-0.45  0.80       0.80       0.80       0.80
1x16  0.80        0.45-0.60  0.80       0.80       0.80       0.80       0.80
====  ==========  =========  =========  =========  =========  =========  ==========

Each step takes the lowest crossover of the batches it covers, less a margin (0.60
where 0.80 was measured), lowered further where needed so that the batches where
blocks win form one range (one row takes the crossover of two). Two rows run as two
single rows (their kernel for one row is the fastest per row) while GEMM gains from
the second row; 4 rows of 1x4 blocks run the 8-row kernel, half of it wasted.

On a 2-core Intel Xeon with AVX-512 the blocks pay less from 8 rows:

====  ==========  =========  =========  ==========
      1 row       8 rows     32 rows    256, 1024
====  ==========  =========  =========  ==========
1x4   0.30-0.45   0.20-0.30  0.20       0.20
1x8   0.45        0.30-0.45  0.30-0.45  0.30-0.45
1x16  0.45-0.80   0.45-0.60  0.45-0.60  0.45-0.60
====  ==========  =========  =========  ==========

(1x8 at 0.45 ran 0.90-1.11x dense, 1x16 at 0.45 0.74-1.00x.) The steps are the lower
of the two machines, with the margin: 1x4 0.10 up to 8 rows and 0.20 above, 1x8 0.30,
1x16 0.40.
"""

# Limits of the loader; a file beyond them is refused before anything is allocated.
MAX_LAYERS = 4096
MAX_WIDTH = 1 << 22
MAX_BATCH = 1 << 16
DEFAULT_MAX_BATCH = 1024


def sparse_batches(density, chunk, table=CROSSOVER_DENSITY):
    """(lo, hi): the sparse form of `table` (CSR by default) runs for chunks of lo to hi
    rows; (1, 0) when it never wins.

    The batches for which `density` is below the crossovers may form two ranges (the CSR
    table dips to 0 from 2 to 15 rows); the range of the largest batches that starts at
    most at `chunk` is taken.
    """
    runs, below = [], 1
    for upto, crossover in table:
        if density <= crossover:
            if runs and runs[-1][1] == below - 1:
                runs[-1][1] = upto
            else:
                runs.append([below, upto])
        below = upto + 1
    runs = [run for run in runs if run[0] <= chunk]
    if not runs:
        return 1, 0
    lo, hi = runs[-1]
    return lo, (sys.maxsize if hi >= chunk else hi)


def _is_int(x):
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _array(x, name, dtype, shape):
    """x as a fresh C-ordered array of `dtype` and `shape`, finite; ValueError otherwise."""
    try:
        a = np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} is not a numeric array: {exc}") from None
    if a.dtype.kind not in "biuf":
        raise ValueError(f"{name} has dtype {a.dtype}; expected a real numeric array")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} has shape {a.shape}, expected {tuple(shape)}")
    a = np.array(a, dtype=dtype, order="C", copy=True)
    if not np.isfinite(a).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return a


def _activation(spec, name):
    act = spec.get("activation", "linear")
    if act is None:
        act = "linear"
    if not isinstance(act, str) or act not in CODES:
        raise ValueError(f"{name}: unknown activation {act!r}; valid names: "
                         f"{', '.join(sorted(CODES))}")
    return act


def _alpha(spec, act, units, dtype, name):
    alpha = spec.get("alpha")
    if act == "prelu":
        if alpha is None:
            raise ValueError(f"{name}: prelu needs alpha, one slope per unit")
        if np.ndim(alpha) == 0:
            alpha = np.full(units, alpha)
        return _array(alpha, f"{name} alpha", dtype, (units,))
    if alpha is None:
        alpha = DEFAULT_ALPHA.get(act, 0.0)
    if np.ndim(alpha) != 0:
        raise ValueError(f"{name}: {act} takes a scalar alpha, got shape {np.shape(alpha)}")
    return _array(np.reshape(alpha, 1), f"{name} alpha", dtype, (1,))


class _Layer:
    """One validated layer: its arrays in the engine's dtype and its storage decision."""

    def __init__(self, kind, act, n_in, n_z, pieces, arrays):
        self.kind, self.act, self.n_in, self.n_z, self.pieces = kind, act, n_in, n_z, pieces
        self.n_out = n_z // pieces
        self.arrays = arrays          # W, indptr, indices, data, b, alpha, scale, shift
        self.sparse_batches = (1, 0)
        self.sparse_one_row = False   # CSR also for one row, below sparse_batches
        self.block = 0                # block width of the sparse form; 0 for CSR
        self.storage_reason = ""
        self.cut_at = None            # rows from which it runs dense, for a blockwise network
        self.nnz = None
        self.precision = "float"      # or "int8", "bf16": then `quant` holds the weights
        self.precision_reason = ""
        self.quant = None

    @property
    def density(self):
        return self.nnz / (self.n_in * self.n_z) if self.n_in * self.n_z else 1.0

    def plan_spec(self):
        return dict(self.arrays, kind=KINDS[self.kind], act=CODES[self.act], pieces=self.pieces,
                    n_in=self.n_in, n_z=self.n_z, sparse_batches=self.sparse_batches,
                    sparse_one_row=self.sparse_one_row,
                    block=self.block, quant=self.quant)

    def dense_weights(self):
        """W (n_in, n_z), from whichever form the layer holds."""
        a = self.arrays
        if a.get("W") is not None:
            return a["W"]
        if self.block:
            return dense_from_bsr(a["indptr"], a["indices"], a["data"], self.n_in, self.n_z)
        return dense_from_csr(a["indptr"], a["indices"], a["data"], self.n_in)


def _precision(spec, name, dtype):
    precision = spec.get("precision") or "float"
    if precision not in PRECISIONS:
        raise ValueError(f"{name}: unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision != "float" and dtype != np.float32:
        raise ValueError(f"{name}: {precision} layers run in float32 engines, not {dtype.name}")
    if precision != "float" and (spec.get("csr") is not None or spec.get("bsr") is not None):
        raise ValueError(f"{name}: a {precision} layer takes W, not sparse arrays")
    return precision


def _quantized(spec, precision, W, shape):
    """The layer's QuantDense, from float W (quantized here) or from stored weights."""
    key, wdtype = QUANT_WEIGHTS[precision]
    if W is None:
        Wq = np.array(spec[key], copy=True)
        if Wq.dtype != wdtype or Wq.shape != shape:
            raise ValueError(f"{key} must be {np.dtype(wdtype)} of shape {shape}")
    if precision == "bf16":
        if spec.get("block"):
            raise ValueError("block is for int8 layers")
        return QuantDense("bf16", to_bf16(W) if W is not None else Wq)
    block = spec.get("block") or 0
    if not _is_int(block) or block not in (0,) + BLOCKS:
        raise ValueError(f"block must be 0 or one of {BLOCKS}, got {block!r}")
    if W is not None:
        Wq, w_scale = quantize_weights(W)
    else:
        w_scale = _array(spec.get("w_scale"), "w_scale", np.float32, shape[1:])
    x_scale, x_signed = spec.get("x_scale", 0.0), spec.get("x_signed", True)
    if not isinstance(x_signed, (bool, np.bool_)):
        raise ValueError(f"x_signed must be true or false, got {x_signed!r}")
    if not isinstance(x_scale, (int, float, np.floating, np.integer)) or isinstance(x_scale, bool):
        raise ValueError(f"x_scale must be a number, got {x_scale!r}")
    return QuantDense("int8", Wq, w_scale, float(x_scale), bool(x_signed), int(block))


def _dense_layer(spec, i, n_in, dtype):
    name = f"layer {i}"
    csr, bsr = spec.get("csr"), spec.get("bsr")
    precision = _precision(spec, name, dtype)
    if csr is not None and bsr is not None:
        raise ValueError(f"{name}: give csr or bsr arrays, not both")
    sparse = csr if csr is not None else bsr
    if sparse is not None:
        indptr, indices, data = sparse
        n_csr = spec.get("n_in")
        if not _is_int(n_csr) or (n_in is not None and n_csr != n_in):
            raise ValueError(f"{name}: a sparse layer needs n_in="
                             f"{n_in if n_in else 'its fan-in'}, got {n_csr!r}")
        n_in = int(n_csr)
        n_z = len(indptr) - 1
        if bsr is not None:
            n_z = spec.get("n_out")
            if not _is_int(n_z):
                raise ValueError(f"{name}: a bsr layer needs n_out, W's width, got {n_z!r}")
    else:
        W = spec.get("W")
        stored = QUANT_WEIGHTS[precision][0] if precision != "float" else None
        if W is None and stored is None:
            raise ValueError(f"{name}: a dense layer needs W of shape (n_in, n_out)")
        if W is None and spec.get(stored) is None:
            raise ValueError(f"{name}: a {precision} layer needs W or {stored}")
        shape = np.shape(W if W is not None else spec[stored])
        if len(shape) != 2:
            raise ValueError(f"{name}: W must be 2-D (n_in, n_out), got shape {shape}")
        if n_in is not None and shape[0] != n_in:
            raise ValueError(f"{name}: W has shape {shape} but the layer before gives "
                             f"{n_in} features")
        n_in, n_z = shape
        W = None if W is None else _array(W, f"{name} W", dtype, shape)
    if n_in < 1 or n_z < 1:
        raise ValueError(f"{name}: widths must be positive, got n_in={n_in}, n_out={n_z}")
    pieces = spec.get("pieces", 1)
    pieces = 1 if pieces is None else pieces
    if not _is_int(pieces) or pieces < 1 or n_z % pieces:
        raise ValueError(f"{name}: pieces={pieces!r} must be a positive divisor of n_out={n_z}")
    pieces = int(pieces)
    act = _activation(spec, name)
    b = spec.get("b")
    arrays = {"b": None if b is None else _array(b, f"{name} b", dtype, (n_z,)),
              "alpha": _alpha(spec, act, n_z // pieces, dtype, name)}
    layer = _Layer("dense", act, int(n_in), int(n_z), pieces, arrays)
    if csr is not None:
        # private copies first: the kernels must read exactly what was checked
        indptr, indices = np.array(indptr, copy=True), np.array(indices, copy=True)
        check_csr(indptr, indices, data, n_in, n_z)
        check_canonical(indptr, indices)
        arrays.update(indptr=indptr, indices=indices.astype(index_dtype(n_in)),
                      data=_array(data, f"{name} data", dtype, data.shape))
        layer.nnz = int(indptr[-1])
    elif bsr is not None:
        indptr, indices = np.array(indptr, copy=True), np.array(indices, copy=True)
        values = _array(data, f"{name} values", dtype, np.shape(data))
        check_bsr(indptr, indices, values, n_in, n_z)
        arrays.update(indptr=indptr, indices=indices.astype(index_dtype(n_in)), data=values)
        layer.block = values.shape[1]
        layer.nnz = int(np.count_nonzero(values))
    elif precision != "float":
        try:
            layer.quant = _quantized(spec, precision, W, (n_in, n_z))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        layer.precision = precision
        layer.precision_reason = str(spec.get("precision_reason") or f"{precision} requested")
        layer.nnz = int(np.count_nonzero(layer.quant.weights))
    else:
        arrays["W"] = W
        layer.nnz = int(np.count_nonzero(W))
    if precision == "float":  # set by a quantized engine's plan, in any storage
        layer.precision_reason = str(spec.get("precision_reason") or "")
    return layer


def _affine_layer(spec, i, n_in, dtype):
    name = f"layer {i}"
    scale = spec.get("scale")
    if scale is None:
        raise ValueError(f"{name}: an affine layer needs scale of shape (n,)")
    n = np.shape(scale)[0] if np.ndim(scale) == 1 else -1
    if n < 1:
        raise ValueError(f"{name}: scale must be a non-empty 1-D array, got shape "
                         f"{np.shape(scale)}")
    if n_in is not None and n != n_in:
        raise ValueError(f"{name}: scale has shape ({n},) but the layer before gives "
                         f"{n_in} features")
    shift = spec.get("shift")
    act = _activation(spec, name)
    arrays = {"scale": _array(scale, f"{name} scale", dtype, (n,)),
              "shift": _array(np.zeros(n) if shift is None else shift, f"{name} shift",
                              dtype, (n,)),
              "alpha": _alpha(spec, act, n, dtype, name)}
    return _Layer("affine", act, n, n, 1, arrays)


ESTIMATE_BATCHES = (1, 2, 8, 32, 128, 256, 1024)
"""The batch sizes over which sparse forms are compared (`_estimate`)."""


def _estimate(density, table):
    """Time of a sparse form relative to dense, summed over `ESTIMATE_BATCHES`:
    ``density / crossover`` where the form wins, 1 where dense runs instead (the same
    batches for every table, whatever its steps)."""
    total = 0.0
    for batch in ESTIMATE_BATCHES:
        crossover = next(c for upto, c in table if batch <= upto)
        total += min(density / crossover, 1.0) if crossover else float(density > 0)
    return total


def sparse_form(W, layout="auto", chunk=sys.maxsize, density=None, block=0):
    """The sparse form a float layer of weights `W` gets in an engine of `layout`.

    Parameters
    ----------
    W : ndarray of shape (n_in, n_out)
    layout : {"auto", "dense", "sparse", "block"}
    chunk : int
        The engine's rows per chunk (`chunk_rows`). A form chosen for every batch with
        the default, no limit, is chosen for every batch at any chunk.
    density : float, optional
        The layer's density (of the nonzeros stored), else that of W.
    block : int
        The block width of a layer given block-sparse (0 for none), kept by "block".

    Returns
    -------
    (block, (lo, hi), block_densities)
        The block width of the sparse form (0 for CSR), the chunk sizes it runs for
        ((1, 0) for none, hi ``sys.maxsize`` for no limit; dense runs the others) and
        the block density of W for each width of `BLOCKS`.
    """
    densities = {b: block_density(W, b) for b in BLOCKS}
    blocks = {b: (densities[b], BLOCK_CROSSOVER_DENSITY[b]) for b in BLOCKS}
    if layout == "dense":
        return 0, (1, 0), densities
    if layout == "sparse":
        return 0, (1, sys.maxsize), densities
    if layout == "block":
        return (block or min(BLOCKS, key=lambda b: _estimate(*blocks[b])),
                (1, sys.maxsize), densities)
    if density is None:
        density = np.count_nonzero(W) / W.size if W.size else 1.0
    forms = {0: (density, CROSSOVER_DENSITY), **blocks}
    ranges = {f: sparse_batches(d, chunk, table) for f, (d, table) in forms.items()}
    winners = [f for f in forms if ranges[f][0] <= ranges[f][1]]
    block = min(winners, key=lambda f: _estimate(*forms[f])) if winners else 0
    return block, ranges[block], densities


def _choose_storage(layer, layout, chunk, below=None):
    """Set the layer's sparse form (CSR or a block width), the range of batch sizes it
    runs for (below `below` rows, if given) and why, and keep only the forms it needs."""
    a = layer.arrays
    W = layer.dense_weights()
    block, (lo, hi), densities = sparse_form(W, layout, chunk, layer.density, layer.block)
    if below is not None and hi >= below:
        lo, hi = (lo, below - 1) if lo < below else (1, 0)
        layer.cut_at = below
    layer.sparse_batches = lo, hi
    needs_sparse = lo <= hi
    # CSR's two ranges (see the module docstring): one row, below the range taken above.
    layer.sparse_one_row = (needs_sparse and block == 0 and lo > 1 and layout == "auto"
                            and layer.density <= CROSSOVER_DENSITY[0][1])
    needs_dense = not (lo == 1 and hi == sys.maxsize)
    dtype = a["alpha"].dtype
    if needs_sparse and (a.get("indptr") is None or block != layer.block):
        if block:
            a["indptr"], a["indices"], a["data"] = bsr_from_dense(W, block, dtype=dtype)
        else:
            a["indptr"], a["indices"], a["data"] = csr_from_dense(W, dtype=dtype)
    layer.block = block if needs_sparse else 0
    layer.block_density = densities
    if needs_dense and a.get("W") is None:
        a["W"] = W
    if not needs_sparse:
        a["indptr"] = a["indices"] = a["data"] = None
    if not needs_dense:
        a["W"] = None


class InferenceEngine:
    """A network compiled for inference: one call into compiled code per `predict`.

    Parameters
    ----------
    layers : list of dict
        Layer specs, first to last (see the module docstring). The width of each
        layer's input must match the output of the one before.
    dtype : {"float32", "float64"}
        The compute dtype; weights are converted to it.
    layout : {"auto", "dense", "sparse", "block"}
        Storage of dense layers: chosen per layer by the fitted cost model, or forced
        ("sparse": CSR; "block": block-sparse, in the block width of the layer's "bsr"
        arrays when given, else the one the cost model estimates fastest).
    max_batch : int
        Rows per chunk: scratch for this many rows is made ahead of time, and larger
        batches run chunk by chunk.
    n_threads : int, optional
        Threads of the kernels, matrix products included (see README, Threads); default
        the global setting (`fastnn.set_num_threads`).
    classes : sequence, optional
        Class labels, as `fastnn.Sequential.classes`: entry i names output unit i (two
        labels, negative then positive, for one sigmoid unit). `predict_classes` returns them.

    Examples
    --------
    >>> engine = InferenceEngine([{"kind": "dense", "W": W1, "b": b1, "activation": "relu"},
    ...                           {"kind": "dense", "W": W2, "b": b2, "activation": "softmax"}])
    >>> proba = engine.predict(X)
    """

    def __init__(self, layers, dtype="float32", layout="auto", *, max_batch=DEFAULT_MAX_BATCH,
                 n_threads=None, classes=None):
        check_choice(str(dtype), "dtype", DTYPES)
        check_choice(layout, "layout", LAYOUTS)
        max_batch = check_int(max_batch, "max_batch", 1, MAX_BATCH)
        if isinstance(layers, dict) or not hasattr(layers, "__iter__"):
            raise TypeError("layers must be a list of layer specs (dicts)")
        layers = list(layers)
        if not layers:
            raise ValueError("an engine needs at least one layer")
        self._dtype = np.dtype(str(dtype))
        self._layout = layout
        self._max_batch = int(max_batch)
        self.n_threads = n_threads
        built, width = [], None
        for i, spec in enumerate(layers):
            if not isinstance(spec, dict):
                raise TypeError(f"layer {i} must be a dict, got {type(spec).__name__}")
            kind = spec.get("kind")
            if kind == "dense":
                layer = _dense_layer(spec, i, width, self._dtype)
            elif kind == "affine":
                layer = _affine_layer(spec, i, width, self._dtype)
            else:
                raise ValueError(f"layer {i}: unknown kind {kind!r}; valid kinds: affine, dense")
            built.append(layer)
            width = layer.n_out
        self._layers = built
        self._plan = None
        widest = max(max(layer.n_in, layer.n_z) for layer in built)
        chunk = chunk_rows(self._max_batch, widest)
        for layer in built:
            if layer.kind == "dense" and layer.quant is None:
                _choose_storage(layer, layout, chunk)
        if layout == "auto":
            rows, cut = _blockwise_cut(built)
            for layer in cut:
                _choose_storage(layer, layout, chunk, below=rows)
        _on_huge_pages(built)
        self._plan = Plan([layer.plan_spec() for layer in built], self._dtype, self._max_batch,
                          max(2, os.cpu_count() or 1))
        self.n_in = built[0].n_in
        self.n_out = built[-1].n_out
        self.classes = None if classes is None else labels.check_classes(classes, self.n_out)

    @property
    def dtype(self):
        """The compute dtype."""
        return self._dtype

    @property
    def n_threads(self):
        """Threads of the kernels, or None for the global setting."""
        return self._n_threads

    @n_threads.setter
    def n_threads(self, n):
        self._n_threads = None if n is None else resolve_threads(n)

    def __repr__(self):
        shapes = " -> ".join([str(self.n_in)] + [str(layer.n_out) for layer in self._layers])
        return f"InferenceEngine({shapes}, dtype={self._dtype.name}, layout={self._layout!r})"

    def predict(self, X, *, out=None):
        """Y := network(X), one call into compiled code with the GIL released.

        Parameters
        ----------
        X : array_like of shape (batch, n_in)
            Converted to the engine's dtype when of another float or integer dtype; no
            NaN or infinity (the rule of `fastnn._kernels._checks.as_input`).
        out : ndarray of shape (batch, n_out) and the engine's dtype, optional
            C-contiguous, not overlapping X; receives the result (untouched when predict
            raises: with `out`, X is scanned for NaN and infinity before the run).

        Returns
        -------
        Y : ndarray of shape (batch, n_out), or `out`
        """
        n_threads = self._n_threads if self._n_threads is not None else get_num_threads()
        Y = self._plan.predict(X, out, n_threads)
        if Y is None:
            X = as_input(X, self._dtype)
            if X.shape[1] != self.n_in:
                raise ValueError(f"X has shape {X.shape} but the engine expects "
                                 f"(batch, {self.n_in})")
            Y = self._plan.predict(X, out, n_threads)
        return Y

    def predict_classes(self, X):
        """The label of each row of X (see `fastnn.Sequential.predict_classes`)."""
        return labels.decode(self.predict(X), self.classes)

    def layout(self):
        """Per layer: the storage chosen and why.

        Returns
        -------
        list of dict
            ``kind``, ``shape`` (n_in, n_out), ``activation``, and for dense layers
            ``storage`` ("dense", "csr", "bsr", "dense+csr" or "dense+bsr"), ``density``,
            ``block`` ("1x8"... for block-sparse storage, else None), ``block_density``
            (of the blocks stored, else None), ``index_dtype``, ``csr_batches`` (the
            chunk sizes, in rows, that run on the sparse form: a (lo, hi) pair, hi None
            for no limit; None when it never runs), ``csr_one_row`` (whether a chunk of
            one row also runs on CSR, below that range) and ``reason`` with the
            densities and the crossover densities of the cost model.
        """
        def crossovers(table):
            return ", ".join(f"{d:.2f} up to {b if b < sys.maxsize else 'any'} rows"
                             for b, d in table)
        report = []
        for layer in self._layers:
            entry = {"kind": layer.kind, "shape": (layer.n_in, layer.n_z),
                     "activation": layer.act}
            if layer.pieces > 1:
                entry["pieces"] = layer.pieces
            entry["precision"] = self._dtype.name if layer.quant is None else layer.precision
            entry["precision_reason"] = layer.precision_reason or f"{self._dtype.name} engine"
            if layer.quant is not None and layer.quant.block:
                b = layer.quant.block
                entry.update(storage=f"bsr {layer.precision}", density=layer.density,
                             block=f"1x{b}", block_density=block_density(layer.quant.weights, b),
                             index_dtype="uint16", csr_batches=(1, None),
                             reason=f"{layer.precision} weights are stored in 1x{b} blocks")
            elif layer.quant is not None:
                entry.update(storage=f"dense {layer.precision}", density=layer.density,
                             block=None, block_density=None, index_dtype=None, csr_batches=None,
                             reason=f"{layer.precision} weights are stored dense")
                if layer.precision == "int8":
                    entry["inputs"] = ("signed" if layer.quant.x_signed else "unsigned") + (
                        f" int8, static scale {layer.quant.x_scale:.6g}" if layer.quant.x_scale
                        else " int8, scaled per row and call")
            elif layer.kind == "dense":
                lo, hi = layer.sparse_batches
                has_w = layer.arrays.get("W") is not None
                has_csr = layer.arrays.get("indptr") is not None
                sparse = "bsr" if layer.block else "csr"
                entry["storage"] = "+".join(s for s, h in (("dense", has_w), (sparse, has_csr))
                                            if h)
                entry["density"] = layer.density
                entry["block"] = f"1x{layer.block}" if layer.block else None
                entry["block_density"] = layer.block_density[layer.block] if layer.block \
                    else None
                entry["index_dtype"] = index_dtype(layer.n_in).name if has_csr else None
                entry["csr_batches"] = (lo, None if hi == sys.maxsize else hi) if lo <= hi \
                    else None
                entry["csr_one_row"] = layer.sparse_one_row
                blocks = ", ".join(f"1x{b} {d:.3f}" for b, d in layer.block_density.items())
                if self._layout != "auto":
                    entry["reason"] = f"layout={self._layout!r} requested"
                elif layer.block:
                    entry["reason"] = (
                        f"block densities {blocks}: 1x{layer.block} blocks estimated fastest; "
                        f"against crossover densities "
                        f"{crossovers(BLOCK_CROSSOVER_DENSITY[layer.block])}")
                else:
                    entry["reason"] = (f"density {layer.density:.3f} (block densities {blocks}) "
                                       f"against crossover densities "
                                       f"{crossovers(CROSSOVER_DENSITY)}")
                if layer.cut_at is not None:
                    entry["reason"] += (f"; dense from {layer.cut_at} rows, where the network "
                                        f"runs blockwise (its layers sparse there held less "
                                        f"than half its weights)")
            report.append(entry)
        return report

    def specs(self):
        """The compiled layers as specs (see the module docstring), copies in the engine's dtype.

        Dense layers give ``W`` (n_in, n_out) whatever their storage, ``b`` (or None),
        ``activation``, ``alpha`` (a float, or one slope per unit for prelu) and
        ``pieces``; affine layers ``scale``, ``shift``, ``activation`` and ``alpha``.
        ``InferenceEngine(engine.specs(), dtype=engine.dtype.name)`` computes the same.
        """
        specs = []
        for layer in self._layers:
            a = layer.arrays
            alpha = a["alpha"].copy() if layer.act == "prelu" else float(a["alpha"][0])
            spec = {"kind": layer.kind, "activation": layer.act, "alpha": alpha}
            if layer.kind == "dense":
                spec.update(W=layer.dense_weights().copy(), b=None if a["b"] is None else a["b"].copy(),
                            pieces=layer.pieces)
            else:
                spec.update(scale=a["scale"].copy(), shift=a["shift"].copy())
            specs.append(spec)
        return specs

    # -- files ---------------------------------------------------------------

    def save(self, path):
        """Write the engine to a safetensors file (atomically).

        Layers that hold a CSR form are stored as CSR (int64 ``indptr``, uint16 or
        int32 ``indices``, ``values``, as in model files), and so are the float layers
        of an engine of "auto" layout that run dense but whose CSR takes fewer bytes (the
        loader makes them dense again), so the file shrinks with the number of nonzeros;
        those that hold a block-sparse form as its arrays (``values`` of shape (blocks,
        block width), layout "bsr" with its ``block``; int8 layers run in blocks likewise,
        int8 values, with ``w_scale``); the others as dense
        ``W`` of shape (n_in, n_out * pieces), or ``Wq`` (int8) and ``w_scale``, or ``Wh``.
        The metadata holds the format name and version, the dtype, the requested layout,
        ``max_batch`` and a JSON list of the layers (kind, activation, n_in, n_out (the
        output width, after maxout), and for dense layers pieces, layout and whether
        there is a bias). Read it back with `load_engine`.
        """
        save_tensors(path, *self._file_contents())

    def to_bytes(self):
        """The bytes `save` would write; `engine_from_bytes` reads them back."""
        return tensors_to_bytes(*self._file_contents())

    def __getstate__(self):
        # Pickles carry the file's bytes only, read back by the validated loader. The
        # thread count stays behind: an unpickled engine follows its new process's setting.
        return {"fastnn-engine": self.to_bytes()}

    def __setstate__(self, state):
        self.__dict__.update(engine_from_bytes(state["fastnn-engine"]).__dict__)

    def _file_contents(self):
        """(tensors, metadata) of the engine's file."""
        tensors, described = {}, []
        for i, layer in enumerate(self._layers):
            a = layer.arrays
            entry = {"kind": layer.kind, "activation": layer.act, "n_in": layer.n_in,
                     "n_out": layer.n_out}
            if layer.kind == "dense":
                csr = a.get("indptr") is not None
                if not csr and layer.quant is None and self._layout == "auto":
                    a = dict(a, **_smaller_csr(a["W"]))
                    csr = a.get("indptr") is not None
                entry.update(pieces=layer.pieces,
                             layout=("bsr" if layer.block else "csr") if csr else "dense",
                             bias=a["b"] is not None)
                if csr and layer.block:
                    entry["block"] = layer.block
                names = ("indptr", "indices", "data") if csr else ("W",)
                if layer.quant is not None:
                    q = layer.quant
                    entry.update(precision=layer.precision, precision_reason=layer.precision_reason)
                    names = (QUANT_WEIGHTS[layer.precision][0],)
                    a = dict(a, **{names[0]: q.weights})
                    if layer.precision == "int8":
                        entry.update(x_scale=q.x_scale, x_signed=q.x_signed)
                        if q.block:  # its blocks, int8 values
                            entry.update(layout="bsr", block=q.block)
                            names = ("indptr", "indices", "data")
                            indptr, indices, values = bsr_from_dense(q.weights, q.block,
                                                                     dtype=np.float32)
                            a.update(indptr=indptr, indices=indices,
                                     data=values.astype(np.int8))
                        names += ("w_scale",)
                        a["w_scale"] = q.w_scale
                elif layer.precision_reason:  # a float layer of a quantized engine
                    entry["precision_reason"] = layer.precision_reason
                names += ("b",) if a["b"] is not None else ()
            else:
                names = ("scale", "shift")
            for name in names + ("alpha",):
                tensors[f"{i}.{'values' if name == 'data' else name}"] = a[name]
            described.append(entry)
        return tensors, {
            "format": FORMAT, "format_version": FORMAT_VERSION, "dtype": self._dtype.name,
            "layout": self._layout, "max_batch": str(self._max_batch),
            "layers": json.dumps(described), "classes": json.dumps(labels.to_json(self.classes))}


def _smaller_csr(W):
    """The CSR arrays of a pruned W where they take fewer bytes than W, else {}: a layer
    that runs dense is stored as CSR all the same, and made dense again when loaded."""
    nnz = np.count_nonzero(W)
    if nnz * (W.itemsize + 4) + (W.shape[1] + 1) * 8 >= W.nbytes:
        return {}
    indptr, indices, data = csr_from_dense(W, dtype=W.dtype)
    return {"indptr": indptr, "indices": indices.astype(index_dtype(W.shape[0])), "data": data}


def _blockwise_cut(layers):
    """(rows, layers): from `rows` rows (at least `BLOCKWISE_ROWS`) the network should run
    blockwise (a block of rows through every layer on one thread), which any layer sparse
    there prevents; `layers` are those to run dense from there. That is the first size at
    which the layers that run sparse hold less than half the network's weights: what such
    small layers gain costs less than the blockwise path (the 784-256-128-10 network at
    95%, its last layer alone in 1x8 blocks from 129 rows, ran 1.38x dense at 256 rows).
    (None, []) when no layer runs sparse at blockwise sizes."""
    sizes = [layer.n_in * layer.n_z for layer in layers]
    ranges = [layer.sparse_batches if layer.kind == "dense" and layer.quant is None
              else (1, 0) for layer in layers]
    # where the set of sparse layers can change: where a range starts or ends
    sizes_at = {BLOCKWISE_ROWS} | {r for lo, hi in ranges for r in (lo, hi + 1)
                                   if BLOCKWISE_ROWS <= r < sys.maxsize}
    for rows in sorted(sizes_at):
        sparse = [i for i, (lo, hi) in enumerate(ranges) if lo <= rows <= hi]
        if sparse and 2 * sum(sizes[i] for i in sparse) < sum(sizes):
            return rows, [layers[i] for i, (lo, hi) in enumerate(ranges)
                          if lo <= hi and hi >= rows]
    return None, []


def _on_huge_pages(layers):
    """Moves the layers' arrays, and those a quantized layer's kernels read, into one
    block of memory on huge pages (see `fastnn._kernels._memory`): the same values, read
    at the same speed whatever physical pages the engine was given."""
    places = [(layer.arrays, name) for layer in layers
              for name, a in layer.arrays.items() if isinstance(a, np.ndarray)]
    quants = [layer.quant for layer in layers if layer.quant is not None]
    held = [q.kernel_arrays() for q in quants]
    copies = gather([a[n] for a, n in places] + [x for arrays in held for x in arrays])
    for (arrays, name), copy in zip(places, copies):
        arrays[name] = copy
    start = len(places)
    for q, arrays in zip(quants, held):
        q.use_arrays(copies[start:start + len(arrays)])
        start += len(arrays)


def _fail(message):
    raise ModelFormatError(message)


def _meta_int(entry, key, low, high, where):
    value = entry.get(key)
    if not _is_int(value) or not low <= value <= high:
        _fail(f"{where}: {key}={value!r} must be an integer in [{low}, {high}]")
    return int(value)


def _tensor(tensors, name, dtype, shape):
    """The tensor `name`, checked for the dtype and shape the file declares.

    Its values (finite, a valid CSR) are checked, and the array copied, once, where the
    engine builds its layers from specs (`_dense_layer`, `_affine_layer`).
    """
    if name not in tensors:
        _fail(f"tensor {name!r} is missing")
    t = tensors[name]
    if t.dtype != dtype:
        _fail(f"tensor {name!r} has dtype {t.dtype}, expected {np.dtype(dtype)}")
    if t.shape != tuple(shape):
        _fail(f"tensor {name!r} has shape {t.shape}, expected {tuple(shape)}")
    return t


def _precision_reason(entry, where):
    reason = entry.get("precision_reason")
    if not isinstance(reason, str) or len(reason) > 1000:
        _fail(f"{where}: precision_reason must be a short string")
    return reason


def _bsr_from_file(entry, where, tensors, prefix, shape, dtype):
    """The block-sparse arrays (indptr, indices, values of `dtype`) of a layer of W's
    `shape` stored in blocks of its entry's ``block``, checked for dtypes and shapes."""
    n_in, n_z = shape
    block = _meta_int(entry, "block", min(BLOCKS), max(BLOCKS), where)
    if block not in BLOCKS:
        _fail(f"{where}: block={block} is not one of {BLOCKS}")
    n_cols = -(-n_z // block)
    values = prefix + "values"
    if values not in tensors:
        _fail(f"tensor {values!r} is missing")
    vshape = tensors[values].shape
    if len(vshape) != 2 or vshape[1] != block or vshape[0] > n_in * n_cols:
        _fail(f"tensor {values!r} has shape {vshape}; expected (blocks, {block}) with "
              f"at most {n_in * n_cols} blocks")
    return (_tensor(tensors, prefix + "indptr", np.int64, (n_cols + 1,)),
            _tensor(tensors, prefix + "indices", index_dtype(n_in), vshape[:1]),
            _tensor(tensors, values, dtype, vshape))


def _quantized_from_file(entry, where, precision, storage, tensors, prefix, shape, spec):
    """Fill `spec` with a quantized layer's weights and settings; the keys they add. int8
    weights run in blocks ("bsr") are stored as their blocks, int8 values."""
    if precision not in QUANT_WEIGHTS or storage not in (
            ("dense", "bsr") if precision == "int8" else ("dense",)):
        _fail(f"{where}: unknown precision {precision!r} with layout {storage!r}")
    name, wdtype = QUANT_WEIGHTS[precision]
    spec.update(precision=precision, precision_reason=_precision_reason(entry, where))
    if storage == "bsr":
        arrays = _bsr_from_file(entry, where, tensors, prefix, shape, np.int8)
        try:
            check_bsr(*arrays, *shape)
        except ValueError as exc:
            _fail(f"{where}: {exc}")
        spec[name] = dense_from_bsr(*arrays, *shape)
        spec["block"] = arrays[2].shape[1]
    else:
        spec[name] = _tensor(tensors, prefix + name, wdtype, shape)
    if precision == "bf16":
        return {"precision", "precision_reason"}
    if spec[name].min() < -127:
        _fail(f"{where}: int8 weights must lie in [-127, 127]")
    spec["w_scale"] = _tensor(tensors, prefix + "w_scale", np.float32, shape[1:])
    if not (spec["w_scale"] > 0).all():
        _fail(f"{where}: w_scale must be positive")
    x_scale, x_signed = entry.get("x_scale"), entry.get("x_signed")
    if not isinstance(x_scale, (int, float)) or isinstance(x_scale, bool) \
            or not (np.isfinite(x_scale) and x_scale >= 0):
        _fail(f"{where}: x_scale must be a finite number >= 0, got {x_scale!r}")
    if not isinstance(x_signed, bool):
        _fail(f"{where}: x_signed must be true or false")
    spec.update(x_scale=float(x_scale), x_signed=x_signed)
    return {"precision", "precision_reason", "x_scale", "x_signed"} | (
        {"block"} if storage == "bsr" else set())


def _layer_from_file(entry, i, tensors, dtype, layout, width, used, version):
    """The spec of layer `i` of a file, and its output width; ModelFormatError when the
    description or the tensors disagree with the format `version` (a `VERSIONS` entry)."""
    where = f"layer {i}"
    if not isinstance(entry, dict):
        _fail(f"{where}: description must be a JSON object")
    kind = entry.get("kind")
    if kind not in ("dense", "affine"):
        _fail(f"{where}: unknown kind {kind!r}")
    act = entry.get("activation")
    if not isinstance(act, str) or act not in CODES:
        _fail(f"{where}: unknown activation {act!r}")
    n_in = _meta_int(entry, "n_in", 1, MAX_WIDTH, where)
    n_out = _meta_int(entry, "n_out", 1, MAX_WIDTH, where)
    if width is not None and n_in != width:
        _fail(f"{where}: takes {n_in} features but the layer before gives {width}")
    spec = {"kind": kind, "activation": act}
    prefix = f"{i}."
    if kind == "dense":
        keys = {"kind", "activation", "n_in", "n_out", "pieces", "layout", "bias"}
        pieces = _meta_int(entry, "pieces", 1, MAX_WIDTH, where)
        if version["n_out_before_maxout"]:
            n_z = n_out
            if n_z % pieces:
                _fail(f"{where}: pieces={pieces} does not divide n_out={n_z}")
        else:
            n_z = n_out * pieces
            if n_z > MAX_WIDTH:
                _fail(f"{where}: n_out * pieces = {n_z} exceeds {MAX_WIDTH}")
        storage = entry.get("layout")
        if storage not in version["storages"]:
            _fail(f"{where}: unknown layout {storage!r}")
        if storage != "dense" and layout not in ("auto", FORCED[storage]):
            _fail(f"{where}: {storage} storage in an engine of {layout} layout")
        if not isinstance(entry.get("bias"), bool):
            _fail(f"{where}: bias must be true or false")
        units = n_z // pieces
        spec["pieces"] = pieces
        precision = entry.get("precision", "float")
        if precision == "float" and "precision_reason" in entry:
            # a float layer of a quantized engine, in any storage
            spec["precision_reason"] = _precision_reason(entry, where)
            keys.add("precision_reason")
        if precision != "float":
            keys |= _quantized_from_file(entry, where, precision, storage, tensors, prefix,
                                         (n_in, n_z), spec)
            names = ["indptr", "indices", "values"] if storage == "bsr" else \
                [QUANT_WEIGHTS[precision][0]]
            names += ["w_scale"] if precision == "int8" else []
        elif storage == "dense":
            spec["W"] = _tensor(tensors, prefix + "W", dtype, (n_in, n_z))
            names = ["W"]
        elif storage == "bsr":
            keys.add("block")
            spec["bsr"] = _bsr_from_file(entry, where, tensors, prefix, (n_in, n_z), dtype)
            spec.update(n_in=n_in, n_out=n_z)
            names = ["indptr", "indices", "values"]
        else:
            values = prefix + version["values"]
            indptr = _tensor(tensors, prefix + "indptr", np.int64, (n_z + 1,))
            if values not in tensors:
                _fail(f"tensor {values!r} is missing")
            nnz = tensors[values].shape[0] if tensors[values].ndim == 1 else -1
            if nnz < 0:
                _fail(f"tensor {values!r} must be 1-D")
            if nnz > n_in * n_z:
                _fail(f"{where}: {nnz} nonzeros in a {n_in} x {n_z} matrix")
            spec["csr"] = (indptr, _tensor(tensors, prefix + "indices", index_dtype(n_in), (nnz,)),
                           _tensor(tensors, values, dtype, (nnz,)))
            spec["n_in"] = n_in
            names = ["indptr", "indices", version["values"]]
        if entry["bias"]:
            spec["b"] = _tensor(tensors, prefix + "b", dtype, (n_z,))
            names.append("b")
    else:
        keys = {"kind", "activation", "n_in", "n_out"}
        if n_in != n_out:
            _fail(f"{where}: an affine layer maps {n_in} features to {n_out}")
        units = n_in
        spec["scale"] = _tensor(tensors, prefix + "scale", dtype, (n_in,))
        spec["shift"] = _tensor(tensors, prefix + "shift", dtype, (n_in,))
        names = ["scale", "shift"]
    if set(entry) != keys:
        _fail(f"{where}: description has keys {sorted(entry)}, expected {sorted(keys)}")
    spec["alpha"] = _tensor(tensors, prefix + "alpha", dtype, (units if act == "prelu" else 1,))
    if act != "prelu":
        spec["alpha"] = float(spec["alpha"][0])
    used.update(prefix + name for name in names + ["alpha"])
    return spec, units


def load_engine(path):
    """Read an engine written by `InferenceEngine.save`.

    Raises
    ------
    FileNotFoundError
        When `path` does not exist.
    fastnn.errors.ModelFormatError
        At the first violation (see `engine_from_bytes`).
    """
    return engine_from_bytes(read_file(path))


def engine_from_bytes(data):
    """The engine held by `data`, the bytes of a file written by `InferenceEngine.save`.

    Everything is checked before any kernel sees the data: the metadata against the
    table `METADATA` (no unknown key), the format name and version, layer kinds and
    activation names (from fixed tables), shapes between layers, dtypes, CSR
    invariants, finite values (by the same code that checks the layers given to
    `InferenceEngine`), and that every tensor is used. Files of every version in
    `VERSIONS` are read.

    Raises
    ------
    fastnn.errors.ModelFormatError
        At the first violation, or when the bytes are not a safetensors file.
    """
    try:
        return _engine_from(data)
    except MemoryError:
        raise ModelFormatError("the engine in the file does not fit in memory") from None


def _check_max_batch(text):
    if not (text.isascii() and text.isdigit() and len(text) <= 6
            and 1 <= int(text) <= MAX_BATCH):
        _fail(f"metadata max_batch={text!r} must be an integer in [1, {MAX_BATCH}]")
    return int(text)


def _check_layers(text):
    described = parse_json(text, "metadata 'layers'")
    if not isinstance(described, list) or not 1 <= len(described) <= MAX_LAYERS:
        _fail(f"layers must be a list of 1 to {MAX_LAYERS} layer descriptions")
    return described


def _check_classes(text):
    classes = parse_json(text, "metadata 'classes'")
    if classes is not None and not isinstance(classes, list):
        _fail("classes must be null or a list of labels")
    return classes


def _choice(key, choices, message):
    def check(text):
        if text not in choices:
            _fail(message.format(text) if message else
                  f"metadata {key}={text!r} is not one of {sorted(choices)}")
        return text
    return check


# The metadata of an engine file: key -> (required, check(text) -> value); see
# `fastnn.io.check_metadata`.
METADATA = {
    "format": (True, _choice("format", (FORMAT,), f"not a {FORMAT} file (format={{!r}})")),
    "format_version": (True, _choice("format_version", tuple(VERSIONS),
                                     f"unsupported format_version {{!r}}; this fastnn reads "
                                     f"{', '.join(map(repr, VERSIONS))}")),
    "dtype": (True, _choice("dtype", DTYPES, None)),
    "layout": (True, _choice("layout", LAYOUTS, None)),
    "max_batch": (True, _check_max_batch),
    "layers": (True, _check_layers),
    "classes": (False, _check_classes),
}


def _engine_from(data):
    tensors, meta = tensors_from_bytes(data)
    fields = check_metadata(meta, METADATA, "engine")
    dtype, layout = np.dtype(fields["dtype"]), fields["layout"]
    specs, used, width = [], set(), None
    version = VERSIONS[fields["format_version"]]
    for i, entry in enumerate(fields["layers"]):
        spec, width = _layer_from_file(entry, i, tensors, dtype, layout, width, used, version)
        specs.append(spec)
    extra = set(tensors) - used
    if extra:
        _fail(f"unexpected tensors {sorted(extra)[:5]}")
    try:
        classes = labels.from_json(fields.get("classes"), width)
    except ValueError as exc:
        _fail(f"invalid classes: {exc}")
    try:
        return InferenceEngine(specs, dtype=dtype.name, layout=layout,
                               max_batch=fields["max_batch"], classes=classes)
    except (ValueError, TypeError) as exc:
        raise ModelFormatError(f"invalid engine: {exc}") from None
