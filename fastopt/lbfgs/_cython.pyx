"""L-BFGS, Cython twin of the vector kernels of :mod:`fastopt.lbfgs.reference`; maths in
:mod:`fastopt.lbfgs`.

Unlike the element-wise optimizers' loops, these kernels are whole functions written here (no
generated entry points: each takes one to three vectors and returns a sum or nothing). Each
reduction adds element ``k`` into lane ``k % 8`` in float64 and combines the lanes by the tree of
:mod:`fastopt._sums`; the inner loop over a block of 8 has a fixed trip count, which gcc
vectorises without reordering an addition. Element-wise updates are in the arrays' dtype
(``floating``: float32's ``float`` or float64's ``double``). Each kernel is a loop over C
pointers (``_<name>``, which gcc vectorises; over memoryviews it did not) behind a ``def`` that
checks the lengths and takes the arrays.
"""

from cython cimport floating
from fastopt._sums.sums cimport combine_lanes
from libc.math cimport INFINITY, fabs

from fastopt._checks import require_size


cdef double _dot(const floating* x, const floating* y, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k, lane, whole = n - n % 8
    cdef double lanes[8]
    for lane in range(8):
        lanes[lane] = 0.0
    for k in range(0, whole, 8):
        for lane in range(8):
            lanes[lane] += <double>x[k + lane] * <double>y[k + lane]              # (2), (3), (5), (7), (10)
    for k in range(whole, n):
        lanes[k - whole] += <double>x[k] * <double>y[k]
    return combine_lanes(lanes)


cdef double _add_scaled_then_dot(floating* target, const floating* x, const floating* other, floating alpha,
                                 Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k, lane, whole = n - n % 8
    cdef double lanes[8]
    cdef floating v
    for lane in range(8):
        lanes[lane] = 0.0
    for k in range(0, whole, 8):
        for lane in range(8):
            target[k + lane] = v = target[k + lane] + alpha * x[k + lane]         # (5), (7)
            lanes[lane] += <double>other[k + lane] * <double>v                   # (5), (7)
    for k in range(whole, n):
        target[k] = v = target[k] + alpha * x[k]                                  # (5), (7)
        lanes[k - whole] += <double>other[k] * <double>v                          # (5), (7)
    return combine_lanes(lanes)


cdef void _add_scaled(floating* target, const floating* x, floating alpha, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        target[i] = target[i] + alpha * x[i]                                      # (5), (7), (9)


cdef void _scaled(floating* out, const floating* x, floating alpha, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = alpha * x[i]                                                     # (1), (4), (6)


cdef void _difference(floating* out, const floating* a, const floating* b, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = a[i] - b[i]                                                      # (1)


cdef double _max_abs_scaled(const floating* x, floating alpha, Py_ssize_t n) noexcept nogil:
    # a maximum has no rounding: any order gives the same value, so 8 lanes of running maxima,
    # which vectorise, and beside them a sum of |alpha x_i| * 0, which is NaN when any product is
    # NaN or infinite; then one careful pass decides (NaN wins, as in NumPy's max)
    cdef Py_ssize_t k, lane, whole = n - n % 8
    cdef floating lanes[8]
    cdef floating probes[8]
    cdef floating v, largest = 0, probe = 0
    for lane in range(8):
        lanes[lane] = 0
        probes[lane] = 0
    for k in range(0, whole, 8):
        for lane in range(8):
            v = fabs(alpha * x[k + lane])                                         # (11)
            lanes[lane] = v if v > lanes[lane] else lanes[lane]
            probes[lane] += v * 0
    for k in range(whole, n):
        v = fabs(alpha * x[k])                                                    # (11)
        lanes[k - whole] = v if v > lanes[k - whole] else lanes[k - whole]
        probes[k - whole] += v * 0
    for lane in range(8):
        largest = lanes[lane] if lanes[lane] > largest else largest
        probe += probes[lane]
    if probe != probe:  # a NaN or an infinity: NaN if any product is NaN, else the infinity
        for k in range(n):
            v = fabs(alpha * x[k])
            if v != v:
                return <double>v
        return INFINITY
    return <double>largest


cdef double _sum_abs(const floating* x, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t k, lane, whole = n - n % 8
    cdef double lanes[8]
    for lane in range(8):
        lanes[lane] = 0.0
    for k in range(0, whole, 8):
        for lane in range(8):
            lanes[lane] += fabs(<double>x[k + lane])                              # (12)
    for k in range(whole, n):
        lanes[k - whole] += fabs(<double>x[k])                                    # (12)
    return combine_lanes(lanes)


# --- the entry points: lengths checked, then the loop on the arrays' memory, without the GIL ---

def dot(const floating[::1] x, const floating[::1] y):
    cdef Py_ssize_t n = x.shape[0]
    cdef double result = 0.0
    if y.shape[0] != n:
        require_size("dot", "y", y.shape[0], n, "x's length")
    if n:
        with nogil:
            result = _dot(&x[0], &y[0], n)
    return result


def add_scaled_then_dot(floating[::1] target, const floating[::1] x, const floating[::1] other, floating alpha):
    cdef Py_ssize_t n = target.shape[0]
    cdef double result = 0.0
    if x.shape[0] != n:
        require_size("add_scaled_then_dot", "x", x.shape[0], n, "target's length")
    if other.shape[0] != n:
        require_size("add_scaled_then_dot", "other", other.shape[0], n, "target's length")
    if n:
        with nogil:
            result = _add_scaled_then_dot(&target[0], &x[0], &other[0], alpha, n)
    return result


def add_scaled(floating[::1] target, const floating[::1] x, floating alpha):
    cdef Py_ssize_t n = target.shape[0]
    if x.shape[0] != n:
        require_size("add_scaled", "x", x.shape[0], n, "target's length")
    if n:
        with nogil:
            _add_scaled(&target[0], &x[0], alpha, n)


def scaled(floating[::1] out, const floating[::1] x, floating alpha):
    cdef Py_ssize_t n = out.shape[0]
    if x.shape[0] != n:
        require_size("scaled", "x", x.shape[0], n, "out's length")
    if n:
        with nogil:
            _scaled(&out[0], &x[0], alpha, n)


def difference(floating[::1] out, const floating[::1] a, const floating[::1] b):
    cdef Py_ssize_t n = out.shape[0]
    if a.shape[0] != n:
        require_size("difference", "a", a.shape[0], n, "out's length")
    if b.shape[0] != n:
        require_size("difference", "b", b.shape[0], n, "out's length")
    if n:
        with nogil:
            _difference(&out[0], &a[0], &b[0], n)


def max_abs_scaled(const floating[::1] x, floating alpha):
    cdef Py_ssize_t n = x.shape[0]
    cdef double result = 0.0
    if n:
        with nogil:
            result = _max_abs_scaled(&x[0], alpha, n)
    return result


def sum_abs(const floating[::1] x):
    cdef Py_ssize_t n = x.shape[0]
    cdef double result = 0.0
    if n:
        with nogil:
            result = _sum_abs(&x[0], n)
    return result
