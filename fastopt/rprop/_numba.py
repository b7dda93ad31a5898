"""Rprop, Numba twin of :func:`fastopt.rprop.reference.rprop_update`; maths in :mod:`fastopt.rprop`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def rprop_update(param, grad, prev, step_size, maximize, etaplus, etaminus, step_size_min,
                 step_size_max, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("rprop_update", param, "grad prev step_size", (grad, prev, step_size))
    # the factor and sign values in the arrays' dtype (a literal 1.0 would promote float32 maths)
    one, zero = param.dtype.type(1.0), param.dtype.type(0.0)
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        d = -grad[i] if maximize else grad[i]                                        # (1)
        s = d * prev[i]                                                              # (2)
        # selects, not branches: the signs are random, and the flat form vectorises
        factor = one                                                                 # (3)
        factor = etaplus if s > 0 else factor                                        # (3)
        factor = etaminus if s < 0 else factor                                       # (3)
        size = step_size[i] * factor                                                 # (4)
        size = step_size_min if size < step_size_min else size                       # (4)
        step_size[i] = size = step_size_max if size > step_size_max else size        # (4)
        d = zero if s < 0 else d                                                     # (5)
        # torch.sign's rule: 1, -1, and 0 for either zero and for NaN
        direction = (one if d > 0 else zero) - (one if d < 0 else zero)              # (6)
        param[i] = param[i] - direction * size                                       # (6)
        prev[i] = d                                                                  # (7)
