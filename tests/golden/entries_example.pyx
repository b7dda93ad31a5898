# Generated from tests/example/_cython.pyx by fastopt/_native/generate.py when the package is built:
# do not edit (and do not commit); the hand-written loop is the included file.
"""A loop with every kind of argument the generator knows."""

include "tests/example/_cython.pyx"


# ---- entry points, generated from the signature of _example_loop (tests/example/_cython.pyx) ----

from cython.parallel cimport prange
from numpy cimport NPY_FLOAT

from fastopt._native.arrays cimport Arrays, const_data, data, offset, plain_arrays
from fastopt._native.batch cimport Batch
from fastopt._native.checks cimport require_length, require_matrices, require_size


cdef void _example_threads(Py_ssize_t n, floating* param, const floating* grad, floating* velocity, floating* peak, bint maximize, floating lr, int stride, bint track_peak, int num_threads) noexcept nogil:
    # One contiguous chunk per thread (a multiple of 16 elements: whole SIMD vectors), each
    # stepped by the serial loop. OpenMP threads, started only here.
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + 15) // 16 * 16
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _example_loop(stop - start, param + start, grad + start, velocity + start, offset(peak, start), maximize, lr, stride, track_peak)


cdef int _example_run(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t velocity_size, Py_ssize_t peak_size, floating* param, const floating* grad, floating* velocity, floating* peak, bint maximize, floating lr, int stride, bint track_peak, int num_threads) except -1:
    # every array this step touches has param's length, or the length it declares (the loop is unchecked)
    require_length("example_update", "grad", grad_size, n)
    require_length("example_update", "velocity", velocity_size, n)
    if track_peak:
        require_length("example_update", "peak", peak_size, n)
    with nogil:
        if num_threads > 1:
            _example_threads(n, param, grad, velocity, peak, maximize, lr, stride, track_peak, num_threads)
        else:
            _example_loop(n, param, grad, velocity, peak, maximize, lr, stride, track_peak)
    return 0


def example_update(param, grad, velocity, peak, bint maximize, double lr, int stride, bint track_peak, int num_threads):
    """One step, in place: NumPy arrays through NumPy's C API (``fastopt/_native/arrays.pxd``),
    any other buffer through ``example_update_buffers``. Scalars arrive as C doubles and are
    rounded to float32 by the C conversion ``np.float32(x)`` makes."""
    cdef Arrays a
    if not plain_arrays(&a, param, grad, velocity, peak):
        # any other buffer, or arrays that do not fit (the memoryviews then say why)
        return example_update_buffers(param, grad, velocity, peak, maximize, lr, stride, track_peak, num_threads)
    if a.typenum == NPY_FLOAT:
        _example_run[float](a.size[0], a.size[1], a.size[2], a.size[3], <float*> a.data[0], <const float*> a.data[1], <float*> a.data[2], <float*> a.data[3], maximize, lr, stride, track_peak, num_threads)
    else:
        _example_run[double](a.size[0], a.size[1], a.size[2], a.size[3], <double*> a.data[0], <const double*> a.data[1], <double*> a.data[2], <double*> a.data[3], maximize, lr, stride, track_peak, num_threads)


def example_update_buffers(floating[::1] param, const floating[::1] grad, floating[::1] velocity, floating[::1] peak, bint maximize, floating lr, int stride, bint track_peak, int num_threads):
    """``example_update`` on typed memoryviews: any buffer of float32 or float64."""
    _example_run(param.shape[0], grad.shape[0], velocity.shape[0], peak.shape[0], data(param), const_data(grad), data(velocity), data(peak), maximize, lr, stride, track_peak, num_threads)


def example_update_many(Batch batch, bint maximize, floating lr, int stride, bint track_peak, int num_threads, Py_ssize_t min_size):
    """Every row of ``batch`` (checked by its gather), each as ``example_update`` would step
    it; rows of at least ``min_size`` elements on up to ``num_threads`` threads."""
    cdef Py_ssize_t k
    cdef void** row
    with nogil:
        for k in range(batch.count):
            row = batch.pointers + k * batch.width
            if num_threads > 1 and batch.sizes[k] >= min_size:
                _example_threads(batch.sizes[k], <floating*> row[0], <const floating*> row[1], <floating*> row[2], <floating*> row[3], maximize, lr, stride, track_peak, num_threads)
            else:
                _example_loop(batch.sizes[k], <floating*> row[0], <const floating*> row[1], <floating*> row[2], <floating*> row[3], maximize, lr, stride, track_peak)
