"""LAMB, Cython twin of :func:`fastopt.lamb.reference.lamb_update`; maths in :mod:`fastopt.lamb`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``):
``# whole tensor`` on its first line makes it one call per parameter on one thread, its arrays
all of ``param``'s length. Two passes, as the Numba twin: the moments, the update and the two
sums of squares of (7), 256 elements at a time (chunks start at multiples of 8, so element ``k``
sits in lane ``k % 8`` as :mod:`fastopt._sums` says); then the step, recomputing the update.
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt
from fastopt._sums.sums cimport add_squares, combine_lanes
from libc.math cimport sqrt as sqrt_double


cdef void _lamb_loop(Py_ssize_t n, floating* param, const floating* grad,  # whole tensor
                     floating* exp_avg, floating* exp_avg_sq,
                     bint maximize, floating beta1, floating one_minus_beta1, floating beta2,
                     floating one_minus_beta2, floating eps, floating eps_root, floating weight_decay,
                     double lr, floating bias_correction1, floating bias_correction2) noexcept nogil:
    cdef Py_ssize_t k, j, start, width, lane
    cdef floating g, m, v, u, p, step
    cdef double param_norm, update_norm, ratio
    cdef double param_lanes[8]
    cdef double update_lanes[8]
    cdef floating chunk[256]
    if n == 0:
        return
    for lane in range(0, 8):  # written so, as in Adafactor: fastopt show reads a bare 8 in parentheses as a tag
        param_lanes[lane] = 0.0
        update_lanes[lane] = 0.0
    for start in range(0, n, 256):
        width = min(256, n - start)
        add_squares(param + start, width, param_lanes)                               # theta_{t-1}: its squares, before the step
        for j in range(width):
            k = start + j
            g = -grad[k] if maximize else grad[k]                                    # (1)
            m = one_minus_beta1 * g + beta1 * exp_avg[k]                             # (2)
            v = one_minus_beta2 * (g * g) + beta2 * exp_avg_sq[k]                    # (3)
            exp_avg[k] = m
            exp_avg_sq[k] = v
            u = (m / bias_correction1) / (sqrt(v / bias_correction2 + eps_root) + eps)  # (4), (5)
            if weight_decay != 0:
                u = u + weight_decay * param[k]                                      # (6)
            chunk[j] = u
        add_squares(chunk, width, update_lanes)                                      # (7)
    param_norm = sqrt_double(combine_lanes(param_lanes))
    update_norm = sqrt_double(combine_lanes(update_lanes))
    ratio = 1.0 if (param_norm == 0.0 or update_norm == 0.0) else param_norm / update_norm  # (8), optax's rule
    step = <floating>(-(lr * ratio))
    for k in range(n):
        p = param[k]
        u = (exp_avg[k] / bias_correction1) / (sqrt(exp_avg_sq[k] / bias_correction2 + eps_root) + eps)  # (4), (5)
        if weight_decay != 0:
            u = u + weight_decay * p                                                 # (6)
        param[k] = p + step * u                                                      # (9)
