r"""The summation order: how every sum in fastopt is added up, the same way in the three twins.

Floating-point addition is not associative: ``(a + b) + c`` and ``a + (b + c)`` can differ in
the last bit. A NumPy ``sum`` adds pairwise (in blocks whose shape depends on the array's
strides), a plain loop adds one element after the other, BLAS blocks its own way; each is a
correct sum, and no two give the same bits. An optimizer that takes a norm (Adafactor's root mean
square, LAMB's trust ratio) or a mean (Adafactor's row and column factors) is bit-identical
across its reference, Numba and Cython twins only if all three add in one order. That order is
this module's rule:

1. **Every sum is accumulated in float64**, whatever the arrays' dtype; a float32 value is
   widened first, so a float32 square ``x * x`` is exact. The sum is rounded to the arrays' dtype
   only where it is stored (a mean written to a state array).
2. **A run of contiguous values** (a whole flattened tensor, a row of a matrix) is added in
   **8 lanes**: value ``k`` goes to lane ``k % 8``; each lane starts at ``+0.0`` and adds its
   values in order. The lanes are then combined in one fixed tree:
   ``((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))``.
3. **A column** (down the rows of a matrix) is added in order, row after row, from ``+0.0``:
   the columns are the lanes.

Eight lanes are what a compiled loop vectorises without reassociating anything (one AVX-512
register of float64, two of AVX2), and the error of a sum of ``n`` values grows with ``n / 8``
instead of ``n``; with float64 accumulators a float32 sum of a 4-million-element tensor stays
within a few float32 ulp of the exact sum. NumPy reproduces rule 2 without a Python loop over
elements: the values, padded with zeros to a multiple of 8, reshaped to ``(blocks, 8)`` and
accumulated down axis 0 with ``np.add.accumulate`` (a running sum, sequential by definition);
rule 3 is a loop over the rows adding whole rows. The compiled twins
(``fastopt/_sums/_numba.py``, ``fastopt/_sums/sums.pxd``) add in the same order, one element at a
time. ``tests/test_sums.py`` checks the three against a pure-Python transcription of the rule.

Sums run on one thread: a parameter stepped by an optimizer with reductions is one kernel call,
whatever ``set_num_threads`` says, so the bits never depend on the thread count.
"""

from __future__ import annotations

import numpy as np

LANES = 8


def combine_lanes(lanes: np.ndarray) -> np.ndarray:
    """Rule 2's fixed tree over the last axis of ``lanes`` (8 wide): one sum per leading index."""
    l = [lanes[..., k] for k in range(LANES)]  # noqa: E741
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]))


def row_sums(values: np.ndarray) -> np.ndarray:
    """Rule 2 along the last axis of the float64 array ``values`` of shape ``(m, k)``: ``m`` sums."""
    m, k = values.shape
    blocks = -(-k // LANES)
    padded = np.zeros((m, 1 + blocks, LANES))  # a first block of +0.0: where every lane starts
    padded[:, 1:, :].reshape(m, blocks * LANES)[:, :k] = values
    lanes = np.add.accumulate(padded, axis=1)[:, -1, :]  # each lane's running sum, in order
    return combine_lanes(lanes)


def total(values: np.ndarray) -> float:
    """Rule 2 over the whole float64 array ``values`` (flattened in C order)."""
    return float(row_sums(values.reshape(1, -1))[0])


def column_sums(values: np.ndarray) -> np.ndarray:
    """Rule 3 down axis ``-2`` of the float64 array ``values`` of shape ``(batches, rows, cols)``."""
    sums = np.zeros((values.shape[0], values.shape[2]))
    for row in range(values.shape[1]):  # whole rows at a time: each column adds in row order
        sums += values[:, row, :]
    return sums


def squares(values: np.ndarray) -> np.ndarray:
    """``values * values`` in float64 (exact for float32 values): what rule 1 sums for a norm."""
    wide = values.astype(np.float64)
    return wide * wide
