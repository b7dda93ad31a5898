"""L-BFGS, Cython twin of the vector kernels of :mod:`fastopt.lbfgs.reference`; maths in
:mod:`fastopt.lbfgs`.

Unlike the element-wise optimizers' loops, these kernels are whole functions written here (no
generated entry points: each takes one to three vectors and returns a sum or nothing). Each
reduction adds element ``k`` into lane ``k % 8`` in float64 and combines the lanes by the tree of
:mod:`fastopt._sums`; the inner loop over a block of 8 has a fixed trip count, which gcc
vectorises without reordering an addition. Element-wise updates are in the arrays' dtype
(``floating``: float32's ``float`` or float64's ``double``).
"""

from cython cimport floating
from fastopt._sums.sums cimport combine_lanes
from libc.math cimport fabs

from fastopt._checks import require_size


def dot(const floating[::1] x, const floating[::1] y):
    cdef Py_ssize_t n = x.shape[0], k, lane, whole = n - n % 8
    cdef double lanes[8]
    if y.shape[0] != n:
        require_size("dot", "y", y.shape[0], n, "x's length")
    with nogil:
        for lane in range(8):
            lanes[lane] = 0.0
        for k in range(0, whole, 8):
            for lane in range(8):
                lanes[lane] += <double>x[k + lane] * <double>y[k + lane]          # (2), (3), (5), (7), (10)
        for k in range(whole, n):
            lanes[k - whole] += <double>x[k] * <double>y[k]
    return combine_lanes(lanes)


def add_scaled_then_dot(floating[::1] target, const floating[::1] x, const floating[::1] other, floating alpha):
    cdef Py_ssize_t n = target.shape[0], k, lane, whole = n - n % 8
    cdef double lanes[8]
    cdef floating v
    if x.shape[0] != n:
        require_size("add_scaled_then_dot", "x", x.shape[0], n, "target's length")
    if other.shape[0] != n:
        require_size("add_scaled_then_dot", "other", other.shape[0], n, "target's length")
    with nogil:
        for lane in range(8):
            lanes[lane] = 0.0
        for k in range(0, whole, 8):
            for lane in range(8):
                target[k + lane] = v = target[k + lane] + alpha * x[k + lane]     # (5), (7)
                lanes[lane] += <double>other[k + lane] * <double>v               # (5), (7)
        for k in range(whole, n):
            target[k] = v = target[k] + alpha * x[k]                              # (5), (7)
            lanes[k - whole] += <double>other[k] * <double>v                      # (5), (7)
    return combine_lanes(lanes)


def add_scaled(floating[::1] target, const floating[::1] x, floating alpha):
    cdef Py_ssize_t n = target.shape[0], i
    if x.shape[0] != n:
        require_size("add_scaled", "x", x.shape[0], n, "target's length")
    with nogil:
        for i in range(n):
            target[i] = target[i] + alpha * x[i]                                  # (5), (7), (9)


def scaled(floating[::1] out, const floating[::1] x, floating alpha):
    cdef Py_ssize_t n = out.shape[0], i
    if x.shape[0] != n:
        require_size("scaled", "x", x.shape[0], n, "out's length")
    with nogil:
        for i in range(n):
            out[i] = alpha * x[i]                                                 # (1), (4), (6)


def difference(floating[::1] out, const floating[::1] a, const floating[::1] b):
    cdef Py_ssize_t n = out.shape[0], i
    if a.shape[0] != n:
        require_size("difference", "a", a.shape[0], n, "out's length")
    if b.shape[0] != n:
        require_size("difference", "b", b.shape[0], n, "out's length")
    with nogil:
        for i in range(n):
            out[i] = a[i] - b[i]                                                  # (1)


def max_abs_scaled(const floating[::1] x, floating alpha):
    cdef Py_ssize_t i
    cdef double v, largest = 0.0
    with nogil:
        for i in range(x.shape[0]):
            v = fabs(<double>(alpha * x[i]))                                      # (11)
            if v > largest or v != v:  # a NaN stays: no later comparison is true
                largest = v
    return largest


def sum_abs(const floating[::1] x):
    cdef Py_ssize_t n = x.shape[0], k, lane, whole = n - n % 8
    cdef double lanes[8]
    with nogil:
        for lane in range(8):
            lanes[lane] = 0.0
        for k in range(0, whole, 8):
            for lane in range(8):
                lanes[lane] += fabs(<double>x[k + lane])                          # (12)
        for k in range(whole, n):
            lanes[k - whole] += fabs(<double>x[k])                                # (12)
    return combine_lanes(lanes)
