"""Adadelta, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(7) are in :mod:`fastopt.adadelta`.
"""

import numpy as np

from .._checks import require_lengths


def adadelta_update(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    acc_delta: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    rho,
    one_minus_rho,
    eps,
    lr,
    num_threads: int,
) -> None:
    """One Adadelta step, in place on ``param``, ``square_avg`` and ``acc_delta``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("adadelta_update", param, "grad square_avg acc_delta", (grad, square_avg, acc_delta))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    square_avg[:] = rho * square_avg + one_minus_rho * d * d                         # (3)
    std = np.sqrt(square_avg + eps)                                                  # (4)
    delta = np.sqrt(acc_delta + eps) / std * d                                       # (5)
    acc_delta[:] = rho * acc_delta + one_minus_rho * delta * delta                   # (6)
    param[:] = param - lr * delta                                                    # (7)
