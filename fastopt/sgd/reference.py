"""SGD, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(5) are in :mod:`fastopt.sgd`. Every scalar arrives already in the arrays' dtype, so
each expression is evaluated in that precision, one rounding per operation, left to right.
"""

import numpy as np

from .._checks import require_lengths


def sgd_update(
    param: np.ndarray,
    grad: np.ndarray,
    momentum_buffer: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    momentum,
    first_step: bool,
    one_minus_dampening,
    nesterov: bool,
    lr,
    num_threads: int,
) -> None:
    """One SGD step, in place on ``param`` (and ``momentum_buffer`` when ``momentum != 0``).

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("sgd_update", param, "grad", (grad,))
    if momentum != 0:
        require_lengths("sgd_update", param, "momentum_buffer", (momentum_buffer,))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    if momentum != 0:
        if first_step:
            momentum_buffer[:] = d                                                   # (3)
        else:
            momentum_buffer[:] = momentum * momentum_buffer + one_minus_dampening * d  # (3)
        if nesterov:
            d = d + momentum * momentum_buffer                                       # (4)
        else:
            d = momentum_buffer                                                      # (4)
    param[:] = param - lr * d                                                        # (5)
