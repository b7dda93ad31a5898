"""Adafactor, Cython twin of :func:`fastopt.adafactor.reference.adafactor_update`; maths in
:mod:`fastopt.adafactor`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
Three passes, as the Numba twin: the sums of squares (4), (6), (7); the update's sum of squares
(11); the update. Every sum is in the order of :mod:`fastopt._sums`: columns 64 at a time (a
stack buffer), each in row order; the update's elements 256 at a time into a buffer at their
lane (``k % 8``, zeros around them), summed by whole blocks of 8, which vectorise.
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt
from fastopt._sums.sums cimport add_squares, combine_lanes, run_sum, run_sum_of_squares
from libc.math cimport sqrt as sqrt_double


cdef void _adafactor_loop(Py_ssize_t n, floating* param, const floating* grad,
                          floating* row_var,  # only if factored; length n // cols
                          floating* col_var,  # only if factored; length n // rows
                          floating* variance,  # only if not factored
                          bint factored, Py_ssize_t rows, Py_ssize_t cols, bint maximize,
                          floating decay_factor, floating eps1, floating eps1_squared, double eps2,
                          double d, floating weight, double rho) noexcept nogil:
    cdef Py_ssize_t batches = n // (rows * cols)
    cdef Py_ssize_t b, i, j, k, row, start, width, lane, end
    cdef floating one = 1, complement = one - weight  # 1 - w_t, as torch's lerp computes it
    cdef floating g, mean, r, c, v, p, r_mean, scale
    cdef double wide, rms, alpha, ratio
    cdef double lanes[8]
    cdef double columns[64]
    cdef floating chunk[256 + 16]
    if n == 0:
        return
    rms = sqrt_double(run_sum_of_squares(param, n)) / sqrt_double(<double>n)
    alpha = (rms if rms > eps2 else eps2) * rho                                  # (4), Python's max(eps2, rms)
    for b in range(batches if factored else 0):
        for i in range(rows):  # each row's mean square ((-g)**2 is g**2: maximize changes no square)
            mean = <floating>(run_sum_of_squares(grad + (b * rows + i) * cols, cols) / cols)
            r = row_var[b * rows + i]
            row_var[b * rows + i] = r + weight * (mean - r) if weight < 0.5 else mean - (mean - r) * complement  # (6)
        for start in range(0, cols, 64):  # each column's, in row order, 64 columns at a time
            width = min(64, cols - start)
            for j in range(width):
                columns[j] = 0.0
            for i in range(rows):
                for j in range(width):
                    wide = <double>grad[(b * rows + i) * cols + start + j]
                    columns[j] += wide * wide
            for j in range(width):
                mean = <floating>(columns[j] / rows)
                c = col_var[b * cols + start + j]
                col_var[b * cols + start + j] = c + weight * (mean - c) if weight < 0.5 else mean - (mean - c) * complement  # (7)
    for k in range(0 if factored else n):
        g = -grad[k] if maximize else grad[k]                                    # (1)
        v = variance[k]
        variance[k] = v + weight * (g * g - v) if weight < 0.5 else g * g - (g * g - v) * complement  # (9)
    for lane in range(0, 8):
        lanes[lane] = 0.0
    for b in range(batches):  # the update's sum of squares, element k of the tensor in lane k % 8
        r_mean = one
        if factored:
            r_mean = <floating>(run_sum(row_var + b * rows, rows) / rows)
            r_mean = r_mean if (r_mean >= eps1 or r_mean != r_mean) else eps1    # clamp, NaN kept
        for i in range(rows):
            row = (b * rows + i) * cols
            for start in range(0, cols, 256):
                width = min(256, cols - start)
                k = (row + start) % 8  # where the chunk's first element sits among the lanes
                for j in range(k):
                    chunk[j] = 0
                for j in range(width):
                    g = -grad[row + start + j] if maximize else grad[row + start + j]  # (1)
                    v = (row_var[b * rows + i] * col_var[b * cols + start + j]) / r_mean if factored else variance[row + start + j]  # (8)
                    v = v if (v >= eps1_squared or v != v) else eps1_squared
                    chunk[k + j] = (one / sqrt(v)) * g                           # (10)
                end = (k + width + 7) // 8 * 8
                for j in range(k + width, end):
                    chunk[j] = 0
                add_squares(chunk, end, lanes)
    ratio = sqrt_double(combine_lanes(lanes)) / (sqrt_double(<double>n) * d)
    scale = <floating>(-alpha / (ratio if ratio > 1.0 else 1.0))                 # Python's max(1, ratio)
    for b in range(batches):
        r_mean = one
        if factored:
            r_mean = <floating>(run_sum(row_var + b * rows, rows) / rows)
            r_mean = r_mean if (r_mean >= eps1 or r_mean != r_mean) else eps1
        for i in range(rows):
            row = (b * rows + i) * cols
            for j in range(cols):
                g = -grad[row + j] if maximize else grad[row + j]                # (1)
                v = (row_var[b * rows + i] * col_var[b * cols + j]) / r_mean if factored else variance[row + j]  # (8)
                v = v if (v >= eps1_squared or v != v) else eps1_squared
                p = param[row + j]
                if decay_factor != 1:
                    p = p * decay_factor                                         # (5)
                param[row + j] = p + scale * ((one / sqrt(v)) * g)               # (11), (10)
