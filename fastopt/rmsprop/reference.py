"""RMSprop, NumPy reference: the specification the Numba and Cython twins must match bit for bit.

Equations (1)-(8) are in :mod:`fastopt.rmsprop`; ``decay_factor`` is ``1 - eta * lambda`` (1 unless
the weight decay is decoupled), computed by the optimizer's algorithm (``python -m fastopt show`` prints how).
"""

import numpy as np

from .._checks import require_lengths


def rmsprop_update(
    param: np.ndarray,
    grad: np.ndarray,
    square_avg: np.ndarray,
    grad_avg: np.ndarray,
    momentum_buffer: np.ndarray,
    maximize: bool,
    weight_decay,
    decay_factor,
    rho,
    one_minus_rho,
    centered: bool,
    eps_inside_sqrt: bool,
    eps,
    momentum,
    lr_in_momentum: bool,
    lr,
    num_threads: int,
) -> None:
    """One RMSprop step, in place on ``param`` and the state arrays the options use.

    ``num_threads`` is unused: NumPy evaluates each expression on one thread. It is there so
    that the three kernels share one signature.
    """
    # every array this step touches has param's length (NumPy would broadcast a length-1 array)
    require_lengths("rmsprop_update", param, "grad square_avg", (grad, square_avg))
    if centered:
        require_lengths("rmsprop_update", param, "grad_avg", (grad_avg,))
    if momentum > 0:
        require_lengths("rmsprop_update", param, "momentum_buffer", (momentum_buffer,))
    d = -grad if maximize else grad                                                  # (1)
    if weight_decay != 0:
        d = d + weight_decay * param                                                 # (2)
    if decay_factor != 1:
        param[:] = param * decay_factor                                              # (2)
    square_avg[:] = rho * square_avg + one_minus_rho * d * d                         # (3)
    if centered:
        grad_avg[:] = rho * grad_avg + one_minus_rho * d                             # (4)
        w = square_avg - grad_avg * grad_avg                                         # (5)
    else:
        w = square_avg                                                               # (5)
    if eps_inside_sqrt:
        avg = np.sqrt(w + eps)                                                       # (6)
    else:
        avg = np.sqrt(w) + eps                                                       # (6)
    if momentum > 0:
        if lr_in_momentum:
            momentum_buffer[:] = momentum * momentum_buffer + lr * d / avg           # (7)
            param[:] = param - momentum_buffer                                       # (7)
        else:
            momentum_buffer[:] = momentum * momentum_buffer + d / avg                # (7)
            param[:] = param - lr * momentum_buffer                                  # (7)
    else:
        param[:] = param - lr * d / avg                                              # (8)
