"""AdaBelief, Cython twin of :func:`fastopt.adabelief.reference.adabelief_update`; maths in
:mod:`fastopt.adabelief`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _adabelief_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                          floating* exp_avg_var,
                          floating* max_exp_avg_var,  # only if amsgrad
                          bint maximize, floating weight_decay, floating decay_factor,
                          floating beta1, floating one_minus_beta1, floating beta2,
                          floating one_minus_beta2, floating eps_root, bint amsgrad, floating lr,
                          floating eps, floating bias_correction1,
                          floating bias_correction2) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, m, r, s, smax, m_hat, s_hat
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (3)
        r = d - m                                                                # (4)
        exp_avg_var[i] = s = beta2 * exp_avg_var[i] + one_minus_beta2 * (r * r) + eps_root  # (5)
        if amsgrad:
            smax = max_exp_avg_var[i]
            # NaN-propagating maximum, exactly np.maximum's rule
            max_exp_avg_var[i] = s = smax if (smax >= s or smax != smax) else s  # (6)
        m_hat = m / bias_correction1                                             # (7)
        s_hat = s / bias_correction2                                             # (8)
        param[i] = p - lr * (m_hat / (sqrt(s_hat) + eps))                        # (9)
