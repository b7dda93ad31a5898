"""Adadelta, Cython twin of :func:`fastopt.adadelta.reference.adadelta_update`; maths in :mod:`fastopt.adadelta`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _adadelta_loop(Py_ssize_t n, floating* param, const floating* grad, floating* square_avg,
                         floating* acc_delta, bint maximize, floating weight_decay,
                         floating decay_factor, floating rho, floating one_minus_rho, floating eps,
                         floating lr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, v, std, u, delta
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        square_avg[i] = v = rho * square_avg[i] + one_minus_rho * d * d          # (3)
        std = sqrt(v + eps)                                                      # (4)
        u = acc_delta[i]
        delta = sqrt(u + eps) / std * d                                          # (5)
        acc_delta[i] = rho * u + one_minus_rho * delta * delta                   # (6)
        param[i] = p - lr * delta                                                # (7)
