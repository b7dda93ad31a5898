"""Lion, Cython twin of :func:`fastopt.lion.reference.lion_update`; maths in :mod:`fastopt.lion`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating


cdef void _lion_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                     bint maximize, floating decay_factor, floating beta1,
                     floating one_minus_beta1, floating lr, floating beta2,
                     floating one_minus_beta2) noexcept nogil:
    # sign's values in the arrays' dtype
    cdef floating one = 1, zero = 0
    cdef Py_ssize_t i
    cdef floating m, d, p, x, c
    for i in range(n):
        m = exp_avg[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        p = param[i] * decay_factor                                              # (2)
        x = beta1 * m + one_minus_beta1 * d
        # np.sign's rule: 1, -1, 0 for either zero (+0.0), and NaN stays NaN; written as selects
        # (branches on random signs mispredict, and only AVX-512 vectorised the nested form)
        c = (one if x > 0 else zero) - (one if x < 0 else zero)                  # (3)
        c = x if x != x else c                                                   # (3)
        param[i] = p - lr * c                                                    # (4)
        exp_avg[i] = beta2 * m + one_minus_beta2 * d                             # (5)
