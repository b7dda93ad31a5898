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
from libc.stdint cimport uint16_t
from fastopt._rounding.rounding cimport BFLOAT16, BLOCK, FLOAT16, narrow_bfloat16, narrow_block, widen_bfloat16, widen_block


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


cdef int _example_check(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t velocity_size, Py_ssize_t peak_size, bint maximize, floating lr, int stride, bint track_peak) except -1:
    # every array this step touches has param's length, or the length it declares (the loop is unchecked)
    require_length("example_update", "grad", grad_size, n)
    require_length("example_update", "velocity", velocity_size, n)
    if track_peak:
        require_length("example_update", "peak", peak_size, n)
    return 0


cdef int _example_run(Py_ssize_t n, Py_ssize_t grad_size, Py_ssize_t velocity_size, Py_ssize_t peak_size, floating* param, const floating* grad, floating* velocity, floating* peak, bint maximize, floating lr, int stride, bint track_peak, int num_threads) except -1:
    _example_check(n, grad_size, velocity_size, peak_size, maximize, lr, stride, track_peak)
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


# ---- 16-bit parameters (fastopt/_rounding) --------------------------------------------------


cdef void _example_bfloat16_loop(Py_ssize_t n, uint16_t* param, const uint16_t* grad, float* velocity, float* peak, bint maximize, float lr, int stride, bint track_peak) noexcept nogil:
    # _example_loop rewritten for bfloat16 param and grad (generate.bfloat16_loop)
    cdef Py_ssize_t i
    for i in range(n):
        velocity[i] = widen_bfloat16(grad[i])
        param[i] = narrow_bfloat16(widen_bfloat16(param[i]) - lr * velocity[i])


cdef void _example_float16_blocks(Py_ssize_t n, uint16_t* param, const uint16_t* grad, float* velocity, float* peak, bint maximize, float lr, int stride, bint track_peak) noexcept nogil:
    # float16's conversions vectorise only in loops of their own: a block at a time, param and
    # grad widened (exact) into L1, stepped by the float32 loop, its new values rounded once
    cdef float wide_param[BLOCK]
    cdef float wide_grad[BLOCK]
    cdef Py_ssize_t block, start, size
    for block in range((n + BLOCK - 1) // BLOCK):
        start = block * BLOCK
        size = min(BLOCK, n - start)
        widen_block(param + start, wide_param, size, FLOAT16)
        widen_block(grad + start, wide_grad, size, FLOAT16)
        _example_loop[float](size, wide_param, wide_grad, velocity + start, offset(peak, start), maximize, lr, stride, track_peak)
        narrow_block(wide_param, param + start, size, FLOAT16)


cdef void _example_narrow_loop(Py_ssize_t n, uint16_t* param, const uint16_t* grad, float* velocity, float* peak, bint maximize, float lr, int stride, bint track_peak, int storage) noexcept nogil:
    # the same float32 arithmetic, each new value rounded once, either way
    if storage == BFLOAT16:
        _example_bfloat16_loop(n, param, grad, velocity, peak, maximize, lr, stride, track_peak)
    else:
        _example_float16_blocks(n, param, grad, velocity, peak, maximize, lr, stride, track_peak)


cdef void _example_copy_loop(Py_ssize_t n, float* param, const float* grad, float* velocity, float* peak, bint maximize, float lr, int stride, bint track_peak, uint16_t* copy, int storage) noexcept nogil:
    # float32 master weights stepped in place, and their 16-bit copy written in the same pass
    # (each block rounded while it is still in cache)
    cdef Py_ssize_t block, start, size
    for block in range((n + BLOCK - 1) // BLOCK):
        start = block * BLOCK
        size = min(BLOCK, n - start)
        _example_loop[float](size, param + start, grad + start, velocity + start, offset(peak, start), maximize, lr, stride, track_peak)
        narrow_block(param + start, copy + start, size, storage)


cdef void _example_narrow_threads(Py_ssize_t n, uint16_t* param, const uint16_t* grad, float* velocity, float* peak, bint maximize, float lr, int stride, bint track_peak, int storage, int num_threads) noexcept nogil:
    # one chunk of whole blocks per thread, each stepped by _example_narrow_loop
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + BLOCK - 1) // BLOCK * BLOCK
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _example_narrow_loop(stop - start, param + start, grad + start, velocity + start, offset(peak, start), maximize, lr, stride, track_peak, storage)


cdef void _example_copy_threads(Py_ssize_t n, float* param, const float* grad, float* velocity, float* peak, bint maximize, float lr, int stride, bint track_peak, uint16_t* copy, int storage, int num_threads) noexcept nogil:
    # one chunk of whole blocks per thread, each stepped by _example_copy_loop
    cdef Py_ssize_t chunk = ((n + num_threads - 1) // num_threads + BLOCK - 1) // BLOCK * BLOCK
    cdef Py_ssize_t part, start, stop
    for part in prange(num_threads, schedule="static", num_threads=num_threads):
        start = part * chunk
        stop = min(n, start + chunk)
        if start < stop:
            _example_copy_loop(stop - start, param + start, grad + start, velocity + start, offset(peak, start), maximize, lr, stride, track_peak, copy + start, storage)


def example_update_narrow(uint16_t[::1] param, const uint16_t[::1] grad, float[::1] velocity, float[::1] peak, bint maximize, double lr, int stride, bint track_peak, int storage, int num_threads):
    """One step of a float16 or bfloat16 parameter (``storage``: fastopt._rounding's code; both
    arrays viewed as uint16) with float32 state: the float32 loop's arithmetic, rounded once."""
    cdef Py_ssize_t n = param.shape[0]
    _example_check[float](n, grad.shape[0], velocity.shape[0], peak.shape[0], maximize, lr, stride, track_peak)
    if n == 0:
        return
    with nogil:
        if num_threads > 1:
            _example_narrow_threads(n, &param[0], &grad[0], data(velocity), data(peak), maximize, lr, stride, track_peak, storage, num_threads)
        else:
            _example_narrow_loop(n, &param[0], &grad[0], data(velocity), data(peak), maximize, lr, stride, track_peak, storage)


def example_update_copy(float[::1] param, const float[::1] grad, float[::1] velocity, float[::1] peak, bint maximize, double lr, int stride, bint track_peak, uint16_t[::1] copy, int storage, int num_threads):
    """One step of float32 master weights ``param``, in place, writing their float16 or bfloat16
    ``copy`` (viewed as uint16) in the same pass."""
    cdef Py_ssize_t n = param.shape[0]
    _example_check[float](n, grad.shape[0], velocity.shape[0], peak.shape[0], maximize, lr, stride, track_peak)
    require_length("example_update_copy", "copy", copy.shape[0], n)
    if n == 0:
        return
    with nogil:
        if num_threads > 1:
            _example_copy_threads(n, &param[0], &grad[0], data(velocity), data(peak), maximize, lr, stride, track_peak, &copy[0], storage, num_threads)
        else:
            _example_copy_loop(n, &param[0], &grad[0], data(velocity), data(peak), maximize, lr, stride, track_peak, &copy[0], storage)
