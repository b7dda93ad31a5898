"""Schedule-Free AdamW, NumPy reference: the specification the Numba and Cython twins must match bit
for bit.

Equations (1)-(8) are in :mod:`fastopt.schedule_free_adamw`. ``bias_correction2`` (``1 -
beta2^t``), ``ckp1`` (``c_{t+1}``), ``one_minus_ckp1``, ``ckp1_small`` (``|c_{t+1}| < 0.5``: which
of torch's two forms of the interpolation (6) is used), ``y_lr`` (``lr_t * (beta1 * (1 - c_{t+1})
- 1)``) and ``lr`` (``lr_t``, warmup applied) are computed once per step in float64 by
``ScheduleFreeAdamWAlgorithm.step_scalars`` and rounded to the arrays' dtype. The operations and
their order are the authors' ``AdamWScheduleFree.step``.
"""

import numpy as np

from .._checks import require_lengths


def schedule_free_adamw_update(
    param: np.ndarray,
    grad: np.ndarray,
    z: np.ndarray,
    exp_avg_sq: np.ndarray,
    maximize: bool,
    weight_decay,
    beta2,
    one_minus_beta2,
    eps,
    bias_correction2,
    ckp1_small: bool,
    ckp1,
    one_minus_ckp1,
    y_lr,
    lr,
    num_threads: int,
) -> None:
    """One Schedule-Free AdamW step, in place on ``param`` (the point ``y``), ``z`` and
    ``exp_avg_sq``; the gradient is left as it is.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("schedule_free_adamw_update", param, "grad z exp_avg_sq", (grad, z, exp_avg_sq))
    d = -grad if maximize else grad                                                  # (1)
    exp_avg_sq[:] = beta2 * exp_avg_sq + one_minus_beta2 * d * d                     # (2)
    denom = np.sqrt(exp_avg_sq / bias_correction2) + eps                             # (3)
    u = d / denom                                                                    # (4)
    if weight_decay != 0:
        u = u + weight_decay * param                                                 # (5)
    if ckp1_small:
        y = param + ckp1 * (z - param)                                               # (6)
    else:
        y = z - (z - param) * one_minus_ckp1                                         # (6)
    param[:] = y + y_lr * u                                                          # (7)
    z[:] = z - lr * u                                                                # (8)
