"""Schedule-Free AdamW, Cython twin of
:func:`fastopt.schedule_free_adamw.reference.schedule_free_adamw_update`; maths in
:mod:`fastopt.schedule_free_adamw`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _schedule_free_adamw_loop(Py_ssize_t n, floating* param, const floating* grad, floating* z,
                                    floating* exp_avg_sq,
                                    bint maximize, floating weight_decay, floating beta2,
                                    floating one_minus_beta2, floating eps, floating bias_correction2,
                                    bint ckp1_small, floating ckp1, floating one_minus_ckp1,
                                    floating y_lr, floating lr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, zi, d, v, denom, u, y
    for i in range(n):
        p = param[i]
        zi = z[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d      # (2)
        denom = sqrt(v / bias_correction2) + eps                                 # (3)
        u = d / denom                                                            # (4)
        if weight_decay != 0:
            u = u + weight_decay * p                                             # (5)
        if ckp1_small:
            y = p + ckp1 * (zi - p)                                              # (6)
        else:
            y = zi - (zi - p) * one_minus_ckp1                                   # (6)
        param[i] = y + y_lr * u                                                  # (7)
        z[i] = zi - lr * u                                                       # (8)
