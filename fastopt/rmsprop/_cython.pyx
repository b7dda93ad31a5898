"""RMSprop, Cython twin of :func:`fastopt.rmsprop.reference.rmsprop_update`; maths in :mod:`fastopt.rmsprop`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _rmsprop_loop(Py_ssize_t n, floating* param, const floating* grad, floating* square_avg,
                        floating* grad_avg,  # only if centered
                        floating* momentum_buffer,  # only if momentum > 0
                        bint maximize, floating weight_decay, floating decay_factor, floating rho,
                        floating one_minus_rho, bint centered, bint eps_inside_sqrt, floating eps,
                        floating momentum, bint lr_in_momentum, floating lr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, v, gbar, w, avg, b
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        square_avg[i] = v = rho * square_avg[i] + one_minus_rho * d * d          # (3)
        if centered:
            grad_avg[i] = gbar = rho * grad_avg[i] + one_minus_rho * d           # (4)
            w = v - gbar * gbar                                                  # (5)
        else:
            w = v                                                                # (5)
        # one square root either way: eps inside it (Keras, optax) or added to it (torch)
        avg = sqrt(w + eps if eps_inside_sqrt else w)                            # (6)
        if not eps_inside_sqrt:
            avg = avg + eps                                                      # (6)
        if momentum > 0:
            if lr_in_momentum:
                momentum_buffer[i] = b = momentum * momentum_buffer[i] + lr * d / avg    # (7)
                param[i] = p - b                                                 # (7)
            else:
                momentum_buffer[i] = b = momentum * momentum_buffer[i] + d / avg     # (7)
                param[i] = p - lr * b                                            # (7)
        else:
            param[i] = p - lr * d / avg                                          # (8)
