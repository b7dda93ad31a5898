"""ADOPT, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(9) are in :mod:`fastopt.adopt`; ``first_step`` (3) and ``clip``, the clipping
value ``c_t`` of (6), are computed once per step in float64 by ``ADOPTAlgorithm.step_scalars``
(``clip`` rounded to the arrays' dtype). The operations and their order are optax's
``scale_by_adopt``; the first step is the authors' package's.
"""

import numpy as np

from .._checks import require_lengths


def adopt_update(
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
    eps,
    lr,
    first_step: bool,
    clip,
    num_threads: int,
) -> None:
    """One ADOPT step, in place on ``param`` and the moment arrays.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("adopt_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if first_step:
        exp_avg_sq[:] = d * d                                                        # (3)
        return
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (4)
    root = np.sqrt(exp_avg_sq)
    u = d / np.where(root < eps, eps, root)                                          # (5) NaN-propagating maximum
    u = np.where(u > clip, clip, np.where(u < -clip, -clip, u))                      # (6) NaN passes through
    exp_avg[:] = beta1 * exp_avg + one_minus_beta1 * u                               # (7)
    param[:] = param - lr * exp_avg                                                  # (8)
    exp_avg_sq[:] = beta2 * exp_avg_sq + one_minus_beta2 * (d * d)                   # (9)
