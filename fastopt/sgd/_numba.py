"""SGD, Numba twin of :func:`fastopt.sgd.reference.sgd_update`; see :mod:`fastopt.sgd` for the maths.

The same equations as the reference, one element at a time; compiled by :func:`fastopt._jit.jit_kernel`
(no fastmath, IEEE division), so the result is bit-identical to the reference. Each array element
is read once into a local and each result stored once ("momentum_buffer[i] = b = ..."), so the
compiler never reloads a value it has just stored.
"""

from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def sgd_update(param, grad, momentum_buffer, maximize, weight_decay, decay_factor, momentum,
               first_step, one_minus_dampening, nesterov, lr, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("sgd_update", param, "grad", (grad,))
    if momentum != 0:
        require_lengths("sgd_update", param, "momentum_buffer", (momentum_buffer,))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        if momentum != 0:
            # one store per element and a select, not a branch: the loop then vectorises
            momentum_buffer[i] = b = d if first_step else momentum * momentum_buffer[i] + one_minus_dampening * d  # (3)
            d = d + momentum * b if nesterov else b                                  # (4)
        param[i] = p - lr * d                                                        # (5)
