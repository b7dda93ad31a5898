# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off.
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""Adagrad, Cython twin of :func:`fastopt.adagrad.reference.adagrad_update`; maths in :mod:`fastopt.adagrad`."""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf keeps float32 arithmetic in single precision (and vectorises to vsqrtps)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


def adagrad_update(floating[::1] param, const floating[::1] grad, floating[::1] state_sum,
                   bint maximize, floating weight_decay, floating eps, floating clr, int num_threads):
    cdef Py_ssize_t i
    cdef floating p, d, s, std
    # Threads only when asked (num_threads > 1); the GIL is released either way.
    for i in prange(param.shape[0], nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=num_threads > 1):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        state_sum[i] = s = state_sum[i] + d * d                                  # (4)
        std = _sqrt(s) + eps                                                     # (5)
        param[i] = p - clr * d / std                                             # (6)
