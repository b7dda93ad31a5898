"""L-BFGS, Numba twin of the vector kernels of :mod:`fastopt.lbfgs.reference`; maths in
:mod:`fastopt.lbfgs`.

Each reduction adds element ``k`` into lane ``k % 8`` in float64 and combines the lanes by the
tree of :mod:`fastopt._sums` (``combine_lanes``); the lanes are an 8-element array, updated a
whole block of 8 at a time. Element-wise updates are in the arrays' dtype.
"""

import numpy as np

from .._jit import jit_kernel, require_size
from .._sums._numba import combine_lanes


@jit_kernel
def dot(x, y):
    n = x.shape[0]
    require_size("dot", "y", y.shape[0], n, "x's length")
    lanes = np.zeros(8)
    whole = n - n % 8
    for k in range(0, whole, 8):
        for lane in range(8):
            lanes[lane] += np.float64(x[k + lane]) * np.float64(y[k + lane])     # (2), (3), (5), (7), (10)
    for k in range(whole, n):
        lanes[k - whole] += np.float64(x[k]) * np.float64(y[k])
    return combine_lanes(lanes)


@jit_kernel
def add_scaled_then_dot(target, x, other, alpha):
    n = target.shape[0]
    require_size("add_scaled_then_dot", "x", x.shape[0], n, "target's length")
    require_size("add_scaled_then_dot", "other", other.shape[0], n, "target's length")
    lanes = np.zeros(8)
    whole = n - n % 8
    for k in range(0, whole, 8):
        for lane in range(8):
            target[k + lane] = v = target[k + lane] + alpha * x[k + lane]            # (5), (7)
            lanes[lane] += np.float64(other[k + lane]) * np.float64(v)              # (5), (7)
    for k in range(whole, n):
        target[k] = v = target[k] + alpha * x[k]                                  # (5), (7)
        lanes[k - whole] += np.float64(other[k]) * np.float64(v)                  # (5), (7)
    return combine_lanes(lanes)


@jit_kernel
def add_scaled(target, x, alpha):
    n = target.shape[0]
    require_size("add_scaled", "x", x.shape[0], n, "target's length")
    for i in range(n):
        target[i] = target[i] + alpha * x[i]                                      # (5), (7), (9)


@jit_kernel
def scaled(out, x, alpha):
    n = out.shape[0]
    require_size("scaled", "x", x.shape[0], n, "out's length")
    for i in range(n):
        out[i] = alpha * x[i]                                                     # (1), (4), (6)


@jit_kernel
def difference(out, a, b):
    n = out.shape[0]
    require_size("difference", "a", a.shape[0], n, "out's length")
    require_size("difference", "b", b.shape[0], n, "out's length")
    for i in range(n):
        out[i] = a[i] - b[i]                                                      # (1)


@jit_kernel
def max_abs_scaled(x, alpha):
    # a maximum has no rounding: any order gives the same value, so 8 lanes (which vectorise) and
    # a lane of NaNs seen beside them; NaN if any product is NaN, as NumPy's max
    n = x.shape[0]
    lanes = np.zeros(8, x.dtype)
    nans = np.zeros(8, x.dtype)
    whole = n - n % 8
    for k in range(0, whole, 8):
        for lane in range(8):
            v = abs(alpha * x[k + lane])                                          # (11)
            lanes[lane] = v if v > lanes[lane] else lanes[lane]
            nans[lane] = v if v != v else nans[lane]
    for k in range(whole, n):
        v = abs(alpha * x[k])                                                     # (11)
        lanes[k - whole] = v if v > lanes[k - whole] else lanes[k - whole]
        nans[k - whole] = v if v != v else nans[k - whole]
    if np.isnan(nans).any():
        return np.nan
    return np.float64(lanes.max())


@jit_kernel
def sum_abs(x):
    n = x.shape[0]
    lanes = np.zeros(8)
    whole = n - n % 8
    for k in range(0, whole, 8):
        for lane in range(8):
            lanes[lane] += abs(np.float64(x[k + lane]))                           # (12)
    for k in range(whole, n):
        lanes[k - whole] += abs(np.float64(x[k]))                                 # (12)
    return combine_lanes(lanes)
