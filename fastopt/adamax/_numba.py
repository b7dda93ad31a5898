"""Adamax, Numba twin of :func:`fastopt.adamax.reference.adamax_update`; maths in :mod:`fastopt.adamax`.

Each array element is read once into a local and each result stored once, as in every fastopt loop.
"""

from numba import prange

from .._jit import jit_kernel, require_lengths


@jit_kernel
def adamax_update(param, grad, exp_avg, exp_inf, maximize, weight_decay, decay_factor, beta1,
                  one_minus_beta1, beta2, eps_outside_max, eps, step_size, num_threads):
    # every array this step touches has param's length (the loop below is unchecked)
    require_lengths("adamax_update", param, "grad exp_avg exp_inf", (grad, exp_avg, exp_inf))
    for i in prange(param.shape[0]):  # iterations are independent: safe to split across threads
        p = param[i]
        d = -grad[i] if maximize else grad[i]                                        # (1)
        if weight_decay != 0:
            d = d + weight_decay * p                                                 # (2)
        if decay_factor != 1:
            p = p * decay_factor                                                     # (2)
        exp_avg[i] = m = beta1 * exp_avg[i] + one_minus_beta1 * d                    # (3)
        decayed = beta2 * exp_inf[i]
        floor = abs(d) if eps_outside_max else abs(d) + eps                          # (4)
        # NaN-propagating maximum, exactly np.maximum's rule
        exp_inf[i] = u = decayed if (decayed >= floor or decayed != decayed) else floor  # (4)
        if eps_outside_max:
            u = u + eps                                                              # (5)
        param[i] = p - step_size * m / u                                             # (5)
