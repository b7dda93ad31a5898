"""Schedule-Free AdamW, Numba twin of
:func:`fastopt.schedule_free_adamw.reference.schedule_free_adamw_update`; maths in
:mod:`fastopt.schedule_free_adamw`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def schedule_free_adamw_update(param, grad, z, exp_avg_sq, maximize, weight_decay, beta2, one_minus_beta2, eps,
                               bias_correction2, ckp1_small, ckp1, one_minus_ckp1, y_lr, lr, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("schedule_free_adamw_update", param, "grad z exp_avg_sq", (grad, z, exp_avg_sq))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        zi = z[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d          # (2)
        denom = np.sqrt(v / bias_correction2) + eps                                  # (3)
        u = d / denom                                                                # (4)
        if weight_decay != 0:
            u = u + weight_decay * p                                                 # (5)
        if ckp1_small:
            y = p + ckp1 * (zi - p)                                                  # (6)
        else:
            y = zi - (zi - p) * one_minus_ckp1                                       # (6)
        param[i] = y + y_lr * u                                                      # (7)
        z[i] = zi - lr * u                                                           # (8)
