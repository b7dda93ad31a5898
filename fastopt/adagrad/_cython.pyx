"""Adagrad, Cython twin of :func:`fastopt.adagrad.reference.adagrad_update`; maths in :mod:`fastopt.adagrad`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _adagrad_loop(Py_ssize_t n, floating* param, const floating* grad, floating* state_sum,
                        bint maximize, floating weight_decay, floating decay_factor,
                        bint eps_inside_sqrt, floating eps, floating clr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, s, std
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        state_sum[i] = s = state_sum[i] + d * d                                  # (4)
        # one square root either way: eps inside it (Keras, optax) or added to it (torch)
        std = sqrt(s + eps if eps_inside_sqrt else s)                            # (5)
        if not eps_inside_sqrt:
            std = std + eps                                                      # (5)
        param[i] = p - clr * d / std                                             # (6)
