"""NAdam, Cython twin of :func:`fastopt.nadam.reference.nadam_update`; maths in :mod:`fastopt.nadam`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _nadam_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                      floating* exp_avg_sq, bint maximize, floating weight_decay,
                      floating decay_factor, floating beta1, floating one_minus_beta1,
                      floating beta2, floating one_minus_beta2, floating bias_correction2,
                      floating eps, floating grad_step, floating momentum_step) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, m, v, denom
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (5)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d      # (6)
        denom = sqrt(v / bias_correction2) + eps                                 # (7)
        p = p - grad_step * d / denom                                            # (8)
        param[i] = p - momentum_step * m / denom                                 # (9)
