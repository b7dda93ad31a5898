"""Adamax, Cython twin of :func:`fastopt.adamax.reference.adamax_update`; maths in :mod:`fastopt.adamax`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport fabs


cdef void _adamax_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                       floating* exp_inf, bint maximize, floating weight_decay,
                       floating decay_factor, floating beta1, floating one_minus_beta1,
                       floating beta2, bint eps_outside_max, floating eps,
                       floating step_size) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, m, decayed, floor, u
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (3)
        decayed = beta2 * exp_inf[i]
        floor = fabs(d) if eps_outside_max else fabs(d) + eps                    # (4)
        # NaN-propagating maximum, exactly np.maximum's rule
        exp_inf[i] = u = decayed if (decayed >= floor or decayed != decayed) else floor  # (4)
        if eps_outside_max:
            u = u + eps                                                          # (5)
        param[i] = p - step_size * m / u                                         # (5)
