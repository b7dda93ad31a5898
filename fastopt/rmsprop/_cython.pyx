# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off.
"""RMSprop, Cython twin of :func:`fastopt.rmsprop.reference.rmsprop_update`; maths in :mod:`fastopt.rmsprop`."""

from cython cimport floating
from libc.math cimport sqrt, sqrtf


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf keeps float32 arithmetic in single precision (and vectorises to vsqrtps)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


def rmsprop_update(floating[::1] param, const floating[::1] grad, floating[::1] square_avg,
                   floating[::1] grad_avg, floating[::1] momentum_buffer, bint maximize,
                   floating weight_decay, floating rho, floating one_minus_rho, bint centered,
                   floating eps, floating momentum, floating lr):
    cdef Py_ssize_t i
    cdef floating d, avg
    with nogil:
        for i in range(param.shape[0]):
            d = -grad[i] if maximize else grad[i]                                    # (1)
            if weight_decay != 0:
                d = d + weight_decay * param[i]                                      # (2)
            square_avg[i] = rho * square_avg[i] + one_minus_rho * d * d              # (3)
            if centered:
                grad_avg[i] = rho * grad_avg[i] + one_minus_rho * d                  # (4)
                avg = _sqrt(square_avg[i] - grad_avg[i] * grad_avg[i])               # (5)
            else:
                avg = _sqrt(square_avg[i])                                           # (5)
            avg = avg + eps                                                          # (6)
            if momentum > 0:
                momentum_buffer[i] = momentum * momentum_buffer[i] + d / avg         # (7)
                param[i] = param[i] - lr * momentum_buffer[i]                        # (7)
            else:
                param[i] = param[i] - lr * d / avg                                   # (8)
