"""NAdam, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(9) are in :mod:`fastopt.nadam`. The caller computes the scalars: the bias
correction ``1 - beta2^t`` and the step sizes of (8) and (9),
``grad_step = eta * (1 - mu_t) / (1 - Pi_t)`` and
``momentum_step = eta * mu_{t+1} / (1 - Pi_t * mu_{t+1})``.
"""

import numpy as np

from .._checks import require_lengths


def nadam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    beta1,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    bias_correction2,
    eps,
    grad_step,
    momentum_step,
    num_threads: int,
) -> None:
    """One NAdam step, in place on ``param``, ``exp_avg`` and ``exp_avg_sq``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("nadam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    exp_avg[:] = beta1 * exp_avg + one_minus_beta1 * d                               # (5)
    exp_avg_sq[:] = beta2 * exp_avg_sq + one_minus_beta2 * d * d                     # (6)
    denom = np.sqrt(exp_avg_sq / bias_correction2) + eps                             # (7)
    param[:] = param - grad_step * d / denom                                         # (8)
    param[:] = param - momentum_step * exp_avg / denom                               # (9)
