"""ADOPT, Numba twin of :func:`fastopt.adopt.reference.adopt_update`; maths in
:mod:`fastopt.adopt`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def adopt_update(param, grad, exp_avg, exp_avg_sq, maximize, weight_decay, decay_factor, beta1,
                 one_minus_beta1, beta2, one_minus_beta2, eps, lr, first_step, clip, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("adopt_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if first_step:
            exp_avg_sq[i] = d * d                                                    # (3)
        else:
            v = exp_avg_sq[i]
            if decay_factor != 1:
                p = p * decay_factor                                                 # (4)
            root = np.sqrt(v)
            u = d / (eps if root < eps else root)                                    # (5) NaN-propagating maximum
            u = clip if u > clip else (-clip if u < -clip else u)                    # (6) NaN passes through
            exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * u                # (7)
            param[i] = p - lr * m                                                    # (8)
            exp_avg_sq[i] = beta2 * v + one_minus_beta2 * (d * d)                    # (9)
