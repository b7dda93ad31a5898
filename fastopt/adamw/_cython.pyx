# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off.
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""AdamW, Cython twin of :func:`fastopt.adamw.reference.adamw_update`; maths in :mod:`fastopt.adamw`."""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf keeps float32 arithmetic in single precision (and vectorises to vsqrtps)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


def adamw_update(floating[::1] param, const floating[::1] grad, floating[::1] exp_avg,
                 floating[::1] exp_avg_sq, floating[::1] max_exp_avg_sq, bint maximize,
                 floating decay_factor, floating beta1, floating one_minus_beta1, floating beta2,
                 floating one_minus_beta2, bint amsgrad, floating bias_correction2_sqrt,
                 floating eps, floating step_size, int num_threads):
    cdef Py_ssize_t i
    cdef floating p, d, m, v, vmax, denom
    # Threads only when asked (num_threads > 1); the GIL is released either way.
    for i in prange(param.shape[0], nogil=True, schedule="static", num_threads=num_threads,
                    use_threads_if=num_threads > 1):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        p = p * decay_factor                                                     # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (3)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d      # (4)
        if amsgrad:
            vmax = max_exp_avg_sq[i]
            # NaN-propagating maximum, exactly np.maximum's rule
            max_exp_avg_sq[i] = v = vmax if (vmax >= v or vmax != vmax) else v   # (5)
        denom = _sqrt(v) / bias_correction2_sqrt + eps                           # (6)
        param[i] = p - step_size * m / denom                                     # (7)
