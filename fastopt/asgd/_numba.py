"""ASGD, Numba twin of :func:`fastopt.asgd.reference.asgd_update`; maths in :mod:`fastopt.asgd`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def asgd_update(param, grad, ax, maximize, weight_decay, shrink_factor, eta, averaging, mu, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("asgd_update", param, "grad ax", (grad, ax))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        param[i] = p = p * shrink_factor - eta * d                                   # (3)
        if averaging:
            a = ax[i]
            ax[i] = a + (p - a) * mu                                                 # (4)
        else:
            ax[i] = p                                                                # (4)
