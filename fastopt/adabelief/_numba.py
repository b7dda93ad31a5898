"""AdaBelief, Numba twin of :func:`fastopt.adabelief.reference.adabelief_update`; maths in
:mod:`fastopt.adabelief`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def adabelief_update(param, grad, exp_avg, exp_avg_var, max_exp_avg_var, maximize, weight_decay,
                     decay_factor, beta1, one_minus_beta1, beta2, one_minus_beta2, eps_root, amsgrad,
                     lr, eps, bias_correction1, bias_correction2, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("adabelief_update", param, "grad exp_avg exp_avg_var", (grad, exp_avg, exp_avg_var))
    if amsgrad:
        require_lengths("adabelief_update", param, "max_exp_avg_var", (max_exp_avg_var,))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                    # (3)
        r = d - m                                                                    # (4)
        exp_avg_var[i] = s = beta2 * exp_avg_var[i] + one_minus_beta2 * (r * r) + eps_root  # (5)
        if amsgrad:
            smax = max_exp_avg_var[i]
            # NaN-propagating maximum, exactly np.maximum's rule
            max_exp_avg_var[i] = s = smax if (smax >= s or smax != smax) else s      # (6)
        m_hat = m / bias_correction1                                                 # (7)
        s_hat = s / bias_correction2                                                 # (8)
        param[i] = p - lr * (m_hat / (np.sqrt(s_hat) + eps))                         # (9)
