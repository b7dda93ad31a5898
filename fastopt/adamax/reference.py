"""Adamax, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(5) are in :mod:`fastopt.adamax`; ``step_size`` is ``eta / (1 - beta1^t)``,
computed by the optimizer's algorithm (``python -m fastopt show`` prints how).
"""

import numpy as np

from .._checks import require_lengths


def adamax_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_inf: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    beta1,
    one_minus_beta1,
    beta2,
    eps_outside_max: bool,
    eps,
    step_size,
    num_threads: int,
) -> None:
    """One Adamax step, in place on ``param``, ``exp_avg`` and ``exp_inf``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("adamax_update", param, "grad exp_avg exp_inf", (grad, exp_avg, exp_inf))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    exp_avg[:] = beta1 * exp_avg + one_minus_beta1 * d                               # (3)
    if eps_outside_max:
        np.maximum(beta2 * exp_inf, np.abs(d), out=exp_inf)                          # (4)
        denom = exp_inf + eps                                                        # (5)
    else:
        np.maximum(beta2 * exp_inf, np.abs(d) + eps, out=exp_inf)                    # (4)
        denom = exp_inf
    param[:] = param - step_size * exp_avg / denom                                   # (5)
