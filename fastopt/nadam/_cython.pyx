# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""NAdam, Cython twin of :func:`fastopt.nadam.reference.nadam_update`; maths in :mod:`fastopt.nadam`.

``_nadam_loop`` is the loop, over plain pointers. ``nadam_update`` runs it on typed memoryviews
(one array each), ``nadam_update_many`` on every array of a :class:`fastopt._multi.Batch` (a whole
parameter group in one call), and ``_nadam_threads`` on one contiguous chunk per thread: all of
them compute every element with exactly the same operations.
"""

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt, sqrtf

from fastopt._checks cimport require_length
from fastopt._multi cimport Batch


cdef inline floating _sqrt(floating x) noexcept nogil:
    # sqrtf keeps float32 arithmetic in single precision (and vectorises to vsqrtps)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt(x)


cdef void _nadam_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                      floating* exp_avg_sq, bint maximize, floating weight_decay,
                      floating decay_factor, floating beta1, floating one_minus_beta1,
                      floating beta2, floating one_minus_beta2, floating bias_correction2,
                      floating eps, floating grad_step, floating momentum_step) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, m, v, denom
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (5)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d      # (6)
        denom = _sqrt(v / bias_correction2) + eps                                # (7)
        p = p - grad_step * d / denom                                            # (8)
        param[i] = p - momentum_step * m / denom                                 # (9)


cdef void _nadam_threads(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                         floating* exp_avg_sq, bint maximize, floating weight_decay,
                         floating decay_factor, floating beta1, floating one_minus_beta1,
                         floating beta2, floating one_minus_beta2, floating bias_correction2,
                         floating eps, floating grad_step, floating momentum_step,
                         int num_threads) noexcept nogil:
    # One contiguous chunk per thread (a multiple of 16 elements: whole SIMD vectors), each
    # stepped by the serial loop above. OpenMP threads, started only here.
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + 15) // 16 * 16
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _nadam_loop(stop - start, param + start, grad + start, exp_avg + start,
                        exp_avg_sq + start, maximize, weight_decay, decay_factor, beta1,
                        one_minus_beta1, beta2, one_minus_beta2, bias_correction2, eps, grad_step,
                        momentum_step)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def nadam_update(floating[::1] param, const floating[::1] grad, floating[::1] exp_avg,
                 floating[::1] exp_avg_sq, bint maximize, floating weight_decay,
                 floating decay_factor, floating beta1, floating one_minus_beta1, floating beta2,
                 floating one_minus_beta2, floating bias_correction2, floating eps,
                 floating grad_step, floating momentum_step, int num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("nadam_update", "grad", grad.shape[0], param.shape[0])
    require_length("nadam_update", "exp_avg", exp_avg.shape[0], param.shape[0])
    require_length("nadam_update", "exp_avg_sq", exp_avg_sq.shape[0], param.shape[0])
    with nogil:
        if num_threads > 1:
            _nadam_threads(param.shape[0], _data(param), _const_data(grad), _data(exp_avg),
                           _data(exp_avg_sq), maximize, weight_decay, decay_factor, beta1,
                           one_minus_beta1, beta2, one_minus_beta2, bias_correction2, eps,
                           grad_step, momentum_step, num_threads)
        else:
            _nadam_loop(param.shape[0], _data(param), _const_data(grad), _data(exp_avg),
                        _data(exp_avg_sq), maximize, weight_decay, decay_factor, beta1,
                        one_minus_beta1, beta2, one_minus_beta2, bias_correction2, eps, grad_step,
                        momentum_step)


def nadam_update_many(Batch batch, bint maximize, floating weight_decay, floating decay_factor,
                      floating beta1, floating one_minus_beta1, floating beta2,
                      floating one_minus_beta2, floating bias_correction2, floating eps,
                      floating grad_step, floating momentum_step, int num_threads,
                      Py_ssize_t min_size):
    """Every row of ``batch`` (checked by ``Batch.gather``); rows of at least ``min_size``
    elements on up to ``num_threads`` threads."""
    cdef Py_ssize_t k
    cdef void** row
    with nogil:
        for k in range(batch.count):
            row = batch.pointers + k * batch.width
            if num_threads > 1 and batch.sizes[k] >= min_size:
                _nadam_threads(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                               <floating*> row[2], <floating*> row[3], maximize, weight_decay,
                               decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2,
                               bias_correction2, eps, grad_step, momentum_step, num_threads)
            else:
                _nadam_loop(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                            <floating*> row[2], <floating*> row[3], maximize, weight_decay,
                            decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2,
                            bias_correction2, eps, grad_step, momentum_step)
