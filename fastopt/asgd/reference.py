"""ASGD, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(6) are in :mod:`fastopt.asgd`; ``shrink_factor`` is ``1 - lambd * eta_t`` and
``averaging`` is ``mu_t != 1``, computed by the optimizer's algorithm from the step's ``eta_t``
and ``mu_t`` (``python -m fastopt show`` prints how).
"""

import numpy as np

from .._checks import require_lengths


def asgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    ax: np.ndarray,
    maximize: bool,
    weight_decay,
    shrink_factor,
    eta,
    averaging: bool,
    mu,
    num_threads: int,
) -> None:
    """One ASGD step, in place on ``param`` and ``ax``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("asgd_update", param, "grad ax", (grad, ax))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    param[:] = param * shrink_factor - eta * d                                       # (3)
    if averaging:
        ax[:] = ax + (param - ax) * mu                                               # (4)
    else:
        ax[:] = param                                                                # (4)
