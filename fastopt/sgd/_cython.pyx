# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off.
"""SGD, Cython twin of :func:`fastopt.sgd.reference.sgd_update`; see :mod:`fastopt.sgd` for the maths."""

from cython cimport floating


def sgd_update(floating[::1] param, const floating[::1] grad, floating[::1] momentum_buffer,
               bint maximize, floating weight_decay, floating momentum, bint first_step,
               floating one_minus_dampening, bint nesterov, floating lr):
    cdef Py_ssize_t i
    cdef floating d
    with nogil:
        for i in range(param.shape[0]):
            d = -grad[i] if maximize else grad[i]                                    # (1)
            if weight_decay != 0:
                d = d + weight_decay * param[i]                                      # (2)
            if momentum != 0:
                if first_step:
                    momentum_buffer[i] = d                                           # (3)
                else:
                    momentum_buffer[i] = momentum * momentum_buffer[i] + one_minus_dampening * d  # (3)
                if nesterov:
                    d = d + momentum * momentum_buffer[i]                            # (4)
                else:
                    d = momentum_buffer[i]                                           # (4)
            param[i] = param[i] - lr * d                                             # (5)
