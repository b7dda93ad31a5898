"""Lion, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(5) are in :mod:`fastopt.lion`; ``decay_factor`` is ``1 - eta * lambda``, computed
by the caller. ``np.sign`` is the rule the loops write out: 1, -1, 0 for either zero, NaN for NaN.
"""

import numpy as np

from .._checks import require_lengths


def lion_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    maximize: bool,
    decay_factor,
    beta1,
    one_minus_beta1,
    lr,
    beta2,
    one_minus_beta2,
    num_threads: int,
) -> None:
    """One Lion step, in place on ``param`` and ``exp_avg``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("lion_update", param, "grad exp_avg", (grad, exp_avg))
    d = -grad if maximize else grad                                                  # (1)
    p = param * decay_factor                                                         # (2)
    c = np.sign(beta1 * exp_avg + one_minus_beta1 * d)                               # (3)
    param[:] = p - lr * c                                                            # (4)
    exp_avg[:] = beta2 * exp_avg + one_minus_beta2 * d                               # (5)
