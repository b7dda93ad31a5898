# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""AdamW, Cython twin of :func:`fastopt.adamw.reference.adamw_update`; maths in :mod:`fastopt.adamw`.

``_adamw_loop`` is the loop, over plain pointers; ``_adamw_threads`` runs it on one contiguous chunk
per thread and ``_adamw_run`` checks the lengths and picks one or the other. The entry points:
``adamw_update`` takes NumPy arrays through NumPy's C API (see ``fastopt/_arrays.pxd``) and hands
anything else to ``adamw_update_buffers``, the same call on typed memoryviews (any float32/float64
buffer); ``adamw_update_many`` runs every array of a :class:`fastopt._multi.Batch` (a whole
parameter group in one call). All of them compute every element with exactly the same operations.
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


cdef void _adamw_loop(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                      floating* exp_avg_sq, floating* max_exp_avg_sq, bint maximize,
                      floating decay_factor, floating beta1, floating one_minus_beta1,
                      floating beta2, floating one_minus_beta2, bint amsgrad,
                      bint amsgrad_corrected_max, floating bias_correction2,
                      floating eps_t,
                      floating step_size) noexcept nogil:
    cdef Py_ssize_t i
    cdef floating p, d, m, v, vmax, denom
    for i in range(n):
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                    # (1)
        p = p * decay_factor                                                     # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                # (3)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d      # (4)
        if amsgrad:
            if amsgrad_corrected_max:
                v = v / bias_correction2                                         # (5)
            vmax = max_exp_avg_sq[i]
            # NaN-propagating maximum, exactly np.maximum's rule
            max_exp_avg_sq[i] = v = vmax if (vmax >= v or vmax != vmax) else v   # (5)
        denom = _sqrt(v) + eps_t                                                 # (6)
        param[i] = p - step_size * m / denom                                     # (7)


cdef inline floating* _at(floating* array, Py_ssize_t offset) noexcept nogil:
    # a chunk of an optional state array (NULL, an unused slot, stays NULL)
    return array + offset if array != NULL else NULL


cdef void _adamw_threads(Py_ssize_t n, floating* param, const floating* grad, floating* exp_avg,
                         floating* exp_avg_sq, floating* max_exp_avg_sq, bint maximize,
                         floating decay_factor, floating beta1, floating one_minus_beta1,
                         floating beta2, floating one_minus_beta2, bint amsgrad,
                         bint amsgrad_corrected_max, floating bias_correction2,
                         floating eps_t, floating step_size,
                         int num_threads) noexcept nogil:
    # One contiguous chunk per thread (a multiple of 16 elements: whole SIMD vectors), each
    # stepped by the serial loop above. OpenMP threads, started only here.
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + 15) // 16 * 16
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _adamw_loop(stop - start, param + start, grad + start, _at(exp_avg, start),
                        _at(exp_avg_sq, start), _at(max_exp_avg_sq, start), maximize, decay_factor,
                        beta1, one_minus_beta1, beta2, one_minus_beta2, amsgrad,
                        amsgrad_corrected_max, bias_correction2, eps_t,
                        step_size)


cdef int _adamw_run(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t exp_avg_size,
                    Py_ssize_t exp_avg_sq_size, Py_ssize_t max_exp_avg_sq_size, floating* param,
                    const floating* grad, floating* exp_avg, floating* exp_avg_sq,
                    floating* max_exp_avg_sq, bint maximize, floating decay_factor, floating beta1,
                    floating one_minus_beta1, floating beta2, floating one_minus_beta2,
                    bint amsgrad, bint amsgrad_corrected_max, floating bias_correction2,
                    floating eps_t, floating step_size, int num_threads) except -1:
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("adamw_update", "grad", grad_size, n)
    require_length("adamw_update", "exp_avg", exp_avg_size, n)
    require_length("adamw_update", "exp_avg_sq", exp_avg_sq_size, n)
    if amsgrad:
        require_length("adamw_update", "max_exp_avg_sq", max_exp_avg_sq_size, n)
    with nogil:
        if num_threads > 1:
            _adamw_threads(n, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, maximize,
                           decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2, amsgrad,
                           amsgrad_corrected_max, bias_correction2, eps_t, step_size, num_threads)
        else:
            _adamw_loop(n, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, maximize, decay_factor,
                        beta1, one_minus_beta1, beta2, one_minus_beta2, amsgrad,
                        amsgrad_corrected_max, bias_correction2, eps_t, step_size)
    return 0


def adamw_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, bint maximize,
                 double decay_factor, double beta1, double one_minus_beta1, double beta2,
                 double one_minus_beta2, bint amsgrad, bint amsgrad_corrected_max,
                 double bias_correction2, double eps_t, double step_size, int num_threads):
    # NumPy arrays through NumPy's C API (fastopt/_arrays.pxd); the scalars arrive as C doubles
    # and _adamw_run[float] rounds them to float32 exactly as np.float32(x) would
    cdef Arrays a
    if not plain_arrays(&a, param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq):
        # any other buffer, or arrays that do not fit (the memoryviews then say why)
        return adamw_update_buffers(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, maximize,
                                    decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2,
                                    amsgrad, amsgrad_corrected_max, bias_correction2, eps_t,
                                    step_size, num_threads)
    if a.typenum == NPY_FLOAT:
        _adamw_run[float](a.size[0], a.size[1], a.size[2], a.size[3], a.size[4], <float*> a.data[0],
                          <const float*> a.data[1], <float*> a.data[2], <float*> a.data[3],
                          <float*> a.data[4], maximize, decay_factor, beta1, one_minus_beta1, beta2,
                          one_minus_beta2, amsgrad, amsgrad_corrected_max, bias_correction2, eps_t,
                          step_size, num_threads)
    else:
        _adamw_run[double](a.size[0], a.size[1], a.size[2], a.size[3], a.size[4],
                           <double*> a.data[0], <const double*> a.data[1], <double*> a.data[2],
                           <double*> a.data[3], <double*> a.data[4], maximize, decay_factor, beta1,
                           one_minus_beta1, beta2, one_minus_beta2, amsgrad, amsgrad_corrected_max,
                           bias_correction2, eps_t, step_size, num_threads)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array (an unused state slot) has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def adamw_update_buffers(floating[::1] param, const floating[::1] grad, floating[::1] exp_avg,
                         floating[::1] exp_avg_sq, floating[::1] max_exp_avg_sq, bint maximize,
                         floating decay_factor, floating beta1, floating one_minus_beta1,
                         floating beta2, floating one_minus_beta2, bint amsgrad,
                         bint amsgrad_corrected_max, floating bias_correction2, floating eps_t,
                         floating step_size, int num_threads):
    """``adamw_update`` on typed memoryviews: any buffer of float32 or float64 (and what
    ``adamw_update`` hands on when its arguments are not plain NumPy arrays)."""
    _adamw_run(param.shape[0], grad.shape[0], exp_avg.shape[0], exp_avg_sq.shape[0],
               max_exp_avg_sq.shape[0], _data(param), _const_data(grad), _data(exp_avg),
               _data(exp_avg_sq), _data(max_exp_avg_sq), maximize, decay_factor, beta1,
               one_minus_beta1, beta2, one_minus_beta2, amsgrad, amsgrad_corrected_max,
               bias_correction2, eps_t, step_size, num_threads)


def adamw_update_many(Batch batch, bint maximize, floating decay_factor, floating beta1,
                      floating one_minus_beta1, floating beta2, floating one_minus_beta2,
                      bint amsgrad, bint amsgrad_corrected_max, floating bias_correction2,
                      floating eps_t, floating step_size,
                      int num_threads, Py_ssize_t min_size):
    """Every row of ``batch`` (checked by ``Batch.gather``); rows of at least ``min_size``
    elements on up to ``num_threads`` threads."""
    cdef Py_ssize_t k
    cdef void** row
    with nogil:
        for k in range(batch.count):
            row = batch.pointers + k * batch.width
            if num_threads > 1 and batch.sizes[k] >= min_size:
                _adamw_threads(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                               <floating*> row[2], <floating*> row[3], <floating*> row[4], maximize,
                               decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2,
                               amsgrad, amsgrad_corrected_max, bias_correction2,
                               eps_t, step_size, num_threads)
            else:
                _adamw_loop(batch.sizes[k], <floating*> row[0], <const floating*> row[1],
                            <floating*> row[2], <floating*> row[3], <floating*> row[4], maximize,
                            decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2, amsgrad,
                            amsgrad_corrected_max, bias_correction2, eps_t,
                            step_size)
