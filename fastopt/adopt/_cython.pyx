"""ADOPT, Cython twin of :func:`fastopt.adopt.reference.adopt_update`; maths in
:mod:`fastopt.adopt`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _adopt_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                      floating* exp_avg_sq,
                      bint maximize, floating weight_decay, floating decay_factor, floating beta1,
                      floating one_minus_beta1, floating beta2, floating one_minus_beta2,
                      floating eps, floating lr, bint first_step,
                      floating clip) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, v, root, u, m
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if first_step:
            exp_avg_sq[i] = d * d                                                # (3)
        else:
            v = exp_avg_sq[i]
            if decay_factor != 1:
                p = p * decay_factor                                             # (4)
            root = sqrt(v)
            u = d / (eps if root < eps else root)                                # (5) NaN-propagating maximum
            u = clip if u > clip else (-clip if u < -clip else u)                # (6) NaN passes through
            exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * u            # (7)
            param[i] = p - lr * m                                                # (8)
            exp_avg_sq[i] = beta2 * v + one_minus_beta2 * (d * d)                # (9)
