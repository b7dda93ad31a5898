"""Rprop, Cython twin of :func:`fastopt.rprop.reference.rprop_update`; maths in :mod:`fastopt.rprop`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating


cdef void _rprop_loop(Py_ssize_t n, floating* param, const floating* grad, floating* prev,
                      floating* step_size, bint maximize, floating etaplus, floating etaminus,
                      floating step_size_min, floating step_size_max) noexcept nogil:
    # the factor and sign values in the arrays' dtype
    cdef floating one = 1, zero = 0
    cdef Py_ssize_t i
    cdef floating d, s, factor, size, direction
    for i in range(n):
        d = -grad[i] if maximize else grad[i]                                    # (1)
        s = d * prev[i]                                                          # (2)
        # selects, not branches: the signs are random, and the flat form vectorises
        factor = one                                                             # (3)
        factor = etaplus if s > 0 else factor                                    # (3)
        factor = etaminus if s < 0 else factor                                   # (3)
        size = step_size[i] * factor                                             # (4)
        size = step_size_min if size < step_size_min else size                   # (4)
        step_size[i] = size = step_size_max if size > step_size_max else size    # (4)
        d = zero if s < 0 else d                                                 # (5)
        # torch.sign's rule: 1, -1, and 0 for either zero and for NaN
        direction = (one if d > 0 else zero) - (one if d < 0 else zero)          # (6)
        param[i] = param[i] - direction * size                                   # (6)
        prev[i] = d                                                              # (7)
