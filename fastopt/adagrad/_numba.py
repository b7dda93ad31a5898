"""Adagrad, Numba twin of :func:`fastopt.adagrad.reference.adagrad_update`; maths in :mod:`fastopt.adagrad`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def adagrad_update(param, grad, state_sum, maximize, weight_decay, decay_factor, eps_inside_sqrt, eps,
                   clr, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("adagrad_update", param, "grad state_sum", (grad, state_sum))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        state_sum[i] = s = state_sum[i] + d * d                                      # (4)
        # one square root either way: eps inside it (Keras, optax) or added to it (torch)
        std = np.sqrt(s + eps if eps_inside_sqrt else s)                             # (5)
        if not eps_inside_sqrt:
            std = std + eps                                                          # (5)
        param[i] = p - clr * d / std                                                 # (6)
