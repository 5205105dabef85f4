"""Numpy twins of the quantized kernels: the same integer and bfloat16 arithmetic."""
import numpy as np

from fastnn._kernels.reference import activations as ref_act

F32 = np.float32


def quantize_weights(W):
    """(Wq int8, w_scale float32): symmetric per output unit (column)."""
    W = np.asarray(W, F32)
    amax = np.abs(W).max(axis=0)
    scale = np.where(amax > 0, amax / F32(127), F32(1)).astype(F32)
    return np.clip(np.rint(W / scale), -127, 127).astype(np.int8), scale


def row_scales(X, signed):
    """Per-row scales: max |x| / 255 (unsigned) or / 127 (signed); 1 for a zero row."""
    amax = np.abs(np.asarray(X, F32)).max(axis=1)
    return np.where(amax > 0, amax / F32(127 if signed else 255), F32(1)).astype(F32)


def quantize_rows(X, x_scale, signed):
    """(Xq as int32 values, per-row scales): static `x_scale`, or per row when it is 0."""
    X = np.asarray(X, F32)
    scales = row_scales(X, signed) if x_scale == 0 else np.full(X.shape[0], F32(x_scale))
    inv = (F32(1) / scales).astype(F32)
    lo, hi = (-127, 127) if signed else (0, 255)
    return np.rint(np.clip(X * inv[:, None], lo, hi)).astype(np.int32), scales


def q8_matmul(Xq, Wq):
    """Exact integer Xq @ Wq (int32)."""
    return (np.asarray(Xq, np.int64) @ np.asarray(Wq, np.int64)).astype(np.int32)


def q8_forward(X, Wq, w_scale, b, activation, x_scale=0.0, signed=False, alpha=None):
    """act(float(Xq @ Wq) * (x_scale * w_scale) + b), all in float32."""
    Xq, scales = quantize_rows(X, x_scale, signed)
    Z = q8_matmul(Xq, Wq).astype(F32) * (scales[:, None] * np.asarray(w_scale, F32))
    if b is not None:
        Z = Z + np.asarray(b, F32)
    return ref_act.forward(activation, Z, alpha)


def to_bf16(X):
    """bfloat16 bits (uint16) of X, rounded to nearest, ties to even."""
    u = np.asarray(X, F32).view(np.uint32).astype(np.uint64)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def from_bf16(H):
    return (np.asarray(H, np.uint16).astype(np.uint32) << 16).view(F32)


def bf16_matmul(Xh, Wh):
    """float32 sums of bf16 products, one sum per output, inputs in pairs, odd first."""
    X, W = from_bf16(Xh), from_bf16(Wh)
    k = X.shape[1]
    if k % 2:
        X = np.pad(X, ((0, 0), (0, 1)))
        W = np.pad(W, ((0, 1), (0, 0)))
    acc = np.zeros((X.shape[0], W.shape[1]), F32)
    for p in range(0, X.shape[1], 2):
        acc += X[:, p + 1, None] * W[p + 1]
        acc += X[:, p, None] * W[p]
    return acc


def bf16_forward(X, Wh, b, activation, alpha=None):
    Z = bf16_matmul(to_bf16(X), Wh)
    if b is not None:
        Z = Z + np.asarray(b, F32)
    return ref_act.forward(activation, Z, alpha)


def q8_blocks(Wq, block):
    """(qptr, qidx, qval): Wq in quads of four 1 x `block` blocks that hold a nonzero,
    block column by block column, input rows ascending; a column's last quad completed
    with zero weights on its first input row."""
    Wq = np.asarray(Wq, np.int8)
    n_in, n_out = Wq.shape
    n_cols = -(-n_out // block)
    qptr, qidx, qval = [0], [], []
    for c in range(n_cols):
        kept = [i for i in range(n_in) if np.any(Wq[i, c * block:(c + 1) * block])]
        for s in range(0, len(kept), 4):
            rows = kept[s:s + 4]
            quad = np.zeros((block, 4), np.int8)
            for r, i in enumerate(rows):
                chunk = Wq[i, c * block:(c + 1) * block]
                quad[:chunk.size, r] = chunk
            qidx += rows + [rows[0]] * (4 - len(rows))
            qval.append(quad)
        qptr.append(len(qval))
    return (np.array(qptr, np.int64), np.array(qidx, np.uint16),
            np.array(qval, np.int8).reshape(-1, block, 4))


def q8_block_matmul(Xq, qptr, qidx, qval, n_out):
    """Exact integer Xq @ W (int32) over the quads of `q8_blocks`, quad by quad."""
    Xq = np.asarray(Xq, np.int64)
    block = qval.shape[1]
    acc = np.zeros((Xq.shape[0], (len(qptr) - 1) * block), np.int64)
    for c in range(len(qptr) - 1):
        for q in range(qptr[c], qptr[c + 1]):
            acc[:, c * block:(c + 1) * block] += Xq[:, qidx[4 * q:4 * q + 4]] @ \
                qval[q].astype(np.int64).T
    return acc[:, :n_out].astype(np.int32)
