"""SparseAdam, Numba twin of :func:`fastopt.sparse_adam.reference.sparse_adam_update`; maths in
:mod:`fastopt.sparse_adam`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def sparse_adam_update(param, grad, exp_avg, exp_avg_sq, maximize, one_minus_beta1, one_minus_beta2, eps,
                       step_size, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("sparse_adam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        d = -grad[i] if maximize else grad[i]                                        # (1)
        m = exp_avg[i]
        exp_avg[i] = m = m + (d - m) * one_minus_beta1                               # (2)
        v = exp_avg_sq[i]
        exp_avg_sq[i] = v = v + (d * d - v) * one_minus_beta2                        # (3)
        param[i] = param[i] - step_size * (m / (np.sqrt(v) + eps))                 # (4)
