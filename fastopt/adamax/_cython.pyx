# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""Adamax, Cython twin of :func:`fastopt.adamax.reference.adamax_update`; maths in :mod:`fastopt.adamax`.

``_adamax_loop`` is the loop, over plain pointers; ``_adamax_threads`` runs it on one contiguous
chunk per thread and ``_adamax_run`` checks the lengths and picks one or the other. The entry
points: ``adamax_update`` takes NumPy arrays through NumPy's C API (see ``fastopt/_arrays.pxd``) and
hands anything else to ``adamax_update_buffers``, the same call on typed memoryviews (any
float32/float64 buffer); ``adamax_update_many`` runs every array of a :class:`fastopt._multi.Batch`
(a whole parameter group in one call). All of them compute every element with exactly the same
operations.
"""

from cython cimport floating
from cython.parallel cimport prange
from numpy cimport NPY_FLOAT
from libc.math cimport fabs, fabsf

from fastopt._arrays cimport Arrays, plain_arrays
from fastopt._checks cimport require_length
from fastopt._multi cimport Batch


cdef inline floating _abs(floating x) noexcept nogil:
    # fabsf keeps float32 in single precision; both only clear the sign bit (exact)
    if floating is float:
        return fabsf(x)
    else:
        return fabs(x)


cdef void _adamax_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                       floating* exp_inf, bint maximize, floating weight_decay,
                       floating decay_factor, floating beta1, floating one_minus_beta1,
                       floating beta2, bint eps_outside_max, floating eps,
                       floating step_size) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, m, decayed, floor, u
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                             # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                 # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (3)
        decayed = beta2 * exp_inf[i]
        floor = _abs(d) if eps_outside_max else _abs(d) + eps                    # (4)
        # NaN-propagating maximum, exactly np.maximum's rule
        exp_inf[i] = u = decayed if (decayed >= floor or decayed != decayed) else floor  # (4)
        if eps_outside_max:
            u = u + eps                                                          # (5)
        param[i] = p - step_size * m / u                                         # (5)


cdef void _adamax_threads(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                          floating* exp_inf, bint maximize, floating weight_decay,
                          floating decay_factor, floating beta1, floating one_minus_beta1,
                          floating beta2, bint eps_outside_max, floating eps, floating step_size,
                          int num_threads) noexcept nogil:
    # One contiguous chunk per thread (a multiple of 16 elements: whole SIMD vectors), each
    # stepped by the serial loop above. OpenMP threads, started only here.
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + 15) // 16 * 16
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _adamax_loop(stop - start, param + start, grad + start, exp_avg + start,
                         exp_inf + start, maximize, weight_decay, decay_factor, beta1,
                         one_minus_beta1, beta2, eps_outside_max, eps, step_size)


cdef int _adamax_run(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t exp_avg_size,
                     Py_ssize_t exp_inf_size, floating* param, const floating* grad,
                     floating* exp_avg, floating* exp_inf, bint maximize, floating weight_decay,
                     floating decay_factor, floating beta1, floating one_minus_beta1,
                     floating beta2, bint eps_outside_max, floating eps, floating step_size,
                     int num_threads) except -1:
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("adamax_update", "grad", grad_size, n)
    require_length("adamax_update", "exp_avg", exp_avg_size, n)
    require_length("adamax_update", "exp_inf", exp_inf_size, n)
    with nogil:
        if num_threads > 1:
            _adamax_threads(n, param, grad, exp_avg, exp_inf, maximize, weight_decay, decay_factor,
                            beta1, one_minus_beta1, beta2, eps_outside_max, eps, step_size,
                            num_threads)
        else:
            _adamax_loop(n, param, grad, exp_avg, exp_inf, maximize, weight_decay, decay_factor,
                         beta1, one_minus_beta1, beta2, eps_outside_max, eps, step_size)
    return 0


def adamax_update(param, grad, exp_avg, exp_inf, bint maximize, double weight_decay,
                  double decay_factor, double beta1, double one_minus_beta1, double beta2,
                  bint eps_outside_max, double eps, double step_size, int num_threads):
    # NumPy arrays through NumPy's C API (fastopt/_arrays.pxd); the scalars arrive as C doubles
    # and _adamax_run[float] rounds them to float32 exactly as np.float32(x) would
    cdef Arrays a
    if not plain_arrays(&a, param, grad, exp_avg, exp_inf):
        # any other buffer, or arrays that do not fit (the memoryviews then say why)
        return adamax_update_buffers(param, grad, exp_avg, exp_inf, maximize, weight_decay,
                                     decay_factor, beta1, one_minus_beta1, beta2, eps_outside_max,
                                     eps, step_size, num_threads)
    if a.typenum == NPY_FLOAT:
        _adamax_run[float](a.size[0], a.size[1], a.size[2], a.size[3], <float*> a.data[0],
                           <const float*> a.data[1], <float*> a.data[2], <float*> a.data[3],
                           maximize, weight_decay, decay_factor, beta1, one_minus_beta1, beta2,
                           eps_outside_max, eps, step_size, num_threads)
    else:
        _adamax_run[double](a.size[0], a.size[1], a.size[2], a.size[3], <double*> a.data[0],
                            <const double*> a.data[1], <double*> a.data[2], <double*> a.data[3],
                            maximize, weight_decay, decay_factor, beta1, one_minus_beta1, beta2,
                            eps_outside_max, eps, step_size, num_threads)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def adamax_update_buffers(floating[::1] param, const floating[::1] grad, floating[::1] exp_avg,
                          floating[::1] exp_inf, bint maximize, floating weight_decay,
                          floating decay_factor, floating beta1, floating one_minus_beta1,
                          floating beta2, bint eps_outside_max, floating eps, floating step_size,
                          int num_threads):
    """``adamax_update`` on typed memoryviews: any buffer of float32 or float64 (and what
    ``adamax_update`` hands on when its arguments are not plain NumPy arrays)."""
    _adamax_run(param.shape[0], grad.shape[0], exp_avg.shape[0], exp_inf.shape[0], _data(param),
                _const_data(grad), _data(exp_avg), _data(exp_inf), maximize, weight_decay,
                decay_factor, beta1, one_minus_beta1, beta2, eps_outside_max, eps, step_size,
                num_threads)


def adamax_update_many(Batch batch, bint maximize, floating weight_decay, floating decay_factor,
                       floating beta1, floating one_minus_beta1, floating beta2,
                       bint eps_outside_max, floating eps, floating step_size, int num_threads,
                       Py_ssize_t min_size):
    """Every row of ``batch`` (checked by ``Batch.gather``); rows of at least ``min_size``
    elements on up to ``num_threads`` threads."""
    cdef Py_ssize_t k
    cdef void** row
    with nogil:
        for k in range(batch.count):
            row = batch.pointers + k * batch.width
            if num_threads > 1 and batch.sizes[k] >= min_size:
                _adamax_threads(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                                <floating*> row[2], <floating*> row[3], maximize, weight_decay,
                                decay_factor, beta1, one_minus_beta1, beta2, eps_outside_max, eps,
                                step_size, num_threads)
            else:
                _adamax_loop(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                             <floating*> row[2], <floating*> row[3], maximize, weight_decay,
                             decay_factor, beta1, one_minus_beta1, beta2, eps_outside_max, eps,
                             step_size)
