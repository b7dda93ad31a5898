"""Adafactor, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(11) are in :mod:`fastopt.adafactor`. The parameter (flat, ``n`` elements) is a
stack of ``rows x cols`` matrices when ``factored``, else one vector. Every sum follows
:mod:`fastopt._sums` (float64, 8 lanes along a row or the whole tensor, in order down a column);
``alpha_t`` and the clip of (11) are float64 arithmetic on those sums; every element-wise
operation is in the arrays' dtype, in torch's order.
"""

import math

import numpy as np

from .. import _sums
from .._checks import require_lengths, require_matrices, require_size


def adafactor_update(
    param: np.ndarray,
    grad: np.ndarray,
    row_var: np.ndarray,
    col_var: np.ndarray,
    variance: np.ndarray,
    factored: bool,
    rows: int,
    cols: int,
    maximize: bool,
    decay_factor,
    eps1,
    eps1_squared,
    eps2: float,
    d: float,
    weight,
    rho: float,
    num_threads: int,
) -> None:
    """One Adafactor step of one parameter, in place on ``param`` and its factors or variance.

    ``num_threads`` is unused: a whole-tensor step is one thread in every twin (its sums then
    never depend on the thread count). It is there so that the three kernels share one signature.
    """
    n = param.shape[0]
    require_matrices("adafactor_update", n, rows, cols)
    require_lengths("adafactor_update", param, "grad", (grad,))
    if factored:
        require_size("adafactor_update", "row_var", row_var.shape[0], n // cols, "n // cols")
        require_size("adafactor_update", "col_var", col_var.shape[0], n // rows, "n // rows")
    else:
        require_lengths("adafactor_update", param, "variance", (variance,))
    if n == 0:
        return
    one = param.dtype.type(1.0)
    complement = one - weight  # 1 - w_t, in the arrays' dtype as torch's lerp computes it

    def lerp(start, end):  # torch's two forms, chosen by the weight
        return start + weight * (end - start) if weight < 0.5 else end - (end - start) * complement

    rms = math.sqrt(_sums.total(_sums.squares(param))) / math.sqrt(n)
    alpha = (rms if rms > eps2 else eps2) * rho                                     # (4), Python's max(eps2, rms)
    if factored:
        batches = n // (rows * cols)
        squares = _sums.squares(grad.reshape(batches, rows, cols))  # (-g)**2 is g**2: maximize changes no square
        row_means = (_sums.row_sums(squares.reshape(-1, cols)) / cols).astype(param.dtype)
        col_means = (_sums.column_sums(squares) / rows).astype(param.dtype).reshape(-1)
        row_var[:] = lerp(row_var, row_means)                                        # (6)
        col_var[:] = lerp(col_var, col_means)                                        # (7)
    g = -grad if maximize else grad                                                  # (1)
    if not factored:
        variance[:] = lerp(variance, g * g)                                          # (9)
        v = variance
    else:
        r = row_var.reshape(batches, rows, 1)
        c = col_var.reshape(batches, 1, cols)
        r_mean = (_sums.row_sums(row_var.reshape(batches, rows).astype(np.float64)) / rows).astype(param.dtype)
        r_mean = np.maximum(r_mean, eps1).reshape(batches, 1, 1)                    # clamp, NaN kept
        v = ((r * c) / r_mean).reshape(-1)                                           # (8)
    u = (one / np.sqrt(np.maximum(v, eps1_squared))) * g                             # (10)
    ratio = math.sqrt(_sums.total(_sums.squares(u))) / (math.sqrt(n) * d)
    scale = -alpha / (ratio if ratio > 1.0 else 1.0)                                 # Python's max(1, ratio)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (5)
    param[:] = param + param.dtype.type(scale) * u                                   # (11)
