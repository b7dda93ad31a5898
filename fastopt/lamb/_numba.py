"""LAMB, Numba twin of :func:`fastopt.lamb.reference.lamb_update`; maths in :mod:`fastopt.lamb`.

Two passes over the parameter: the moments (2)-(3), the update (4)-(6) and the two sums of squares
of (7), 256 elements at a time (the update's into a scratch buffer, whose chunks start at
multiples of 8, so element ``k`` of the tensor lands in lane ``k % 8`` as :mod:`fastopt._sums`
says); then the step (9), recomputing each element of the update from the stored moments rather
than keeping it. The scratch buffer is the one allocation per call.
"""

import numpy as np

from .._jit import jit_kernel, require_lengths
from .._sums._numba import NO_LANES, add_to_lanes, combine_lanes


@jit_kernel
def lamb_update(param, grad, exp_avg, exp_avg_sq, maximize, beta1, one_minus_beta1, beta2, one_minus_beta2,
                eps, eps_root, weight_decay, lr, bias_correction1, bias_correction2, num_threads):
    n = param.shape[0]
    require_lengths("lamb_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    if n == 0:
        return
    dtype = param.dtype.type
    param_lanes = NO_LANES
    update_lanes = NO_LANES
    chunk = np.zeros(256, param.dtype)
    for start in range(0, n, 256):
        width = min(256, n - start)
        param_lanes = add_to_lanes(param_lanes, param, start, width, True)             # theta_{t-1}: its squares, before the step
        for j in range(width):
            k = start + j
            g = -grad[k] if maximize else grad[k]                                      # (1)
            exp_avg[k] = m = one_minus_beta1 * g + beta1 * exp_avg[k]                  # (2)
            exp_avg_sq[k] = v = one_minus_beta2 * (g * g) + beta2 * exp_avg_sq[k]      # (3)
            u = (m / bias_correction1) / (np.sqrt(v / bias_correction2 + eps_root) + eps)  # (4), (5)
            if weight_decay != 0:
                u = u + weight_decay * param[k]                                        # (6)
            chunk[j] = u
        update_lanes = add_to_lanes(update_lanes, chunk, 0, width, True)               # (7)
    param_norm = np.sqrt(combine_lanes(param_lanes))
    update_norm = np.sqrt(combine_lanes(update_lanes))
    ratio = 1.0 if (param_norm == 0.0 or update_norm == 0.0) else param_norm / update_norm  # (8), optax's rule
    step = dtype(-(lr * ratio))
    for k in range(n):
        p = param[k]
        u = (exp_avg[k] / bias_correction1) / (np.sqrt(exp_avg_sq[k] / bias_correction2 + eps_root) + eps)  # (4), (5)
        if weight_decay != 0:
            u = u + weight_decay * p                                                   # (6)
        param[k] = p + step * u                                                        # (9)
