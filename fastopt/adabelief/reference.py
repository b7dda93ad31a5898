"""AdaBelief, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(9) are in :mod:`fastopt.adabelief`; ``bias_correction1`` and ``bias_correction2``
are ``1 - beta1^t`` and ``1 - beta2^t`` of (7)-(8), computed once per step in float64 by
``AdaBeliefAlgorithm.step_scalars`` and rounded to the arrays' dtype. The operations and their
order are optax's ``scale_by_belief``.
"""

import numpy as np

from .._checks import require_lengths


def adabelief_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_var: np.ndarray,
    max_exp_avg_var: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    beta1,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps_root,
    amsgrad: bool,
    lr,
    eps,
    bias_correction1,
    bias_correction2,
    num_threads: int,
) -> None:
    """One AdaBelief step, in place on ``param`` and the moment arrays.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("adabelief_update", param, "grad exp_avg exp_avg_var", (grad, exp_avg, exp_avg_var))
    if amsgrad:
        require_lengths("adabelief_update", param, "max_exp_avg_var", (max_exp_avg_var,))
    d = -grad if maximize else grad                                                  # (1)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    exp_avg[:] = beta1 * exp_avg + one_minus_beta1 * d                               # (3)
    r = d - exp_avg                                                                  # (4)
    exp_avg_var[:] = beta2 * exp_avg_var + one_minus_beta2 * (r * r) + eps_root      # (5)
    if amsgrad:
        np.maximum(max_exp_avg_var, exp_avg_var, out=max_exp_avg_var)                # (6)
        s = max_exp_avg_var
    else:
        s = exp_avg_var
    m_hat = exp_avg / bias_correction1                                               # (7)
    s_hat = s / bias_correction2                                                     # (8)
    param[:] = param - lr * (m_hat / (np.sqrt(s_hat) + eps))                         # (9)
