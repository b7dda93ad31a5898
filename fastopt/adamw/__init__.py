r"""AdamW: Adam with decoupled weight decay.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  theta'_{t-1} = theta_{t-1} * (1 - eta * lambda)    # decoupled decay, before the Adam step
    (3)  m_t = beta1 * m_{t-1} + (1 - beta1) * d_t
    (4)  v_t = beta2 * v_{t-1} + (1 - beta2) * d_t * d_t
    (5)  vmax_t = max(vmax_{t-1}, v_t)                      # AMSGrad only; vmax_t then replaces v_t in (6)
    (6)  s_t = sqrt(v_t) / sqrt(1 - beta2^t) + eps
    (7)  theta_t = theta'_{t-1} - (eta / (1 - beta1^t)) * m_t / s_t

The only difference from :mod:`fastopt.adam` is line (2). Adam's L2 term ``lambda * theta`` is
added to the gradient, so it passes through the moments and is divided by ``s_t``: weights with
large, noisy gradients are barely decayed. Here the weights shrink by the same factor
``1 - eta * lambda`` whatever their gradients, and the moments never see the decay. With
``weight_decay = 0`` AdamW and Adam are the same algorithm.

Symbols are Adam's (see :mod:`fastopt.adam`), plus ``weight_decay`` = lambda (torch
``weight_decay``; Keras ``weight_decay``; optax ``weight_decay``).

Defaults and conventions
------------------------
torch.optim's: ``weight_decay=1e-2`` (Keras 0.004, optax 1e-4), and the decay factor is multiplied
by the **current** learning rate, so a schedule scales the decay too (torch, Keras and optax
agree; the paper decouples it from eta as well, with its own schedule multiplier). The factor
``1 - eta * lambda`` is computed once per step in float64 and cast to the arrays' dtype. optax
adds ``lambda * theta`` to the Adam direction before scaling by ``-eta``: the same mathematics,
rounded in another order.

References
----------
.. [1] I. Loshchilov, F. Hutter. "Decoupled Weight Decay Regularization." ICLR 2019,
       arXiv:1711.05101 (Algorithm 2).
.. [2] D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015.
"""

from __future__ import annotations

from ..adam import Adam

__all__ = ["AdamW"]


class AdamW(Adam):
    """AdamW (decoupled weight decay); the maths is in :mod:`fastopt.adamw`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta``.
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 1e-2
        ``lambda``: each step multiplies the weights by ``1 - lr * weight_decay`` (2).
    amsgrad : bool, default False
    maximize : bool, default False
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: as :class:`fastopt.Adam`.
    """

    name = "adamw"

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize, backend)

    def _kernel_scalars(self, group, t, dtype):
        decay_factor = dtype.type(1.0 - group["lr"] * group["weight_decay"])           # (2)
        return (bool(group["maximize"]), decay_factor, *self._moment_scalars(group, t, dtype))
