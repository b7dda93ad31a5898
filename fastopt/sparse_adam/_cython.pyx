"""SparseAdam, Cython twin of :func:`fastopt.sparse_adam.reference.sparse_adam_update`; maths in
:mod:`fastopt.sparse_adam`.

Only the loop is written here (``floating`` is float32's ``float`` or float64's ``double``); its
entry points are generated from its signature at build time (``fastopt/_native/generate.py``).
"""

from cython cimport floating
from fastopt._native.floats cimport sqrt


cdef void _sparse_adam_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                            floating* exp_avg_sq, bint maximize, floating one_minus_beta1,
                            floating one_minus_beta2, floating eps,
                            floating step_size) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating d, m, v
    for i in range(n):
        d = -grad[i] if maximize else grad[i]                                    # (1)
        m = exp_avg[i]
        exp_avg[i] = m = m + (d - m) * one_minus_beta1                           # (2)
        v = exp_avg_sq[i]
        exp_avg_sq[i] = v = v + (d * d - v) * one_minus_beta2                    # (3)
        param[i] = param[i] - step_size * (m / (sqrt(v) + eps))                  # (4)
