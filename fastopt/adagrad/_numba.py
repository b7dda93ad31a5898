"""Adagrad, Numba twin of :func:`fastopt.adagrad.reference.adagrad_update`; maths in :mod:`fastopt.adagrad`."""

import numpy as np

from .._jit import jit_kernel


@jit_kernel
def adagrad_update(param, grad, state_sum, maximize, weight_decay, eps, clr):
    for i in range(param.shape[0]):
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * param[i]                                          # (2)
        state_sum[i] = state_sum[i] + d * d                                          # (4)
        std = np.sqrt(state_sum[i]) + eps                                            # (5)
        param[i] = param[i] - clr * d / std                                          # (6)
