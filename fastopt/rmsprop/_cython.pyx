# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off.
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""RMSprop, Cython twin of :func:`fastopt.rmsprop.reference.rmsprop_update`; maths in :mod:`fastopt.rmsprop`."""

from cython cimport floating
from cython.parallel cimport prange
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
                   floating eps, floating momentum, floating lr, int num_threads):
    cdef Py_ssize_t i
    cdef floating p, d, v, gbar, avg, b
    # Threads only when asked (num_threads > 1); the GIL is released either way.
    for i in prange(param.shape[0], nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=num_threads > 1):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        square_avg[i] = v = rho * square_avg[i] + one_minus_rho * d * d          # (3)
        if centered:
            grad_avg[i] = gbar = rho * grad_avg[i] + one_minus_rho * d           # (4)
            avg = _sqrt(v - gbar * gbar)                                         # (5)
        else:
            avg = _sqrt(v)                                                       # (5)
        avg = avg + eps                                                          # (6)
        if momentum > 0:
            momentum_buffer[i] = b = momentum * momentum_buffer[i] + d / avg     # (7)
            param[i] = p - lr * b                                                # (7)
        else:
            param[i] = p - lr * d / avg                                          # (8)
