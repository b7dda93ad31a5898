# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""RMSprop, Cython twin of :func:`fastopt.rmsprop.reference.rmsprop_update`; maths in :mod:`fastopt.rmsprop`.

``_rmsprop_loop`` is the loop, over plain pointers. ``rmsprop_update`` runs it on typed memoryviews
(one array each), ``rmsprop_update_many`` on every array of a :class:`fastopt._multi.Batch` (a whole
parameter group in one call), and ``_rmsprop_threads`` on one contiguous chunk per thread: all of
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


cdef void _rmsprop_loop(Py_ssize_t n, floating* param, const floating* grad, floating* square_avg,
                        floating* grad_avg, floating* momentum_buffer, bint maximize,
                        floating weight_decay, floating decay_factor, floating rho,
                        floating one_minus_rho, bint centered, bint eps_inside_sqrt, floating eps,
                        floating momentum, bint lr_in_momentum, floating lr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, v, gbar, w, avg, b
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        square_avg[i] = v = rho * square_avg[i] + one_minus_rho * d * d          # (3)
        if centered:
            grad_avg[i] = gbar = rho * grad_avg[i] + one_minus_rho * d           # (4)
            w = v - gbar * gbar                                                  # (5)
        else:
            w = v                                                                # (5)
        if eps_inside_sqrt:
            avg = _sqrt(w + eps)                                                 # (6)
        else:
            avg = _sqrt(w) + eps                                                 # (6)
        if momentum > 0:
            if lr_in_momentum:
                momentum_buffer[i] = b = momentum * momentum_buffer[i] + lr * d / avg    # (7)
                param[i] = p - b                                                 # (7)
            else:
                momentum_buffer[i] = b = momentum * momentum_buffer[i] + d / avg     # (7)
                param[i] = p - lr * b                                            # (7)
        else:
            param[i] = p - lr * d / avg                                          # (8)


cdef inline floating* _at(floating* array, Py_ssize_t offset) noexcept nogil:
    # a chunk of an optional state array (NULL, an unused slot, stays NULL)
    return array + offset if array != NULL else NULL


cdef void _rmsprop_threads(Py_ssize_t n, floating* param, const floating* grad,
                           floating* square_avg, floating* grad_avg, floating* momentum_buffer,
                           bint maximize, floating weight_decay, floating decay_factor,
                           floating rho, floating one_minus_rho, bint centered,
                           bint eps_inside_sqrt, floating eps, floating momentum,
                           bint lr_in_momentum, floating lr, int num_threads) noexcept nogil:
    # One contiguous chunk per thread (a multiple of 16 elements: whole SIMD vectors), each
    # stepped by the serial loop above. OpenMP threads, started only here.
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + 15) // 16 * 16
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _rmsprop_loop(stop - start, param + start, grad + start, _at(square_avg, start),
                          _at(grad_avg, start), _at(momentum_buffer, start), maximize, weight_decay,
                          decay_factor, rho, one_minus_rho, centered, eps_inside_sqrt, eps, momentum,
                          lr_in_momentum, lr)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array (an unused state slot) has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def rmsprop_update(floating[::1] param, const floating[::1] grad, floating[::1] square_avg,
                   floating[::1] grad_avg, floating[::1] momentum_buffer, bint maximize,
                   floating weight_decay, floating decay_factor, floating rho,
                   floating one_minus_rho, bint centered, bint eps_inside_sqrt, floating eps,
                   floating momentum, bint lr_in_momentum, floating lr, int num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("rmsprop_update", "grad", grad.shape[0], param.shape[0])
    require_length("rmsprop_update", "square_avg", square_avg.shape[0], param.shape[0])
    if centered:
        require_length("rmsprop_update", "grad_avg", grad_avg.shape[0], param.shape[0])
    if momentum > 0:
        require_length("rmsprop_update", "momentum_buffer", momentum_buffer.shape[0], param.shape[0])
    with nogil:
        if num_threads > 1:
            _rmsprop_threads(param.shape[0], _data(param), _const_data(grad), _data(square_avg),
                             _data(grad_avg), _data(momentum_buffer), maximize, weight_decay,
                             decay_factor, rho, one_minus_rho, centered, eps_inside_sqrt, eps,
                             momentum, lr_in_momentum, lr, num_threads)
        else:
            _rmsprop_loop(param.shape[0], _data(param), _const_data(grad), _data(square_avg),
                          _data(grad_avg), _data(momentum_buffer), maximize, weight_decay,
                          decay_factor, rho, one_minus_rho, centered, eps_inside_sqrt, eps,
                          momentum, lr_in_momentum, lr)


def rmsprop_update_many(Batch batch, bint maximize, floating weight_decay, floating decay_factor,
                        floating rho, floating one_minus_rho, bint centered, bint eps_inside_sqrt,
                        floating eps, floating momentum, bint lr_in_momentum, floating lr,
                        int num_threads, Py_ssize_t min_size):
    """Every row of ``batch`` (checked by ``Batch.gather``); rows of at least ``min_size``
    elements on up to ``num_threads`` threads."""
    cdef Py_ssize_t k
    cdef void** row
    with nogil:
        for k in range(batch.count):
            row = batch.pointers + k * batch.width
            if num_threads > 1 and batch.sizes[k] >= min_size:
                _rmsprop_threads(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                                 <floating*> row[2], <floating*> row[3], <floating*> row[4],
                                 maximize, weight_decay, decay_factor, rho, one_minus_rho,
                                 centered, eps_inside_sqrt, eps, momentum, lr_in_momentum, lr,
                                 num_threads)
            else:
                _rmsprop_loop(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                              <floating*> row[2], <floating*> row[3], <floating*> row[4], maximize,
                              weight_decay, decay_factor, rho, one_minus_rho, centered,
                              eps_inside_sqrt, eps, momentum, lr_in_momentum, lr)
