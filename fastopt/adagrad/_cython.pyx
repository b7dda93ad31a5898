# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""Adagrad, Cython twin of :func:`fastopt.adagrad.reference.adagrad_update`; maths in :mod:`fastopt.adagrad`.

``_adagrad_loop`` is the loop, over plain pointers; ``_adagrad_threads`` runs it on one contiguous
chunk per thread and ``_adagrad_run`` checks the lengths and picks one or the other. The entry
points: ``adagrad_update`` takes NumPy arrays through NumPy's C API (see ``fastopt/_arrays.pxd``)
and hands anything else to ``adagrad_update_buffers``, the same call on typed memoryviews (any
float32/float64 buffer); ``adagrad_update_many`` runs every array of a :class:`fastopt._multi.Batch`
(a whole parameter group in one call). All of them compute every element with exactly the same
operations.
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


cdef void _adagrad_loop(Py_ssize_t n, floating* param, const floating* grad, floating* state_sum,
                        bint maximize, floating weight_decay, floating decay_factor,
                        bint eps_inside_sqrt, floating eps, floating clr) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, s, std
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        state_sum[i] = s = state_sum[i] + d * d                                  # (4)
        # one square root either way: eps inside it (Keras, optax) or added to it (torch)
        std = _sqrt(s + eps if eps_inside_sqrt else s)                           # (5)
        if not eps_inside_sqrt:
            std = std + eps                                                      # (5)
        param[i] = p - clr * d / std                                             # (6)


cdef inline floating* _at(floating* array, Py_ssize_t offset) noexcept nogil:
    # a chunk of an optional state array (NULL, an unused slot, stays NULL)
    return array + offset if array != NULL else NULL


cdef void _adagrad_threads(Py_ssize_t n, floating* param, const floating* grad, floating* state_sum,
                           bint maximize, floating weight_decay, floating decay_factor,
                           bint eps_inside_sqrt, floating eps, floating clr,
                           int num_threads) noexcept nogil:
    # One contiguous chunk per thread (a multiple of 16 elements: whole SIMD vectors), each
    # stepped by the serial loop above. OpenMP threads, started only here.
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + 15) // 16 * 16
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _adagrad_loop(stop - start, param + start, grad + start, _at(state_sum, start),
                          maximize, weight_decay, decay_factor, eps_inside_sqrt, eps, clr)


cdef int _adagrad_run(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t state_sum_size,
                      floating* param, const floating* grad, floating* state_sum, bint maximize,
                      floating weight_decay, floating decay_factor, bint eps_inside_sqrt,
                      floating eps, floating clr, int num_threads) except -1:
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("adagrad_update", "grad", grad_size, n)
    require_length("adagrad_update", "state_sum", state_sum_size, n)
    with nogil:
        if num_threads > 1:
            _adagrad_threads(n, param, grad, state_sum, maximize, weight_decay, decay_factor,
                             eps_inside_sqrt, eps, clr, num_threads)
        else:
            _adagrad_loop(n, param, grad, state_sum, maximize, weight_decay, decay_factor,
                          eps_inside_sqrt, eps, clr)
    return 0


def adagrad_update(param, grad, state_sum, bint maximize, double weight_decay, double decay_factor,
                   bint eps_inside_sqrt, double eps, double clr, int num_threads):
    # NumPy arrays through NumPy's C API (fastopt/_arrays.pxd); the scalars arrive as C doubles
    # and _adagrad_run[float] rounds them to float32 exactly as np.float32(x) would
    cdef Arrays a
    if not plain_arrays(&a, param, grad, state_sum):
        # any other buffer, or arrays that do not fit (the memoryviews then say why)
        return adagrad_update_buffers(param, grad, state_sum, maximize, weight_decay, decay_factor,
                                      eps_inside_sqrt, eps, clr, num_threads)
    if a.typenum == NPY_FLOAT:
        _adagrad_run[float](a.size[0], a.size[1], a.size[2], <float*> a.data[0],
                            <const float*> a.data[1], <float*> a.data[2], maximize, weight_decay,
                            decay_factor, eps_inside_sqrt, eps, clr, num_threads)
    else:
        _adagrad_run[double](a.size[0], a.size[1], a.size[2], <double*> a.data[0],
                             <const double*> a.data[1], <double*> a.data[2], maximize, weight_decay,
                             decay_factor, eps_inside_sqrt, eps, clr, num_threads)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array (an unused state slot) has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def adagrad_update_buffers(floating[::1] param, const floating[::1] grad, floating[::1] state_sum,
                           bint maximize, floating weight_decay, floating decay_factor,
                           bint eps_inside_sqrt, floating eps, floating clr, int num_threads):
    """``adagrad_update`` on typed memoryviews: any buffer of float32 or float64 (and what
    ``adagrad_update`` hands on when its arguments are not plain NumPy arrays)."""
    _adagrad_run(param.shape[0], grad.shape[0], state_sum.shape[0], _data(param), _const_data(grad),
                 _data(state_sum), maximize, weight_decay, decay_factor, eps_inside_sqrt, eps, clr,
                 num_threads)


def adagrad_update_many(Batch batch, bint maximize, floating weight_decay, floating decay_factor,
                        bint eps_inside_sqrt, floating eps, floating clr, int num_threads,
                        Py_ssize_t min_size):
    """Every row of ``batch`` (checked by ``Batch.gather``); rows of at least ``min_size``
    elements on up to ``num_threads`` threads."""
    cdef Py_ssize_t k
    cdef void** row
    with nogil:
        for k in range(batch.count):
            row = batch.pointers + k * batch.width
            if num_threads > 1 and batch.sizes[k] >= min_size:
                _adagrad_threads(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                                 <floating*> row[2], maximize, weight_decay, decay_factor,
                                 eps_inside_sqrt, eps, clr, num_threads)
            else:
                _adagrad_loop(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                              <floating*> row[2], maximize, weight_decay, decay_factor,
                              eps_inside_sqrt, eps, clr)
