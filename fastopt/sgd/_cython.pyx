"""SGD, Cython twin of :func:`fastopt.sgd.reference.sgd_update`; maths in :mod:`fastopt.sgd`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating


cdef void _sgd_loop(Py_ssize_t n, floating* param, const floating* grad,
                    floating* momentum_buffer,  # only if momentum != 0
                    bint maximize, floating weight_decay, floating decay_factor, floating momentum,
                    bint first_step, floating one_minus_dampening, bint nesterov,
                    floating lr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, b
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        if momentum != 0:
            # one store per element and a select, not a branch: the loop then vectorises
            momentum_buffer[i] = b = d if first_step else momentum * momentum_buffer[i] + one_minus_dampening * d  # (3)
            d = d + momentum * b if nesterov else b                                  # (4)
        param[i] = p - lr * d                                                    # (5)
