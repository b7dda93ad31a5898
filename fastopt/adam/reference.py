"""Adam, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(7) are in :mod:`fastopt.adam`; ``eps_t`` and ``step_size`` are the scalars
``epsilon_t`` and ``alpha_t`` of (6)-(7), ``eps * sqrt(1 - beta2^t)`` and
``eta * sqrt(1 - beta2^t) / (1 - beta1^t)``: the bias corrections, computed once per step in
float64 by ``AdamAlgorithm.step_scalars`` (in ``fastopt/adam/__init__.py``; ``python -m fastopt
show adam`` prints it above the three kernels) and rounded to the arrays' dtype.
"""

import numpy as np

from .._checks import require_lengths


def adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    max_exp_avg_sq: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    beta1,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    amsgrad: bool,
    amsgrad_corrected_max: bool,
    bias_correction2,
    eps_t,
    step_size,
    num_threads: int,
) -> None:
    """One Adam step, in place on ``param`` and the moment arrays.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("adam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    if amsgrad:
        require_lengths("adam_update", param, "max_exp_avg_sq", (max_exp_avg_sq,))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    exp_avg[:] = beta1 * exp_avg + one_minus_beta1 * d                               # (3)
    exp_avg_sq[:] = beta2 * exp_avg_sq + one_minus_beta2 * d * d                     # (4)
    if amsgrad:
        if amsgrad_corrected_max:
            np.maximum(max_exp_avg_sq, exp_avg_sq / bias_correction2, out=max_exp_avg_sq)    # (5)
        else:
            np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)               # (5)
        denom = np.sqrt(max_exp_avg_sq) + eps_t                                      # (6)
    else:
        denom = np.sqrt(exp_avg_sq) + eps_t                                          # (6)
    param[:] = param - step_size * exp_avg / denom                                   # (7)
