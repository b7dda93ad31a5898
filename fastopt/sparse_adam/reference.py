"""SparseAdam, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(4) are in :mod:`fastopt.sparse_adam`. The arrays are the rows a sparse gradient
names, gathered by the step engine (``fastopt/_engine/rows.py``), which writes them back after
the call; ``step_size`` is ``eta * sqrt(1 - beta2^t) / (1 - beta1^t)``, computed by the
optimizer's algorithm (``python -m fastopt show`` prints how).
"""

import numpy as np

from .._checks import require_lengths


def sparse_adam_update(
    param: np.ndarray,
    grad: np.ndarray,
    exp_avg: np.ndarray,
    exp_avg_sq: np.ndarray,
    maximize: bool,
    one_minus_beta1,
    one_minus_beta2,
    eps,
    step_size,
    num_threads: int,
) -> None:
    """One SparseAdam step on gathered rows, in place on ``param``, ``exp_avg`` and ``exp_avg_sq``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("sparse_adam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))
    d = -grad if maximize else grad                                                  # (1)
    exp_avg[:] = exp_avg + (d - exp_avg) * one_minus_beta1                           # (2)
    exp_avg_sq[:] = exp_avg_sq + (d * d - exp_avg_sq) * one_minus_beta2              # (3)
    param[:] = param - step_size * (exp_avg / (np.sqrt(exp_avg_sq) + eps))           # (4)
