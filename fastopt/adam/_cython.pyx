"""Adam, Cython twin of :func:`fastopt.adam.reference.adam_update`; maths in :mod:`fastopt.adam`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _adam_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                     floating* exp_avg_sq,
                     floating* max_exp_avg_sq,  # only if amsgrad
                     bint maximize, floating weight_decay, floating decay_factor, floating beta1,
                     floating one_minus_beta1, floating beta2, floating one_minus_beta2,
                     bint amsgrad, bint amsgrad_corrected_max, floating bias_correction2,
                     floating eps_t, floating step_size) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, m, v, vmax, denom
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (3)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d      # (4)
        if amsgrad:
            if amsgrad_corrected_max:
                v = v / bias_correction2                                         # (5)
            vmax = max_exp_avg_sq[i]
            # NaN-propagating maximum, exactly np.maximum's rule
            max_exp_avg_sq[i] = v = vmax if (vmax >= v or vmax != vmax) else v   # (5)
        denom = sqrt(v) + eps_t                                                  # (6)
        param[i] = p - step_size * m / denom                                     # (7)
