"""Adagrad, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(6) are in :mod:`fastopt.adagrad`; ``clr`` is eta_t of (3) and ``decay_factor``
``1 - eta * lambda`` (1 unless the weight decay is decoupled), computed by the optimizer's algorithm (``python -m fastopt show`` prints how).
"""

import numpy as np

from .._checks import require_lengths


def adagrad_update(
    param: np.ndarray,
    grad: np.ndarray,
    state_sum: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    eps_inside_sqrt: bool,
    eps,
    clr,
    num_threads: int,
) -> None:
    """One Adagrad step, in place on ``param`` and ``state_sum``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("adagrad_update", param, "grad state_sum", (grad, state_sum))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    state_sum[:] = state_sum + d * d                                                 # (4)
    if eps_inside_sqrt:
        std = np.sqrt(state_sum + eps)                                               # (5)
    else:
        std = np.sqrt(state_sum) + eps                                               # (5)
    param[:] = param - clr * d / std                                                 # (6)
