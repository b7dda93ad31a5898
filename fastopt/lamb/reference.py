"""LAMB, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(9) are in :mod:`fastopt.lamb`. Every element-wise operation is in the arrays'
dtype, in optax's order; the two norms of (7) follow :mod:`fastopt._sums` (float64, 8 lanes along
the flattened tensor), and the trust ratio and the step of (8)-(9) are float64 arithmetic on them,
the step rounded once to the arrays' dtype.
"""

import math

import numpy as np

from .. import _sums
from .._checks import require_lengths

_FLOAT32_MAX = float(np.finfo(np.float32).max)


def lamb_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    maximize: bool,
    beta1,
    one_minus_beta1,
    beta2,
    one_minus_beta2,
    eps,
    eps_root,
    weight_decay,
    lr: float,
    bias_correction1,
    bias_correction2,
    num_threads: int,
) -> None:
    """One LAMB step of one parameter, in place on ``param``, ``exp_avg`` and ``exp_avg_sq``.

    ``num_threads`` is unused: a whole-tensor step is one thread in every twin (its norms then
    never depend on the thread count). It is there so that the three kernels share one signature.
    """
    require_lengths("lamb_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    if param.shape[0] == 0:
        return
    g = -grad if maximize else grad                                                  # (1)
    exp_avg[:] = one_minus_beta1 * g + beta1 * exp_avg                               # (2)
    exp_avg_sq[:] = one_minus_beta2 * (g * g) + beta2 * exp_avg_sq                   # (3)
    u = (exp_avg / bias_correction1) / (np.sqrt(exp_avg_sq / bias_correction2 + eps_root) + eps)  # (4), (5)
    if weight_decay != 0:
        u = u + weight_decay * param                                                 # (6)
    param_norm = math.sqrt(_sums.total(_sums.squares(param)))                        # (7)
    update_norm = math.sqrt(_sums.total(_sums.squares(u)))
    ratio = 1.0 if (param_norm == 0.0 or update_norm == 0.0) else param_norm / update_norm  # (8), optax's rule
    step = -(lr * ratio)
    if abs(step) > _FLOAT32_MAX and param.dtype == np.float32:  # a huge lr: -inf, as the compiled twins' cast
        with np.errstate(over="ignore"):  # (only here: np.errstate on every step would cost time and memory)
            step = np.float32(step)
    step = param.dtype.type(step)
    param[:] = param + step * u                                                      # (9)
