# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("square_avg[i] = v = ..."), so the compiler never has to reload a value it just stored.
"""Adadelta, Cython twin of :func:`fastopt.adadelta.reference.adadelta_update`; maths in :mod:`fastopt.adadelta`.

``_adadelta_loop`` is the loop, over plain pointers; ``_adadelta_threads`` runs it on one contiguous
chunk per thread and ``_adadelta_run`` checks the lengths and picks one or the other. The entry
points: ``adadelta_update`` takes NumPy arrays through NumPy's C API (see ``fastopt/_arrays.pxd``)
and hands anything else to ``adadelta_update_buffers``, the same call on typed memoryviews (any
float32/float64 buffer); ``adadelta_update_many`` runs every array of a
:class:`fastopt._multi.Batch` (a whole parameter group in one call). All of them compute every
element with exactly the same operations.
"""

from cython cimport floating
from cython.parallel cimport prange
from numpy cimport NPY_FLOAT
from libc.math cimport sqrt, sqrtf

from fastopt._arrays cimport Arrays, plain_arrays
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


cdef int _adadelta_run(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t square_avg_size,
                       Py_ssize_t acc_delta_size, floating* param, const floating* grad,
                       floating* square_avg, floating* acc_delta, bint maximize,
                       floating weight_decay, floating decay_factor, floating rho,
                       floating one_minus_rho, floating eps, floating lr,
                       int num_threads) except -1:
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("adadelta_update", "grad", grad_size, n)
    require_length("adadelta_update", "square_avg", square_avg_size, n)
    require_length("adadelta_update", "acc_delta", acc_delta_size, n)
    with nogil:
        if num_threads > 1:
            _adadelta_threads(n, param, grad, square_avg, acc_delta, maximize, weight_decay,
                              decay_factor, rho, one_minus_rho, eps, lr, num_threads)
        else:
            _adadelta_loop(n, param, grad, square_avg, acc_delta, maximize, weight_decay,
                           decay_factor, rho, one_minus_rho, eps, lr)
    return 0


def adadelta_update(param, grad, square_avg, acc_delta, bint maximize, double weight_decay,
                    double decay_factor, double rho, double one_minus_rho, double eps, double lr,
                    int num_threads):
    # NumPy arrays through NumPy's C API (fastopt/_arrays.pxd); the scalars arrive as C doubles
    # and _adadelta_run[float] rounds them to float32 exactly as np.float32(x) would
    cdef Arrays a
    if not plain_arrays(&a, param, grad, square_avg, acc_delta):
        # any other buffer, or arrays that do not fit (the memoryviews then say why)
        return adadelta_update_buffers(param, grad, square_avg, acc_delta, maximize, weight_decay,
                                       decay_factor, rho, one_minus_rho, eps, lr, num_threads)
    if a.typenum == NPY_FLOAT:
        _adadelta_run[float](a.size[0], a.size[1], a.size[2], a.size[3], <float*> a.data[0],
                             <const float*> a.data[1], <float*> a.data[2], <float*> a.data[3],
                             maximize, weight_decay, decay_factor, rho, one_minus_rho, eps, lr,
                             num_threads)
    else:
        _adadelta_run[double](a.size[0], a.size[1], a.size[2], a.size[3], <double*> a.data[0],
                              <const double*> a.data[1], <double*> a.data[2], <double*> a.data[3],
                              maximize, weight_decay, decay_factor, rho, one_minus_rho, eps, lr,
                              num_threads)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def adadelta_update_buffers(floating[::1] param, const floating[::1] grad, floating[::1] square_avg,
                            floating[::1] acc_delta, bint maximize, floating weight_decay,
                            floating decay_factor, floating rho, floating one_minus_rho,
                            floating eps, floating lr, int num_threads):
    """``adadelta_update`` on typed memoryviews: any buffer of float32 or float64 (and what
    ``adadelta_update`` hands on when its arguments are not plain NumPy arrays)."""
    _adadelta_run(param.shape[0], grad.shape[0], square_avg.shape[0], acc_delta.shape[0],
                  _data(param), _const_data(grad), _data(square_avg), _data(acc_delta), maximize,
                  weight_decay, decay_factor, rho, one_minus_rho, eps, lr, num_threads)


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
