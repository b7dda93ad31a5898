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
4. **A matrix product** ``C = P @ Q`` (Muon's Newton-Schulz iteration) is rule 2 once per
   element: ``C[i, j]`` is the run of products ``P[i, k] * Q[k, j]``, ``k = 0, 1, ...``, each
   product of the two values widened to float64 (exact for float32 values; one rounding for
   float64 ones, never fused with the addition), into lane ``k % 8``, the lanes combined by rule
   2's tree, and the sum rounded once to the arrays' dtype where it is stored. A product over
   ``k`` of length 0 is ``+0.0``. No BLAS: its blocking, and with it the order of the additions,
   changes with the matrix size, the CPU and the thread count.

Eight lanes are what a compiled loop vectorises without reassociating anything (one AVX-512
register of float64, two of AVX2), and the error of a sum of ``n`` values grows with ``n / 8``
instead of ``n``; with float64 accumulators a float32 sum of a 4-million-element tensor stays
within a few float32 ulp of the exact sum. NumPy reproduces rule 2 without a Python loop over
elements: the values, padded with zeros to a multiple of 8, reshaped to ``(blocks, 8)`` and
accumulated down axis 0 with ``np.add.accumulate`` (a running sum, sequential by definition);
rule 3 is a loop over the rows adding whole rows; rule 4 is a loop over ``k`` in blocks of 8
adding, for the 8 values of a block at once, the outer products ``P[:, k] * Q[k, :]`` into an
array of ``(8, rows, cols)`` lanes (:func:`matmul`). The compiled twins
(``fastopt/_sums/_numba.py``, ``fastopt/_sums/sums.pxd``) add in the same order, one element at a
time; their matrix products read both operands along ``k`` (the right one transposed, so that
``k`` is contiguous in both), several outputs at a time, each keeping its own 8 lanes, and
compute one triangle of a symmetric product (``X @ X.T``), whose other triangle has the same bits
(each product ``x * y`` is ``y * x``, added in the same lane in the same order).
``tests/test_sums.py`` checks the three against a pure-Python transcription of the rule.

Why float64 for rule 4 too, and not the arrays' dtype: a float32 dot product of 1,024 terms
accumulated in float32 loses about 10 bits where cancellation is heavy (Newton-Schulz's Gram
matrices cancel), and the float64 accumulators cost nothing in the compiled loops' order (the
products of float32 values are exact in float64, so the only rounding is the final one per
element). For float64 arrays, float64 accumulation is the dtype's own.

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


def matmul(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Rule 4: ``left @ right`` (shapes ``(m, K)`` and ``(K, n)``) as a float64 ``(m, n)`` array,
    each element the 8-lane float64 sum of its products; round it to the dtype to store it.

    The lanes are an ``(8, m, n)`` array; block ``b`` of 8 values along ``k`` adds its products
    ``left[:, 8b + l] * right[8b + l, :]`` to lane ``l`` for the 8 ``l`` at once (a running sum:
    each lane adds its values in ``k`` order), then the lanes are combined by rule 2's tree.
    """
    m, depth = left.shape
    n = right.shape[1]
    wide_left, wide_right = left.astype(np.float64), right.astype(np.float64)
    lanes = np.zeros((LANES, m, n))
    for start in range(0, depth, LANES):
        width = min(LANES, depth - start)
        # products[l, i, j] = left[i, start + l] * right[start + l, j]
        products = wide_left[:, start : start + width].T[:, :, None] * wide_right[start : start + width, None, :]
        lanes[:width] += products
    return combine_lanes(np.moveaxis(lanes, 0, -1))
