"""Muon, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(9) are in :mod:`fastopt.muon`. Every element-wise operation is in the arrays'
dtype, in torch's order; the norm of (3) follows rule 2 of :mod:`fastopt._sums` and every matrix
product of (4)-(6) its rule 4 (float64 products and 8 lanes along ``k``, one rounding per
element); the adjusted learning rate of (9) is float64 arithmetic, rounded once.
"""

import math

import numpy as np

from .. import _sums
from .._checks import require_lengths, require_matrices, require_size


def muon_update(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray,
    workspace: np.ndarray,
    rows: int,
    cols: int,
    nesterov: bool,
    momentum,
    weight,
    coefficient_a,
    coefficient_b,
    coefficient_c,
    eps,
    ns_steps: int,
    decay_factor,
    lr: float,
    adjust: int,
    num_threads: int,
) -> None:
    """One Muon step of one ``rows x cols`` matrix (flat), in place on ``param`` and
    ``momentum_buffer``. ``weight`` is ``1 - momentum`` (the lerp weight of (1)); ``adjust`` is 0
    for Keller Jordan's learning-rate ratio, 1 for Moonshot's (9).

    ``workspace`` (the compiled twins' scratch matrices) and ``num_threads`` are unused here: a
    whole-tensor step is one thread in every twin. They are there so that the three kernels share
    one signature.
    """
    n = param.shape[0]
    require_matrices("muon_update", n, rows, cols)
    require_size("muon_update", "param", n, rows * cols, "rows * cols")
    require_lengths("muon_update", param, "grad momentum_buffer", (grad, momentum_buffer))
    require_size("muon_update", "workspace", workspace.shape[0], workspace_length(rows, cols), "workspace_length(rows, cols)")
    if n == 0:
        return
    one = param.dtype.type(1.0)

    def lerp(start, end, w):  # torch's two forms, chosen by the weight's size
        return start + w * (end - start) if abs(w) < 0.5 else end - (end - start) * (one - w)

    momentum_buffer[:] = lerp(momentum_buffer, grad, weight)                           # (1)
    update = lerp(grad, momentum_buffer, momentum) if nesterov else momentum_buffer    # (2)
    norm = param.dtype.type(math.sqrt(_sums.total(_sums.squares(update))))             # (3)
    denominator = eps if norm < eps else norm  # torch's clamp(min=eps): a NaN norm stays NaN
    x = update.reshape(rows, cols) / denominator
    if rows > cols:
        x = np.ascontiguousarray(x.T)  # the wide orientation: the Gram matrices are the small ones
    for _ in range(ns_steps):
        gram = _sums.matmul(x, x.T).astype(param.dtype)                                # (4)
        square = _sums.matmul(gram, gram).astype(param.dtype)
        polynomial = coefficient_b * gram + coefficient_c * square                     # (5)
        x = coefficient_a * x + _sums.matmul(polynomial, x).astype(param.dtype)        # (6)
    orthogonal = (x.T if rows > cols else x).reshape(-1)                               # (7)
    ratio = math.sqrt(max(1.0, rows / cols)) if adjust == 0 else 0.2 * math.sqrt(max(rows, cols))
    step = param.dtype.type(-(lr * ratio))                                             # (9)
    param[:] = param * decay_factor                                                    # (8)
    param[:] = param + step * orthogonal                                               # (9)


def workspace_length(rows: int, cols: int) -> int:
    """The compiled twins' scratch: three ``rows x cols`` matrices and two square ones of the
    smaller side (see ``_cython.pyx``)."""
    small = min(rows, cols)
    return 3 * rows * cols + 2 * small * small
