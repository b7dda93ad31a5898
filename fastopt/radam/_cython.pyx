"""RAdam, Cython twin of :func:`fastopt.radam.reference.radam_update`; maths in :mod:`fastopt.radam`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _radam_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                      floating* exp_avg_sq, bint maximize, floating weight_decay,
                      floating decay_factor, floating beta1, floating one_minus_beta1,
                      floating beta2, floating one_minus_beta2, floating bias_correction1,
                      floating lr, bint rectified, floating bias_correction2_sqrt, floating eps,
                      floating rect) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, m, v, m_hat, adaptive
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (3)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d      # (4)
        m_hat = m / bias_correction1                                             # (5)
        if rectified:
            adaptive = bias_correction2_sqrt / (sqrt(v) + eps)
            param[i] = p - m_hat * lr * adaptive * rect                          # (8)
        else:
            param[i] = p - m_hat * lr                                            # (8)
