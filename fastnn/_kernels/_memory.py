"""Memory for weights that are read on every call: one block on huge pages.

A layer's weights in ordinary (4 KB) pages land on physical pages that the CPU's L2 cache
maps by their physical address: two copies of the same 940 KB of weights, on a 2 MB L2,
answered one row in 8.2 or 10.5 us depending on where their pages fell, and in 8.0 us
every time on a 2 MB huge page (numpy's `matmul`, one thread, 784x256). A huge page is
physically contiguous, so its lines spread evenly over the cache's sets, and one TLB
entry covers it.
"""
import mmap

import numpy as np

HUGE_PAGE = 2 << 20
MIN_BYTES = 64 << 10
"""Smaller weights stay where they are: a few 4 KB pages, and a huge page would be
mostly empty."""

ALIGN = 64


def aligned_size(nbytes):
    """`nbytes` rounded up to a cache line."""
    return -(-nbytes // ALIGN) * ALIGN


def aligned_empty(shape, dtype):
    """An uninitialized C-ordered array starting on a cache line (numpy starts large arrays
    16 bytes into one): a 64-byte vector load of a row then touches one line, not two
    (784x256 float32 at 2 rows on its panels: 7.9 against 10-12 us unaligned)."""
    dtype = np.dtype(dtype)
    shape = (shape,) if np.ndim(shape) == 0 else tuple(shape)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def aligned_full(shape, fill, dtype):
    """`aligned_empty` filled with `fill`."""
    out = aligned_empty(shape, dtype)
    out[...] = fill
    return out


def aligned_copy(array, dtype):
    """A C-ordered copy of `array` as `dtype` starting on a cache line (`aligned_empty`)."""
    array = np.asarray(array)
    return aligned_full(array.shape, array, dtype)


def huge_empty(nbytes):
    """A uint8 array of `nbytes` starting on a huge page boundary, in memory advised for
    transparent huge pages, or None where the system offers no such advice (then the
    caller keeps its arrays). The memory lives as long as an array made from it."""
    advice = getattr(mmap, "MADV_HUGEPAGE", None)
    if advice is None or nbytes <= 0:
        return None
    try:
        # whole huge pages from an aligned start, wherever the mapping begins
        pages = -(-nbytes // HUGE_PAGE) * HUGE_PAGE
        block = mmap.mmap(-1, pages + HUGE_PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        block.madvise(advice)
    except (OSError, ValueError):
        return None
    whole = np.frombuffer(block, np.uint8)
    start = -whole.ctypes.data % HUGE_PAGE
    return whole[start:start + nbytes]


def gather(arrays):
    """Copies of `arrays` in one block of huge pages, each on a cache line, in order; the
    arrays themselves where they take less than `MIN_BYTES` or no block is to be had."""
    offsets, total = [], 0
    for a in arrays:
        offsets.append(total)
        total += aligned_size(a.nbytes)
    block = huge_empty(total) if total >= MIN_BYTES else None
    if block is None:
        return list(arrays)
    copies = []
    for a, start in zip(arrays, offsets):
        copy = block[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
        copy[...] = a
        copies.append(copy)
    return copies
