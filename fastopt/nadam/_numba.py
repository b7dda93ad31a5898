"""NAdam, Numba twin of :func:`fastopt.nadam.reference.nadam_update`; maths in :mod:`fastopt.nadam`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def nadam_update(param, grad, exp_avg, exp_avg_sq, maximize, weight_decay, decay_factor, beta1,
                 one_minus_beta1, beta2, one_minus_beta2, bias_correction2, eps, grad_step,
                 momentum_step, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("nadam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                    # (5)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d          # (6)
        denom = np.sqrt(v / bias_correction2) + eps                                  # (7)
        p = p - grad_step * d / denom                                                # (8)
        param[i] = p - momentum_step * m / denom                                     # (9)
