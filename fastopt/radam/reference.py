"""RAdam, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(8) are in :mod:`fastopt.radam`. The caller computes the scalars: the bias
corrections ``1 - beta1^t`` and ``sqrt(1 - beta2^t)``, the branch ``rectified`` (``rho_t > 5``,
decided once per step) and ``rect`` = ``r_t`` of (7).
"""

import numpy as np

from .._checks import require_lengths


def radam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    beta1,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    bias_correction1,
    lr,
    rectified: bool,
    bias_correction2_sqrt,
    eps,
    rect,
    num_threads: int,
) -> None:
    """One RAdam step, in place on ``param``, ``exp_avg`` and ``exp_avg_sq``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("radam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    exp_avg[:] = beta1 * exp_avg + one_minus_beta1 * d                               # (3)
    exp_avg_sq[:] = beta2 * exp_avg_sq + one_minus_beta2 * d * d                     # (4)
    m_hat = exp_avg / bias_correction1                                               # (5)
    if rectified:
        adaptive = bias_correction2_sqrt / (np.sqrt(exp_avg_sq) + eps)
        param[:] = param - m_hat * lr * adaptive * rect                              # (8)
    else:
        param[:] = param - m_hat * lr                                                # (8)
