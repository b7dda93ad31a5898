"""Adafactor, Numba twin of :func:`fastopt.adafactor.reference.adafactor_update`; maths in
:mod:`fastopt.adafactor`.

Three passes over the parameter, with every sum in the order of :mod:`fastopt._sums`: the sums of
squares (4), (6), (7); the update's sum of squares (11), its elements 256 at a time into a buffer
at their lane (``k % 8``, zeros around them); the update itself, recomputing each element of ``U``
rather than storing it. Numba has no arrays on the stack: the 272-element buffer and, for a
matrix, a row of column sums are its two allocations per call.
"""

import numpy as np

from .._jit import jit_kernel, require_lengths, require_matrices, require_size
from .._sums._numba import NO_LANES, add_to_lanes, combine_lanes, run_sum, run_sum_of_squares


@jit_kernel
def adafactor_update(param, grad, row_var, col_var, variance, factored, rows, cols, maximize, decay_factor,
                     eps1, eps1_squared, eps2, d, weight, rho, num_threads):
    n = param.shape[0]
    require_matrices("adafactor_update", n, rows, cols)
    require_lengths("adafactor_update", param, "grad", (grad,))
    if factored:
        require_size("adafactor_update", "row_var", row_var.shape[0], n // cols, "n // cols")
        require_size("adafactor_update", "col_var", col_var.shape[0], n // rows, "n // rows")
    else:
        require_lengths("adafactor_update", param, "variance", (variance,))
    if n == 0:
        return
    dtype = param.dtype.type
    one = dtype(1.0)
    complement = one - weight  # 1 - w_t, in the arrays' dtype as torch's lerp computes it
    rms = np.sqrt(run_sum_of_squares(param, 0, n)) / np.sqrt(np.float64(n))
    alpha = (rms if rms > eps2 else eps2) * rho                                       # (4), Python's max(eps2, rms)
    batches = n // (rows * cols)
    if factored:
        columns = np.zeros(cols)  # each column's sum of squares, in row order
        for b in range(batches):
            columns[:] = 0.0
            for i in range(rows):  # (-g)**2 is g**2: maximize changes no square
                row = (b * rows + i) * cols
                mean = dtype(run_sum_of_squares(grad, row, cols) / cols)
                r = row_var[b * rows + i]
                row_var[b * rows + i] = r + weight * (mean - r) if weight < 0.5 else mean - (mean - r) * complement  # (6)
                for j in range(cols):
                    wide = np.float64(grad[row + j])
                    columns[j] += wide * wide
            for j in range(cols):
                mean = dtype(columns[j] / rows)
                c = col_var[b * cols + j]
                col_var[b * cols + j] = c + weight * (mean - c) if weight < 0.5 else mean - (mean - c) * complement  # (7)
    else:
        for k in range(n):
            g = -grad[k] if maximize else grad[k]                                    # (1)
            v = variance[k]
            variance[k] = v + weight * (g * g - v) if weight < 0.5 else g * g - (g * g - v) * complement  # (9)
    lanes = NO_LANES  # the update's sum of squares, element k of the tensor in lane k % 8
    chunk = np.zeros(256 + 16, param.dtype)
    for b in range(batches):
        r_mean = one
        if factored:
            r_mean = dtype(run_sum(row_var, b * rows, rows) / rows)
            r_mean = r_mean if (r_mean >= eps1 or r_mean != r_mean) else eps1          # clamp, NaN kept
        for i in range(rows):
            row = (b * rows + i) * cols
            for start in range(0, cols, 256):
                width = min(256, cols - start)
                offset = (row + start) % 8  # where the chunk's first element sits among the lanes
                chunk[:offset] = 0
                for j in range(width):
                    k = row + start + j
                    g = -grad[k] if maximize else grad[k]                            # (1)
                    v = (row_var[b * rows + i] * col_var[b * cols + start + j]) / r_mean if factored else variance[k]  # (8)
                    v = v if (v >= eps1_squared or v != v) else eps1_squared
                    chunk[offset + j] = (one / np.sqrt(v)) * g                       # (10)
                end = (offset + width + 7) // 8 * 8
                chunk[offset + width:end] = 0
                lanes = add_to_lanes(lanes, chunk, 0, end, True)
    ratio = np.sqrt(combine_lanes(lanes)) / (np.sqrt(np.float64(n)) * d)
    scale = dtype(-alpha / (ratio if ratio > 1.0 else 1.0))                          # Python's max(1, ratio)
    for b in range(batches):
        r_mean = one
        if factored:
            r_mean = dtype(run_sum(row_var, b * rows, rows) / rows)
            r_mean = r_mean if (r_mean >= eps1 or r_mean != r_mean) else eps1
        for i in range(rows):
            row = (b * rows + i) * cols
            for j in range(cols):
                g = -grad[row + j] if maximize else grad[row + j]                    # (1)
                v = (row_var[b * rows + i] * col_var[b * cols + j]) / r_mean if factored else variance[row + j]  # (8)
                v = v if (v >= eps1_squared or v != v) else eps1_squared
                p = param[row + j]
                if decay_factor != 1:
                    p = p * decay_factor                                             # (5)
                param[row + j] = p + scale * ((one / np.sqrt(v)) * g)                # (11), (10)
