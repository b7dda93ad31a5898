"""Adam, Numba twin of :func:`fastopt.adam.reference.adam_update`; maths in :mod:`fastopt.adam`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, maximize, weight_decay,
                decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2, amsgrad, amsgrad_corrected_max,
                bias_correction2, eps_t, step_size, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("adam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    if amsgrad:
        require_lengths("adam_update", param, "max_exp_avg_sq", (max_exp_avg_sq,))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                    # (3)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d          # (4)
        if amsgrad:
            if amsgrad_corrected_max:
                v = v / bias_correction2                                             # (5)
            vmax = max_exp_avg_sq[i]
            # NaN-propagating maximum, exactly np.maximum's rule
            max_exp_avg_sq[i] = v = vmax if (vmax >= v or vmax != vmax) else v       # (5)
        denom = np.sqrt(v) + eps_t                                                   # (6)
        param[i] = p - step_size * m / denom                                         # (7)
