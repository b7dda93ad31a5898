# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("square_avg[i] = v = ..."), so the compiler never has to reload a value it just stored.
"""Adadelta, Cython twin of :func:`fastopt.adadelta.reference.adadelta_update`; maths in :mod:`fastopt.adadelta`.

``_adadelta_loop`` is the loop, over plain pointers. ``adadelta_update`` runs it on typed
memoryviews (one array each), ``adadelta_update_many`` on every array of a
:class:`fastopt._multi.Batch` (a whole parameter group in one call), and ``_adadelta_threads`` on
one contiguous chunk per thread: all of them compute every element with exactly the same operations.
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


cdef void _adadelta_loop(Py_ssize_t n, floating* param, const floating* grad, floating* square_avg,
                         floating* acc_delta, bint maximize, floating weight_decay,
                         floating decay_factor, floating rho, floating one_minus_rho, floating eps,
                         floating lr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, v, std, u, delta
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        square_avg[i] = v = rho * square_avg[i] + one_minus_rho * d * d          # (3)
        std = _sqrt(v + eps)                                                     # (4)
        u = acc_delta[i]
        delta = _sqrt(u + eps) / std * d                                         # (5)
        acc_delta[i] = rho * u + one_minus_rho * delta * delta                   # (6)
        param[i] = p - lr * delta                                                # (7)


cdef void _adadelta_threads(Py_ssize_t n, floating* param, const floating* grad,
                            floating* square_avg, floating* acc_delta, bint maximize,
                            floating weight_decay, floating decay_factor, floating rho,
                            floating one_minus_rho, floating eps, floating lr,
                            int num_threads) noexcept nogil:
    # One contiguous chunk per thread (a multiple of 16 elements: whole SIMD vectors), each
    # stepped by the serial loop above. OpenMP threads, started only here.
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + 15) // 16 * 16
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _adadelta_loop(stop - start, param + start, grad + start, square_avg + start,
                           acc_delta + start, maximize, weight_decay, decay_factor, rho,
                           one_minus_rho, eps, lr)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def adadelta_update(floating[::1] param, const floating[::1] grad, floating[::1] square_avg,
                    floating[::1] acc_delta, bint maximize, floating weight_decay,
                    floating decay_factor, floating rho, floating one_minus_rho, floating eps,
                    floating lr, int num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("adadelta_update", "grad", grad.shape[0], param.shape[0])
    require_length("adadelta_update", "square_avg", square_avg.shape[0], param.shape[0])
    require_length("adadelta_update", "acc_delta", acc_delta.shape[0], param.shape[0])
    with nogil:
        if num_threads > 1:
            _adadelta_threads(param.shape[0], _data(param), _const_data(grad), _data(square_avg),
                              _data(acc_delta), maximize, weight_decay, decay_factor, rho,
                              one_minus_rho, eps, lr, num_threads)
        else:
            _adadelta_loop(param.shape[0], _data(param), _const_data(grad), _data(square_avg),
                           _data(acc_delta), maximize, weight_decay, decay_factor, rho,
                           one_minus_rho, eps, lr)


def adadelta_update_many(Batch batch, bint maximize, floating weight_decay, floating decay_factor,
                         floating rho, floating one_minus_rho, floating eps, floating lr,
                         int num_threads, Py_ssize_t min_size):
    """Every row of ``batch`` (checked by ``Batch.gather``); rows of at least ``min_size``
    elements on up to ``num_threads`` threads."""
    cdef Py_ssize_t k
    cdef void** row
    with nogil:
        for k in range(batch.count):
            row = batch.pointers + k * batch.width
            if num_threads > 1 and batch.sizes[k] >= min_size:
                _adadelta_threads(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                                  <floating*> row[2], <floating*> row[3], maximize, weight_decay,
                                  decay_factor, rho, one_minus_rho, eps, lr, num_threads)
            else:
                _adadelta_loop(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                               <floating*> row[2], <floating*> row[3], maximize, weight_decay,
                               decay_factor, rho, one_minus_rho, eps, lr)
