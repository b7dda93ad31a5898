# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("param[i] = p - lr * c"), so the compiler never has to reload a value it just stored.
"""Lion, Cython twin of :func:`fastopt.lion.reference.lion_update`; maths in :mod:`fastopt.lion`.

``_lion_loop`` is the loop, over plain pointers; ``_lion_threads`` runs it on one contiguous chunk
per thread and ``_lion_run`` checks the lengths and picks one or the other. The entry points:
``lion_update`` takes NumPy arrays through NumPy's C API (see ``fastopt/_arrays.pxd``) and hands
anything else to ``lion_update_buffers``, the same call on typed memoryviews (any float32/float64
buffer); ``lion_update_many`` runs every array of a :class:`fastopt._multi.Batch` (a whole parameter
group in one call). All of them compute every element with exactly the same operations.
"""

from cython cimport floating
from cython.parallel cimport prange
from numpy cimport NPY_FLOAT

from fastopt._arrays cimport Arrays, plain_arrays
from fastopt._checks cimport require_length
from fastopt._multi cimport Batch


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


cdef void _lion_threads(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                        bint maximize, floating decay_factor, floating beta1,
                        floating one_minus_beta1, floating lr, floating beta2,
                        floating one_minus_beta2, int num_threads) noexcept nogil:
    # One contiguous chunk per thread (a multiple of 16 elements: whole SIMD vectors), each
    # stepped by the serial loop above. OpenMP threads, started only here.
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + 15) // 16 * 16
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _lion_loop(stop - start, param + start, grad + start, exp_avg + start, maximize,
                       decay_factor, beta1, one_minus_beta1, lr, beta2, one_minus_beta2)


cdef int _lion_run(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t exp_avg_size, floating* param,
                   const floating* grad, floating* exp_avg, bint maximize, floating decay_factor,
                   floating beta1, floating one_minus_beta1, floating lr, floating beta2,
                   floating one_minus_beta2, int num_threads) except -1:
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("lion_update", "grad", grad_size, n)
    require_length("lion_update", "exp_avg", exp_avg_size, n)
    with nogil:
        if num_threads > 1:
            _lion_threads(n, param, grad, exp_avg, maximize, decay_factor, beta1, one_minus_beta1,
                          lr, beta2, one_minus_beta2, num_threads)
        else:
            _lion_loop(n, param, grad, exp_avg, maximize, decay_factor, beta1, one_minus_beta1, lr,
                       beta2, one_minus_beta2)
    return 0


def lion_update(param, grad, exp_avg, bint maximize, double decay_factor, double beta1,
                double one_minus_beta1, double lr, double beta2, double one_minus_beta2,
                int num_threads):
    # NumPy arrays through NumPy's C API (fastopt/_arrays.pxd); the scalars arrive as C doubles
    # and _lion_run[float] rounds them to float32 exactly as np.float32(x) would
    cdef Arrays a
    if not plain_arrays(&a, param, grad, exp_avg):
        # any other buffer, or arrays that do not fit (the memoryviews then say why)
        return lion_update_buffers(param, grad, exp_avg, maximize, decay_factor, beta1,
                                   one_minus_beta1, lr, beta2, one_minus_beta2, num_threads)
    if a.typenum == NPY_FLOAT:
        _lion_run[float](a.size[0], a.size[1], a.size[2], <float*> a.data[0],
                         <const float*> a.data[1], <float*> a.data[2], maximize, decay_factor,
                         beta1, one_minus_beta1, lr, beta2, one_minus_beta2, num_threads)
    else:
        _lion_run[double](a.size[0], a.size[1], a.size[2], <double*> a.data[0],
                          <const double*> a.data[1], <double*> a.data[2], maximize, decay_factor,
                          beta1, one_minus_beta1, lr, beta2, one_minus_beta2, num_threads)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def lion_update_buffers(floating[::1] param, const floating[::1] grad, floating[::1] exp_avg,
                        bint maximize, floating decay_factor, floating beta1,
                        floating one_minus_beta1, floating lr, floating beta2,
                        floating one_minus_beta2, int num_threads):
    """``lion_update`` on typed memoryviews: any buffer of float32 or float64 (and what
    ``lion_update`` hands on when its arguments are not plain NumPy arrays)."""
    _lion_run(param.shape[0], grad.shape[0], exp_avg.shape[0], _data(param), _const_data(grad),
              _data(exp_avg), maximize, decay_factor, beta1, one_minus_beta1, lr, beta2,
              one_minus_beta2, num_threads)


def lion_update_many(Batch batch, bint maximize, floating decay_factor, floating beta1,
                     floating one_minus_beta1, floating lr, floating beta2,
                     floating one_minus_beta2, int num_threads, Py_ssize_t min_size):
    """Every row of ``batch`` (checked by ``Batch.gather``); rows of at least ``min_size``
    elements on up to ``num_threads`` threads."""
    cdef Py_ssize_t k
    cdef void** row
    with nogil:
        for k in range(batch.count):
            row = batch.pointers + k * batch.width
            if num_threads > 1 and batch.sizes[k] >= min_size:
                _lion_threads(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                              <floating*> row[2], maximize, decay_factor, beta1, one_minus_beta1,
                              lr, beta2, one_minus_beta2, num_threads)
            else:
                _lion_loop(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                           <floating*> row[2], maximize, decay_factor, beta1, one_minus_beta1,
                           lr, beta2, one_minus_beta2)
