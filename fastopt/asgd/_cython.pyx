"""ASGD, Cython twin of :func:`fastopt.asgd.reference.asgd_update`; maths in :mod:`fastopt.asgd`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating


cdef void _asgd_loop(Py_ssize_t n, floating* param, const floating* grad, floating* ax,
                     bint maximize, floating weight_decay, floating shrink_factor, floating eta,
                     bint averaging, floating mu) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, a
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        param[i] = p = p * shrink_factor - eta * d                               # (3)
        if averaging:
            a = ax[i]
            ax[i] = a + (p - a) * mu                                             # (4)
        else:
            ax[i] = p                                                            # (4)
