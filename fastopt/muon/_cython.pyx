"""Muon, Cython twin of :func:`fastopt.muon.reference.muon_update`; maths in :mod:`fastopt.muon`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``):
``workspace`` has its own length, so the loop is one call per parameter on one thread. As the
Numba twin: the momentum (1)-(2) and the norm (3); Newton-Schulz (4)-(6) on the scratch matrices
of ``workspace`` (``X``, its transpose ``T``, the product ``Y``, the Gram matrix ``A`` and the
polynomial ``G``), every product ``left @ right.T`` in rule 4's order
(``fastopt/_sums/sums.pxd``: both operands read along ``k``, 2 x 2 or 2 x 4 outputs at a time, one
triangle of a symmetric product); the step (8)-(9).
"""

from cython cimport floating
from fastopt._native.floats cimport fabs
from fastopt._sums.sums cimport combine_lanes, matmul_rows, run_sum_of_squares
from libc.math cimport sqrt as sqrt_double


cdef void _muon_loop(Py_ssize_t n, floating* param, const floating* grad,
                     floating* momentum_buffer,
                     floating* workspace,  # length 3 * n + 2 * min(rows, cols) * min(rows, cols)
                     Py_ssize_t rows, Py_ssize_t cols, bint nesterov, floating momentum, floating weight,
                     floating coefficient_a, floating coefficient_b, floating coefficient_c, floating eps, int ns_steps, floating decay_factor,
                     double lr, int adjust) noexcept nogil:
    cdef Py_ssize_t i, j, k, step_index
    cdef Py_ssize_t small = min(rows, cols), large = max(rows, cols)
    cdef floating one = 1, weight_complement = one - weight, momentum_complement = one - momentum
    cdef floating g, buffer, u, norm, denominator, p, o, step
    cdef floating* x = workspace
    cdef floating* t = workspace + n
    cdef floating* y = workspace + 2 * n
    cdef floating* gram = workspace + 3 * n
    cdef floating* poly = workspace + 3 * n + small * small
    cdef double ratio
    if n == 0 or n != rows * cols:  # one matrix (the entry has checked a whole number of them)
        return
    # the momentum and the update, into X in the wide orientation (X[j, i] = U[i, j] when rows > cols)
    for i in range(rows):
        for j in range(cols):
            k = i * cols + j
            g = grad[k]
            buffer = momentum_buffer[k]
            if fabs(weight) < 0.5:
                buffer = buffer + weight * (g - buffer)                                 # (1)
            else:
                buffer = g - (g - buffer) * weight_complement
            momentum_buffer[k] = buffer
            if nesterov:
                if fabs(momentum) < 0.5:
                    u = g + momentum * (buffer - g)                                     # (2)
                else:
                    u = buffer - (buffer - g) * momentum_complement
            else:
                u = buffer
            x[j * rows + i if rows > cols else k] = u
    # the norm in U's own order (row after row), rule 2
    if rows > cols:
        for i in range(rows):
            for j in range(cols):
                t[i * cols + j] = x[j * rows + i]
        norm = <floating>sqrt_double(run_sum_of_squares(t, n))                          # (3)
    else:
        norm = <floating>sqrt_double(run_sum_of_squares(x, n))
    denominator = eps if norm < eps else norm  # torch's clamp(min=eps): a NaN norm stays NaN
    for k in range(n):
        x[k] = x[k] / denominator
    for step_index in range(ns_steps):
        matmul_rows(x, x, small, small, large, gram, True)                              # (4) A = X X^T
        matmul_rows(gram, gram, small, small, small, poly, True)                        # A A (A = A^T)
        for k in range(small * small):
            poly[k] = coefficient_b * gram[k] + coefficient_c * poly[k]                                         # (5)
        for i in range(small):  # T = X^T, so that G X reads X's columns along k
            for j in range(large):
                t[j * small + i] = x[i * large + j]
        matmul_rows(poly, t, small, large, small, y, False)                             # G X
        for k in range(n):
            x[k] = coefficient_a * x[k] + y[k]                                                      # (6)
    ratio = sqrt_double(max(1.0, <double>rows / <double>cols)) if adjust == 0 else 0.2 * sqrt_double(<double>max(rows, cols))
    step = <floating>(-(lr * ratio))                                                    # (9)
    for i in range(rows):
        for j in range(cols):
            k = i * cols + j
            o = x[j * rows + i if rows > cols else k]                                   # (7)
            p = param[k] * decay_factor                                                 # (8)
            param[k] = p + step * o                                                     # (9)
