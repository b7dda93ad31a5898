"""Rprop, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(7) are in :mod:`fastopt.rprop`. Only comparisons decide: ``np.where`` on ``s > 0``
and ``s < 0`` is false for NaN, which is torch's rule (``torch.sign`` maps NaN to 0), and the
clamp is written as two selects, ``min(max(x, lo), hi)`` keeping a NaN.
"""

import numpy as np

from .._checks import require_lengths


def rprop_update(
    param: np.ndarray,
    grad: np.ndarray,
    prev: np.ndarray,
    step_size: np.ndarray,
    maximize: bool,
    etaplus,
    etaminus,
    step_size_min,
    step_size_max,
    num_threads: int,
) -> None:
    """One Rprop step, in place on ``param``, ``prev`` and ``step_size``.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("rprop_update", param, "grad prev step_size", (grad, prev, step_size))
    one, zero = param.dtype.type(1.0), param.dtype.type(0.0)  # in the arrays' dtype
    d = -grad if maximize else grad                                                  # (1)
    s = d * prev                                                                     # (2)
    factor = np.where(s > 0, etaplus, np.where(s < 0, etaminus, one))                # (3)
    size = step_size * factor                                                        # (4)
    size = np.where(size < step_size_min, step_size_min, size)                       # (4)
    step_size[:] = np.where(size > step_size_max, step_size_max, size)               # (4)
    d = np.where(s < 0, zero, d)                                                     # (5)
    direction = np.where(d > 0, one, zero) - np.where(d < 0, one, zero)              # (6)
    param[:] = param - direction * step_size                                         # (6)
    prev[:] = d                                                                      # (7)
