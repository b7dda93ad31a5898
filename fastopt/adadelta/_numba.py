"""Adadelta, Numba twin of :func:`fastopt.adadelta.reference.adadelta_update`; maths in :mod:`fastopt.adadelta`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def adadelta_update(param, grad, square_avg, acc_delta, maximize, weight_decay, decay_factor, rho,
                    one_minus_rho, eps, lr, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("adadelta_update", param, "grad square_avg acc_delta", (grad, square_avg, acc_delta))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        square_avg[i] = v = rho * square_avg[i] + one_minus_rho * d * d              # (3)
        std = np.sqrt(v + eps)                                                       # (4)
        u = acc_delta[i]
        delta = np.sqrt(u + eps) / std * d                                           # (5)
        acc_delta[i] = rho * u + one_minus_rho * delta * delta                       # (6)
        param[i] = p - lr * delta                                                    # (7)
