"""Quantized dense layers: int8 (u8 x s8 -> s32) and bf16 (bf16 x bf16 -> f32) products.

``Y := act(dequant(quant(X) @ Wq) + b)``

int8: weights symmetric per output unit, ``Wq[:, j] = rint(W[:, j] / w_scale[j])`` in
[-127, 127]; inputs per tensor with a static scale (from calibration) or per row and
call (``x_scale = 0``), unsigned 8-bit when they are non-negative, else signed in
[-127, 127]; sums in int32; ``Y = float(acc) * (x_scale * w_scale) + b``.
bf16: weights and inputs rounded to bfloat16 (nearest, ties to even), sums in float32.

An int8 layer pruned in blocks may run block-sparse (``block`` 4, 8 or 16): only its
blocks of `block` consecutive output units of one input row that hold a nonzero are
kept, four at a time (`pack_blocks`, quant.h), and multiplied by the same quantized
inputs; the int32 sums, and so the outputs, are identical to the dense product's.

The products live in ``quant.h``: an AVX512-VNNI, AVX-VNNI or AVX512-BF16 path where
the running CPU has it, chosen at import, and a portable path that gives the same
results. `paths` says which are live; `use_paths` (or ``FASTNN_QUANT_PORTABLE=1`` in
the environment) forces the portable one. Rows run in blocks of `ROWS`, whatever the
thread count, so results never depend on it.
"""
import os

from cython.parallel cimport prange
from libc.stdint cimport int8_t, uint8_t, uint16_t, int32_t, uint32_t, int64_t

from fastnn._kernels._openmp cimport omp_get_thread_num
from fastnn._kernels._parallel cimport threads_for
from fastnn._kernels.dense cimport bias_act_row

import numpy as np

from fastnn._kernels._checks import as_float_array, resolve_threads
from fastnn._kernels.activations import activation_code, alpha_array

cdef extern from "quant.h" nogil:
    int FASTNN_ISA_PORTABLE, FASTNN_ISA_AVX512, FASTNN_ISA_AVX256
    int FASTNN_PANEL
    int fastnn_cpu_q8_isa()
    int fastnn_cpu_bf16_isa()
    float fastnn_q8_row_scale(const float* x, Py_ssize_t n, int is_signed)
    void fastnn_q8_quantize_row(const float* x, Py_ssize_t n, Py_ssize_t n_pad, float inv_scale,
                                int is_signed, uint8_t* q)
    void fastnn_q8_dequantize_row(const int32_t* acc, const int32_t* corr, float x_scale,
                                  const float* w_scale, Py_ssize_t n, float* y)
    void fastnn_bf16_row(const float* x, Py_ssize_t n, Py_ssize_t n_pad, uint16_t* h)
    void fastnn_q8_gemm(int isa, int has_avx512, const uint8_t* X, Py_ssize_t ldx, Py_ssize_t m,
                        Py_ssize_t nkb, const int8_t* P, Py_ssize_t n_panels, int32_t* C,
                        Py_ssize_t ldc)
    void fastnn_bf16_gemm(int isa, const uint16_t* X, Py_ssize_t ldx, Py_ssize_t m,
                          Py_ssize_t nkb, const uint16_t* P, Py_ssize_t n_panels, float* C,
                          Py_ssize_t ldc)
    void fastnn_q8_bsr(int isa, int has_avx512, const uint8_t* X, Py_ssize_t ldx, Py_ssize_t m,
                       Py_ssize_t n_in, const int64_t* qptr, const uint16_t* idx,
                       const int8_t* val, Py_ssize_t n_cols, int block, int32_t* C,
                       Py_ssize_t ldc, uint32_t* xt)

ROWS = 16
"""Rows per block of work (one thread's unit; fixed so results never depend on threads)."""
cdef Py_ssize_t _ROWS = ROWS
cdef Py_ssize_t _ALIGN = 64

INT8_PATHS = {FASTNN_ISA_PORTABLE: "portable", FASTNN_ISA_AVX512: "avx512-vnni",
              FASTNN_ISA_AVX256: "avx-vnni"}
BF16_PATHS = {FASTNN_ISA_PORTABLE: "portable", FASTNN_ISA_AVX512: "avx512-bf16"}
PRECISIONS = {"int8": PREC_INT8, "bf16": PREC_BF16}
BLOCKS = (4, 8, 16)
"""Block widths of the block-sparse int8 product (as fastnn._kernels.blocksparse.BLOCKS)."""
MAX_BLOCK_INPUTS = 65536
"""The most inputs of a layer in int8 blocks (uint16 input rows)."""

cdef int _cpu_q8 = fastnn_cpu_q8_isa()
cdef int _cpu_bf16 = fastnn_cpu_bf16_isa()
cdef int _q8_isa = _cpu_q8
cdef int _bf16_isa = _cpu_bf16
if os.environ.get("FASTNN_QUANT_PORTABLE", "0") == "1":
    _q8_isa = _bf16_isa = FASTNN_ISA_PORTABLE


def paths():
    """The live path of each product: ``{"int8": ..., "bf16": ...}``.

    int8: ``"avx512-vnni"``, ``"avx-vnni"`` or ``"portable"``; bf16: ``"avx512-bf16"`` or
    ``"portable"``.
    """
    return {"int8": INT8_PATHS[_q8_isa], "bf16": BF16_PATHS[_bf16_isa]}


def cpu_paths():
    """The fastest path the running CPU supports for each product (what import chooses)."""
    return {"int8": INT8_PATHS[_cpu_q8], "bf16": BF16_PATHS[_cpu_bf16]}


def use_paths(int8=None, bf16=None):
    """Choose the paths (``"auto"``: the CPU's best; a name of `paths`); returns the old ones.

    A path the CPU cannot run is refused; ``"avx-vnni"`` on a CPU with AVX512-VNNI runs
    the same 256-bit code in its EVEX encoding.
    """
    global _q8_isa, _bf16_isa
    old = paths()
    if int8 is not None:
        _q8_isa = _choose(int8, INT8_PATHS, _cpu_q8, "int8")
    if bf16 is not None:
        _bf16_isa = _choose(bf16, BF16_PATHS, _cpu_bf16, "bf16")
    return old


def _choose(name, table, best, what):
    if name == "auto":
        return best
    codes = {v: k for k, v in table.items()}
    if name not in codes:
        raise ValueError(f"unknown {what} path {name!r}; valid: auto, {', '.join(codes)}")
    code = codes[name]
    if code != FASTNN_ISA_PORTABLE and best != FASTNN_ISA_AVX512 and code != best:
        raise ValueError(f"this CPU cannot run the {what} path {name!r}")
    return code


def quantize_weights(W):
    """(Wq, w_scale): W (n_in, n_out) as int8 per output unit, ``W ~ Wq * w_scale``.

    ``w_scale[j] = max |W[:, j]| / 127`` (1 for a column of zeros) in float32, and
    ``Wq = rint(W / w_scale)``.
    """
    W = np.asarray(W, dtype=np.float32)
    amax = np.abs(W).max(axis=0) if W.shape[0] else np.zeros(W.shape[1], np.float32)
    scale = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)
    Wq = np.clip(np.rint(W / scale), -127, 127).astype(np.int8)
    return Wq, scale


def to_bf16(X):
    """The bfloat16 bits (uint16) of float32 X, rounded to nearest, ties to even."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    out = np.empty(X.shape, np.uint16)
    cdef const float[::1] x = X.reshape(-1)
    cdef uint16_t[::1] h = out.reshape(-1)
    if x.shape[0]:
        fastnn_bf16_row(&x[0], x.shape[0], x.shape[0], &h[0])
    return out


def pack(precision, weights):
    """The packed form (see quant.h) of int8 (n_in, n_out) or bf16-bit (uint16) weights."""
    step = 4 if precision == "int8" else 2
    weights = np.asarray(weights)
    k, n = weights.shape
    nkb, n_panels = -(-k // step), -(-n // FASTNN_PANEL)
    padded = np.zeros((nkb * step, n_panels * FASTNN_PANEL), weights.dtype)
    padded[:k, :n] = weights
    parts = []
    for g in range(0, n_panels, 4):
        pg = min(4, n_panels - g)
        block = padded[:, g * FASTNN_PANEL:(g + pg) * FASTNN_PANEL]
        parts.append(block.reshape(nkb, step, pg, FASTNN_PANEL).transpose(0, 2, 3, 1).ravel())
    return np.ascontiguousarray(np.concatenate(parts))


def pack_blocks(Wq, block):
    """(qptr, qidx, qval): int8 Wq (n_in, n_out) in quads of 1 x `block` blocks (quant.h).

    The blocks of block column c (outputs c * block to c * block + block, the last one
    padded with zeros) that hold a nonzero, input rows ascending, four to a quad; the
    last quad of a column is completed with zero weights on that quad's first input row.

    Returns
    -------
    qptr : int64 ndarray of shape (ceil(n_out / block) + 1,)
        The quads of column c are ``qptr[c]`` to ``qptr[c + 1]``.
    qidx : uint16 ndarray of shape (4 * quads,)
        The input row of each of a quad's four blocks (so n_in is at most `MAX_BLOCK_INPUTS`).
    qval : int8 ndarray of shape (quads, block, 4)
        ``qval[q, j, r] = Wq[qidx[4 q + r], c * block + j]``.
    """
    if block not in BLOCKS:
        raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
    Wq = np.asarray(Wq, dtype=np.int8)
    n_in, n_out = Wq.shape
    if n_in > MAX_BLOCK_INPUTS:
        raise ValueError(f"int8 blocks take at most {MAX_BLOCK_INPUTS} inputs, got {n_in}")
    n_cols = -(-n_out // block)
    padded = np.zeros((n_in, n_cols * block), np.int8)
    padded[:, :n_out] = Wq
    blocks = padded.reshape(n_in, n_cols, block).transpose(1, 0, 2)  # (column, row, B)
    keep = blocks.any(axis=2)
    counts = keep.sum(axis=1)
    qptr = np.zeros(n_cols + 1, np.int64)
    np.cumsum(-(-counts // 4), out=qptr[1:])
    cols, rows = np.nonzero(keep)  # column by column, rows ascending
    first = np.cumsum(counts) - counts  # each column's first kept block
    slot = 4 * qptr[cols] + np.arange(cols.size) - first[cols]
    qidx = np.zeros(4 * qptr[n_cols], np.int32)
    qval = np.zeros((4 * qptr[n_cols], block), np.int8)
    qidx[slot] = rows + 1
    quads = qidx.reshape(-1, 4)
    np.copyto(quads, quads[:, :1], where=quads == 0)  # padding: the quad's first row
    qval[slot] = blocks[cols, rows]
    return (qptr, (qidx - 1).astype(np.uint16),
            np.ascontiguousarray(qval.reshape(-1, 4, block).transpose(0, 2, 1)))


cdef inline Py_ssize_t _round_up(Py_ssize_t n, Py_ssize_t to) noexcept nogil:
    return (n + to - 1) // to * to


cdef inline Py_ssize_t _acc_bytes(const QWeights* q) noexcept nogil:
    """Bytes of a block of rows' sums, then of their inputs interleaved for int8 blocks
    (`fastnn_q8_bsr`'s xt: ROWS / 4 groups of n_in words)."""
    return (_round_up(_ROWS * q.n_panels * FASTNN_PANEL * 4, _ALIGN)
            + (_round_up(_ROWS * q.n_in, _ALIGN) if q.block else 0))


cdef Py_ssize_t qdense_scratch_bytes(const QWeights* q, int n_threads) noexcept nogil:
    """Scratch for `qdense_forward` with up to n_threads threads."""
    return n_threads * (_round_up(_ROWS * q.row_bytes, _ALIGN) + _acc_bytes(q)) + _ALIGN


cdef inline void _q8_product(const QWeights* q, const uint8_t* xq, Py_ssize_t ldx,
                             Py_ssize_t rows, int32_t* acc, Py_ssize_t ldc,
                             uint32_t* xt) noexcept nogil:
    """acc := xq @ Wq (int32), dense or in blocks (xt: scratch for blocks)."""
    if q.block:
        fastnn_q8_bsr(_q8_isa, _cpu_q8 == FASTNN_ISA_AVX512, xq, ldx, rows, q.n_in, q.qptr,
                      q.qidx, <const int8_t*>q.packed, q.n_cols, q.block, acc, ldc, xt)
    else:
        fastnn_q8_gemm(_q8_isa, _cpu_q8 == FASTNN_ISA_AVX512, xq, ldx, rows, q.nkb,
                       <const int8_t*>q.packed, q.n_panels, acc, ldc)


cdef void _block(const QWeights* q, const float* X, Py_ssize_t ldx, Py_ssize_t r0,
                 Py_ssize_t rows, const float* b, int act, const float* alpha, float* Y,
                 Py_ssize_t ldy, char* xq, char* acc) noexcept nogil:
    """Rows r0 to r0 + rows of Y := act(dequant(quant(X) @ W) + b), in one thread's scratch."""
    cdef Py_ssize_t i, j, ldc = q.n_panels * FASTNN_PANEL
    cdef float scales[16]  # ROWS
    cdef float* y
    if q.precision == PREC_INT8:
        for i in range(rows):
            scales[i] = q.x_scale
            if q.x_scale == 0:
                scales[i] = fastnn_q8_row_scale(X + (r0 + i) * ldx, q.n_in, q.x_signed)
            fastnn_q8_quantize_row(X + (r0 + i) * ldx, q.n_in, q.row_bytes,
                                   q.x_inv if q.x_scale != 0 else (<float>1) / scales[i],
                                   q.x_signed, <uint8_t*>xq + i * q.row_bytes)
        _q8_product(q, <const uint8_t*>xq, q.row_bytes, rows, <int32_t*>acc, ldc,
                    <uint32_t*>(acc + _round_up(_ROWS * ldc * 4, _ALIGN)))
        for i in range(rows):
            y = Y + (r0 + i) * ldy
            fastnn_q8_dequantize_row(<int32_t*>acc + i * ldc, q.corr if q.x_signed else NULL,
                                     scales[i], q.w_scale, q.n_out, y)
            bias_act_row(y, b, <float*>NULL, q.n_out, act, alpha)
    else:
        for i in range(rows):
            fastnn_bf16_row(X + (r0 + i) * ldx, q.n_in, q.row_bytes // 2,
                            <uint16_t*>xq + i * (q.row_bytes // 2))
        fastnn_bf16_gemm(_bf16_isa, <const uint16_t*>xq, q.row_bytes // 2, rows, q.nkb,
                         <const uint16_t*>q.packed, q.n_panels, <float*>acc, ldc)
        for i in range(rows):
            y = Y + (r0 + i) * ldy
            for j in range(q.n_out):
                y[j] = (<float*>acc)[i * ldc + j]
            bias_act_row(y, b, <float*>NULL, q.n_out, act, alpha)


cdef void qdense_forward(const QWeights* q, const float* X, Py_ssize_t ldx, Py_ssize_t m,
                         const float* b, int act, const float* alpha, float* Y, Py_ssize_t ldy,
                         char* scratch, int n_threads) noexcept nogil:
    """Y := act(dequant(quant(X) @ W) + b) for m rows; scratch of `qdense_scratch_bytes`."""
    cdef Py_ssize_t blk, r0, rows, n_blocks = (m + _ROWS - 1) // _ROWS
    cdef Py_ssize_t xq_bytes = _round_up(_ROWS * q.row_bytes, _ALIGN)
    cdef Py_ssize_t per_thread = xq_bytes + _acc_bytes(q)
    cdef char* base = <char*>_round_up(<Py_ssize_t>scratch, _ALIGN)
    cdef char* mine
    # work: the products of the weights kept (all, or the blocks' quads)
    cdef Py_ssize_t kept = q.n_in * q.n_out if q.block == 0 else q.qptr[q.n_cols] * 4 * q.block
    cdef int nt = threads_for(m * kept // 64, n_threads)
    if nt > n_blocks:
        nt = <int>n_blocks
    if nt == 1:
        # No OpenMP team for one thread: starting one and meeting at its barriers costs
        # about 0.3 us (two futex calls), a sixth of a batch-1 layer's product.
        for blk in range(n_blocks):
            _block(q, X, ldx, blk * _ROWS, m - blk * _ROWS if m - blk * _ROWS < _ROWS else _ROWS,
                   b, act, alpha, Y, ldy, base, base + xq_bytes)
        return
    for blk in prange(n_blocks, nogil=True, schedule="dynamic", num_threads=nt,
                      use_threads_if=nt > 1):
        mine = base + omp_get_thread_num() * per_thread
        r0 = blk * _ROWS
        rows = m - r0 if m - r0 < _ROWS else _ROWS
        _block(q, X, ldx, r0, rows, b, act, alpha, Y, ldy, mine, mine + xq_bytes)


cdef class QuantDense:
    """A dense layer's weights quantized for `qdense_forward`.

    Parameters
    ----------
    precision : {"int8", "bf16"}
    weights : ndarray of shape (n_in, n_out)
        int8 values in [-127, 127] (int8), or bfloat16 bits as uint16 (bf16), as made by
        `quantize_weights` and `to_bf16`.
    w_scale : ndarray of shape (n_out,), float32
        int8 only: the dequantisation scale of each output unit.
    x_scale : float
        int8 only: the static input scale, or 0 to quantize each row per call.
    x_signed : bool
        int8 only: quantize inputs signed; else they must be non-negative (negative
        values become 0).
    block : {0, 4, 8, 16}
        int8 only: 0 for the dense product, else the block-sparse one over the blocks of
        `block` consecutive output units that hold a nonzero (`pack_blocks`).
    """

    def __init__(self, precision, weights, w_scale=None, float x_scale=0, bint x_signed=False,
                 int block=0):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {precision!r}")
        want = np.int8 if precision == "int8" else np.uint16
        weights = np.ascontiguousarray(weights)
        if weights.dtype != want or weights.ndim != 2 or 0 in weights.shape:
            raise ValueError(f"{precision} weights must be a non-empty 2-D {np.dtype(want)} array")
        k, n = weights.shape
        if block and (precision != "int8" or block not in BLOCKS):
            raise ValueError(f"block must be 0, or one of {BLOCKS} for int8, got {block!r}")
        self.precision = precision
        self.weights = weights
        self.w.block = block
        if block:
            self.qptr, self.qidx, self.packed = pack_blocks(weights, block)
            self.w.n_cols = self.qptr.shape[0] - 1
        else:
            self.packed = pack(precision, weights)
        self.w.precision = PRECISIONS[precision]
        self.w.n_in, self.w.n_out = k, n
        self.w.n_panels = -(-n // FASTNN_PANEL)
        if precision == "int8":
            if weights.min() < -127:
                raise ValueError("int8 weights must lie in [-127, 127]")
            w_scale = np.ascontiguousarray(w_scale, dtype=np.float32)
            if w_scale.shape != (n,) or not (np.isfinite(w_scale).all() and (w_scale > 0).all()):
                raise ValueError(f"w_scale must hold {n} positive finite values")
            if not (np.isfinite(x_scale) and x_scale >= 0):
                raise ValueError(f"x_scale must be finite and >= 0, got {x_scale}")
            self.w_scale = w_scale
            self.corr = np.zeros(self.w.n_panels * FASTNN_PANEL, np.int32)
            self.corr[:n] = 128 * weights.sum(axis=0, dtype=np.int64)
            self.w.nkb = -(-k // 4)
            self.w.row_bytes = self.w.nkb * 4
            self.w.x_scale = x_scale
            self.w.x_inv = (<float>1) / x_scale if x_scale > 0 else 0
            self.w.x_signed = x_signed
        else:
            self.w.nkb = -(-k // 2)
            self.w.row_bytes = self.w.nkb * 4
        self._bind()

    cdef _bind(self):
        cdef const char[::1] p = self.packed.reshape(-1).view(np.int8)
        cdef const int32_t[::1] c
        cdef const float[::1] s
        cdef const int64_t[::1] qp
        cdef const uint16_t[::1] qi
        self.w.packed = &p[0] if p.shape[0] else NULL
        if self.w.block:
            qp = self.qptr
            qi = self.qidx
            self.w.qptr = &qp[0]
            self.w.qidx = &qi[0] if qi.shape[0] else NULL
        if self.w.precision == PREC_INT8:
            c = self.corr
            s = self.w_scale
            self.w.corr = &c[0]
            self.w.w_scale = &s[0]

    cdef const QWeights* weights_ptr(self):
        return &self.w

    def kernel_arrays(self):
        """The arrays its kernels read (packed weights, corrections, scales, block
        indices), in the order `use_arrays` takes them."""
        return [a for a in (self.packed, self.corr, self.w_scale, self.qptr, self.qidx)
                if a is not None]

    def use_arrays(self, arrays):
        """Reads from `arrays`, copies of `kernel_arrays()` (same dtypes, shapes and
        values, elsewhere in memory: the engine moves them onto huge pages)."""
        arrays = list(arrays)
        old = self.kernel_arrays()
        if len(arrays) != len(old) or any(
                not isinstance(a, np.ndarray) or a.dtype != o.dtype or a.shape != o.shape
                or not a.flags.c_contiguous for a, o in zip(arrays, old)):
            raise ValueError("use_arrays takes copies of kernel_arrays()")
        self.packed = arrays.pop(0)
        if self.corr is not None:
            self.corr = arrays.pop(0)
        if self.w_scale is not None:
            self.w_scale = arrays.pop(0)
        if self.qptr is not None:
            self.qptr = arrays.pop(0)
            self.qidx = arrays.pop(0)
        self._bind()

    @property
    def n_in(self):
        return self.w.n_in

    @property
    def n_out(self):
        return self.w.n_out

    @property
    def x_scale(self):
        """The static input scale (0: per row and call)."""
        return float(self.w.x_scale)

    @property
    def x_signed(self):
        return bool(self.w.x_signed)

    @property
    def block(self):
        """0 for the dense product, else the width of the blocks it keeps."""
        return self.w.block

    def forward(self, X, b=None, activation="linear", alpha=None, n_threads=None):
        """act(dequant(quant(X) @ W) + b) for X (batch, n_in) float32; float32 result."""
        code = activation_code(activation)
        X = as_float_array(X, "X", dtype=np.float32, ndim=2)
        if X.shape[1] != self.w.n_in:
            raise ValueError(f"X has {X.shape[1]} columns, expected {self.w.n_in}")
        if b is not None:
            b = np.ascontiguousarray(b, dtype=np.float32)
            if b.shape != (self.w.n_out,):
                raise ValueError(f"b must have shape ({self.w.n_out},)")
        a = alpha_array(activation, alpha, self.w.n_out, np.float32)
        nt = resolve_threads(n_threads)
        Y = np.empty((X.shape[0], self.w.n_out), np.float32)
        scratch = np.empty(qdense_scratch_bytes(&self.w, nt), np.uint8)
        self._forward(X, b, code, a, Y, scratch, nt)
        return Y

    def _forward(self, const float[:, ::1] X, const float[::1] b, int act,
                 const float[::1] alpha, float[:, ::1] Y, unsigned char[::1] scratch,
                 int n_threads):
        if X.shape[0] == 0:
            return
        with nogil:
            qdense_forward(&self.w, &X[0, 0], X.shape[1], X.shape[0],
                           &b[0] if b is not None else NULL, act, &alpha[0], &Y[0, 0],
                           Y.shape[1], <char*>&scratch[0], n_threads)

    def matmul(self, Xq):
        """The exact integer product ``Xq @ Wq`` (int32, (batch, n_out)) for quantized
        rows `Xq`: uint8 when the layer's inputs are unsigned, int8 in [-127, 127] else."""
        if self.w.precision != PREC_INT8:
            raise ValueError("matmul is the int8 product")
        want = np.int8 if self.w.x_signed else np.uint8
        Xq = np.asarray(Xq)
        if Xq.dtype != want or Xq.ndim != 2 or Xq.shape[1] != self.w.n_in:
            raise ValueError(f"Xq must be a 2-D {np.dtype(want)} array of {self.w.n_in} columns")
        m = Xq.shape[0]
        rows = np.zeros((m, self.w.row_bytes), np.uint8)
        rows[:, :self.w.n_in] = Xq.view(np.uint8) ^ (0x80 if self.w.x_signed else 0)
        acc = np.empty((m, self.w.n_panels * FASTNN_PANEL), np.int32)
        if m:
            self._matmul(rows, acc, np.empty(-(-m // 4) * self.w.n_in, np.uint32))
        if self.w.x_signed:
            acc -= self.corr
        return np.ascontiguousarray(acc[:, :self.w.n_out])

    def _matmul(self, const uint8_t[:, ::1] rows, int32_t[:, ::1] acc, uint32_t[::1] xt):
        with nogil:
            _q8_product(&self.w, &rows[0, 0], rows.shape[1], rows.shape[0], &acc[0, 0],
                        acc.shape[1], &xt[0])
