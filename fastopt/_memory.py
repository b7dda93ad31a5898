"""Allocation of optimizer state: zero-filled, 64-byte aligned (one cache line, one AVX-512 vector)."""

import numpy as np

ALIGNMENT = 64


def aligned_full(shape, dtype, fill_value=0.0, alignment: int = ALIGNMENT) -> np.ndarray:
    """A C-contiguous array whose data starts on an ``alignment``-byte boundary."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    raw = np.empty(count * dtype.itemsize + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    array = raw[offset : offset + count * dtype.itemsize].view(dtype).reshape(shape)
    array.fill(fill_value)
    return array


def aligned_copy(source: np.ndarray) -> np.ndarray:
    """An aligned, C-contiguous copy of ``source``."""
    array = aligned_full(source.shape, source.dtype)
    np.copyto(array, source)
    return array
