"""RAdam, Numba twin of :func:`fastopt.radam.reference.radam_update`; maths in :mod:`fastopt.radam`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def radam_update(param, grad, exp_avg, exp_avg_sq, maximize, weight_decay, decay_factor, beta1,
                 one_minus_beta1, beta2, one_minus_beta2, bias_correction1, lr, rectified,
                 bias_correction2_sqrt, eps, rect, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("radam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                    # (3)
        exp_avg_sq[i] = v = beta2 * exp_avg_sq[i] + one_minus_beta2 * d * d          # (4)
        m_hat = m / bias_correction1                                                 # (5)
        if rectified:
            adaptive = bias_correction2_sqrt / (np.sqrt(v) + eps)
            param[i] = p - m_hat * lr * adaptive * rect                              # (8)
        else:
            param[i] = p - m_hat * lr                                                # (8)
