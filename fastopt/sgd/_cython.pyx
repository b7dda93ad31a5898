# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off.
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""SGD, Cython twin of :func:`fastopt.sgd.reference.sgd_update`; see :mod:`fastopt.sgd` for the maths."""

from cython cimport floating
from cython.parallel cimport prange


def sgd_update(floating[::1] param, const floating[::1] grad, floating[::1] momentum_buffer,
               bint maximize, floating weight_decay, floating momentum, bint first_step,
               floating one_minus_dampening, bint nesterov, floating lr, int num_threads):
    cdef Py_ssize_t i
    cdef floating p, d, b
    # Threads only when asked (num_threads > 1); the GIL is released either way.
    for i in prange(param.shape[0], nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=num_threads > 1):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if momentum != 0:
            if first_step:
                momentum_buffer[i] = b = d                                       # (3)
            else:
                momentum_buffer[i] = b = momentum * momentum_buffer[i] + one_minus_dampening * d  # (3)
            if nesterov:
                d = d + momentum * b                                             # (4)
            else:
                d = b                                                            # (4)
        param[i] = p - lr * d                                                    # (5)
