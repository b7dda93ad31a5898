"""RMSprop, Numba twin of :func:`fastopt.rmsprop.reference.rmsprop_update`; maths in :mod:`fastopt.rmsprop`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

import numpy as np
from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def rmsprop_update(param, grad, square_avg, grad_avg, momentum_buffer, maximize, weight_decay,
                   decay_factor, rho, one_minus_rho, centered, eps_inside_sqrt, eps, momentum,
                   lr_in_momentum, lr, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("rmsprop_update", param, "grad square_avg", (grad, square_avg))
    if centered:
        require_lengths("rmsprop_update", param, "grad_avg", (grad_avg,))
    if momentum > 0:
        require_lengths("rmsprop_update", param, "momentum_buffer", (momentum_buffer,))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        square_avg[i] = v = rho * square_avg[i] + one_minus_rho * d * d              # (3)
        if centered:
            grad_avg[i] = gbar = rho * grad_avg[i] + one_minus_rho * d               # (4)
            w = v - gbar * gbar                                                      # (5)
        else:
            w = v                                                                    # (5)
        # one square root either way: eps inside it (Keras, optax) or added to it (torch)
        avg = np.sqrt(w + eps if eps_inside_sqrt else w)                             # (6)
        if not eps_inside_sqrt:
            avg = avg + eps                                                          # (6)
        if momentum > 0:
            if lr_in_momentum:
                momentum_buffer[i] = b = momentum * momentum_buffer[i] + lr * d / avg    # (7)
                param[i] = p - b                                                     # (7)
            else:
                momentum_buffer[i] = b = momentum * momentum_buffer[i] + d / avg     # (7)
                param[i] = p - lr * b                                                # (7)
        else:
            param[i] = p - lr * d / avg                                              # (8)
