"""L-BFGS, NumPy reference of the vector kernels: the specification the Numba and Cython twins
must match bit for bit. The maths (equations (1)-(12)) and the control flow that calls these
kernels are in :mod:`fastopt.lbfgs`.

L-BFGS works on one vector, the flat concatenation of all parameters. Its vector work is a few
kernels over such vectors: element-wise updates in the arrays' dtype (``alpha`` arrives already
rounded to it) and reductions, every dot product and sum accumulated in float64 in the order of
:mod:`fastopt._sums` (8 lanes, one fixed tree), so that the three twins give the same bits. Each
kernel checks that its arrays have the first array's length; nothing else (the class checks).
"""

import functools

import numpy as np

from .._checks import require_size
from .._sums import total


def _quiet(kernel):
    """IEEE arithmetic without NumPy's warnings (inf * 0 is NaN, silently, as in the compiled twins)."""

    @functools.wraps(kernel)
    def quiet(*args):
        with np.errstate(all="ignore"):
            return kernel(*args)

    return quiet


def _same_length(kernel: str, first: str, array: np.ndarray, names: str, others: tuple) -> None:
    for name, other in zip(names.split(), others):
        require_size(kernel, name, other.shape[0], array.shape[0], first + "'s length")


def _wide(values: np.ndarray) -> np.ndarray:
    return values.astype(np.float64)  # a float32 value widened: products of two are exact


@_quiet
def dot(x: np.ndarray, y: np.ndarray) -> float:
    """``x . y`` in float64, in the summation order of :mod:`fastopt._sums`: (2), (3), (5), (7), (10)."""
    _same_length("dot", "x", x, "y", (y,))
    return total(_wide(x) * _wide(y))


@_quiet
def add_scaled_then_dot(target: np.ndarray, x: np.ndarray, other: np.ndarray, alpha) -> float:
    """``target += alpha * x``, then ``other . target``: one step of a two-loop recursion and the
    dot product that opens the next, in one pass over ``target``: (5), (7)."""
    _same_length("add_scaled_then_dot", "target", target, "x other", (x, other))
    np.add(target, alpha * x, out=target)                       # (5) q - alpha_i y_i, (7) r + (alpha_i - beta_i) s_i
    return total(_wide(other) * _wide(target))                  # (5) s_{i-1} . q, (7) y_{i+1} . r


@_quiet
def add_scaled(target: np.ndarray, x: np.ndarray, alpha) -> None:
    """``target += alpha * x``: the last step of a loop of the recursion (5), (7); the move (9)."""
    _same_length("add_scaled", "target", target, "x", (x,))
    np.add(target, alpha * x, out=target)                       # (5), (7), (9)


@_quiet
def scaled(out: np.ndarray, x: np.ndarray, alpha) -> None:
    """``out = alpha * x``: ``-g`` (4), ``gamma q`` (6), ``s = t d`` (1)."""
    _same_length("scaled", "out", out, "x", (x,))
    np.multiply(alpha, x, out=out)                              # (1), (4), (6)


@_quiet
def difference(out: np.ndarray, a: np.ndarray, b: np.ndarray) -> None:
    """``out = a - b``: ``y = g_new - g_old`` (1)."""
    _same_length("difference", "out", out, "a b", (a, b))
    np.subtract(a, b, out=out)                                  # (1)


@_quiet
def max_abs_scaled(x: np.ndarray, alpha) -> float:
    """``max |alpha * x_i|`` (0 for an empty ``x``; NaN if any product is NaN): the optimality
    test on ``g`` (``alpha = 1``) and the step-size test on ``t d`` (11)."""
    if x.shape[0] == 0:
        return 0.0
    return float(np.max(np.abs(alpha * x)))                     # (11)


@_quiet
def sum_abs(x: np.ndarray) -> float:
    """``|x|_1`` in float64, in the summation order of :mod:`fastopt._sums`: the first step (12)."""
    return total(np.abs(_wide(x)))                              # (12)
