# Directives (set for the whole project in setup.py): boundscheck=False, wraparound=False,
# cdivision=True, initializedcheck=False; built with -O3 -fno-math-errno -ffp-contract=off, once per
# instruction-set level (see setup.py).
# Loop style: each array element is read once into a local and each result stored once
# ("exp_avg[i] = m = ..."), so the compiler never has to reload a value it just stored.
"""RMSprop, Cython twin of :func:`fastopt.rmsprop.reference.rmsprop_update`; maths in :mod:`fastopt.rmsprop`.

``_rmsprop_loop`` is the loop, over plain pointers; ``_rmsprop_threads`` runs it on one contiguous
chunk per thread and ``_rmsprop_run`` checks the lengths and picks one or the other. The entry
points: ``rmsprop_update`` takes NumPy arrays through NumPy's C API (see ``fastopt/_arrays.pxd``)
and hands anything else to ``rmsprop_update_buffers``, the same call on typed memoryviews (any
float32/float64 buffer); ``rmsprop_update_many`` runs every array of a :class:`fastopt._multi.Batch`
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
        # one square root either way: eps inside it (Keras, optax) or added to it (torch)
        avg = _sqrt(w + eps if eps_inside_sqrt else w)                           # (6)
        if not eps_inside_sqrt:
            avg = avg + eps                                                      # (6)
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


cdef int _rmsprop_run(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t square_avg_size,
                      Py_ssize_t grad_avg_size, Py_ssize_t momentum_buffer_size, floating* param,
                      const floating* grad, floating* square_avg, floating* grad_avg,
                      floating* momentum_buffer, bint maximize, floating weight_decay,
                      floating decay_factor, floating rho, floating one_minus_rho, bint centered,
                      bint eps_inside_sqrt, floating eps, floating momentum, bint lr_in_momentum,
                      floating lr, int num_threads) except -1:
    # every array this step touches has param's length (the loop below is unchecked)
    require_length("rmsprop_update", "grad", grad_size, n)
    require_length("rmsprop_update", "square_avg", square_avg_size, n)
    if centered:
        require_length("rmsprop_update", "grad_avg", grad_avg_size, n)
    if momentum > 0:
        require_length("rmsprop_update", "momentum_buffer", momentum_buffer_size, n)
    with nogil:
        if num_threads > 1:
            _rmsprop_threads(n, param, grad, square_avg, grad_avg, momentum_buffer, maximize,
                             weight_decay, decay_factor, rho, one_minus_rho, centered,
                             eps_inside_sqrt, eps, momentum, lr_in_momentum, lr, num_threads)
        else:
            _rmsprop_loop(n, param, grad, square_avg, grad_avg, momentum_buffer, maximize,
                          weight_decay, decay_factor, rho, one_minus_rho, centered, eps_inside_sqrt,
                          eps, momentum, lr_in_momentum, lr)
    return 0


def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, bint maximize,
                   double weight_decay, double decay_factor, double rho, double one_minus_rho,
                   bint centered, bint eps_inside_sqrt, double eps, double momentum,
                   bint lr_in_momentum, double lr, int num_threads):
    # NumPy arrays through NumPy's C API (fastopt/_arrays.pxd); the scalars arrive as C doubles
    # and _rmsprop_run[float] rounds them to float32 exactly as np.float32(x) would
    cdef Arrays a
    if not plain_arrays(&a, param, grad, square_avg, grad_avg, momentum_buffer):
        # any other buffer, or arrays that do not fit (the memoryviews then say why)
        return rmsprop_update_buffers(param, grad, square_avg, grad_avg, momentum_buffer, maximize,
                                      weight_decay, decay_factor, rho, one_minus_rho, centered,
                                      eps_inside_sqrt, eps, momentum, lr_in_momentum, lr,
                                      num_threads)
    if a.typenum == NPY_FLOAT:
        _rmsprop_run[float](a.size[0], a.size[1], a.size[2], a.size[3], a.size[4],
                            <float*> a.data[0], <const float*> a.data[1], <float*> a.data[2],
                            <float*> a.data[3], <float*> a.data[4], maximize, weight_decay,
                            decay_factor, rho, one_minus_rho, centered, eps_inside_sqrt, eps,
                            momentum, lr_in_momentum, lr, num_threads)
    else:
        _rmsprop_run[double](a.size[0], a.size[1], a.size[2], a.size[3], a.size[4],
                             <double*> a.data[0], <const double*> a.data[1], <double*> a.data[2],
                             <double*> a.data[3], <double*> a.data[4], maximize, weight_decay,
                             decay_factor, rho, one_minus_rho, centered, eps_inside_sqrt, eps,
                             momentum, lr_in_momentum, lr, num_threads)


cdef inline floating* _data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array (an unused state slot) has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* _const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL


def rmsprop_update_buffers(floating[::1] param, const floating[::1] grad, floating[::1] square_avg,
                           floating[::1] grad_avg, floating[::1] momentum_buffer, bint maximize,
                           floating weight_decay, floating decay_factor, floating rho,
                           floating one_minus_rho, bint centered, bint eps_inside_sqrt,
                           floating eps, floating momentum, bint lr_in_momentum, floating lr,
                           int num_threads):
    """``rmsprop_update`` on typed memoryviews: any buffer of float32 or float64 (and what
    ``rmsprop_update`` hands on when its arguments are not plain NumPy arrays)."""
    _rmsprop_run(param.shape[0], grad.shape[0], square_avg.shape[0], grad_avg.shape[0],
                 momentum_buffer.shape[0], _data(param), _const_data(grad), _data(square_avg),
                 _data(grad_avg), _data(momentum_buffer), maximize, weight_decay, decay_factor, rho,
                 one_minus_rho, centered, eps_inside_sqrt, eps, momentum, lr_in_momentum, lr,
                 num_threads)


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
