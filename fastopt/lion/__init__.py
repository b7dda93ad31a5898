r"""Lion: step by the sign of an interpolated momentum, the same size for every weight.

The update, for each step (tags are used in ``reference.py``, ``_numba.py`` and ``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  theta'_{t-1} = theta_{t-1} * (1 - eta * lambda)      # decoupled weight decay, as AdamW
    (3)  c_t = sign(beta1 * m_{t-1} + (1 - beta1) * d_t)       # the direction: +1, -1 or 0 per weight
    (4)  theta_t = theta'_{t-1} - eta * c_t
    (5)  m_t = beta2 * m_{t-1} + (1 - beta2) * d_t             # momentum, m_0 = 0, updated AFTER the step

Lion ("EvoLved Sign Momentum") was found by a program search over update rules [1]_. Every weight
moves by exactly ``eta`` (or not at all) each step, whatever the gradient's scale: the sign does
the normalisation that Adam's ``sqrt(v)`` does, with no second moment to store (one buffer, half
Adam's memory) and no eps. Two decays play two roles: the direction interpolates between the
momentum and the current gradient with ``beta1`` (3), while the momentum itself forgets with the
slower ``beta2`` (5), and is updated only after it was used. Because each step is as large as
the largest, Lion needs a learning rate 3-10 times smaller than AdamW's and, to keep the same
effective decay ``eta * lambda``, a weight decay 3-10 times larger [1]_. There is no step counter
and no bias correction. ``1 - beta1``, ``1 - beta2`` and ``1 - eta * lambda`` are computed once
per step in float64 and cast to the arrays' dtype.

``sign`` is NumPy's rule, written out in the loops: ``sign(x) = 1`` for ``x > 0``, ``-1`` for
``x < 0``, ``0`` for either zero (``+0.0``, also for ``-0.0``), and NaN stays NaN, so a NaN in the
momentum or the gradient reaches the weight as IEEE arithmetic would carry it. ``torch.sign``
(lion-pytorch) maps NaN to 0 instead and would leave that weight unchanged.

Symbols
-------
===========  ==============  ===============  ==================  =================
fastopt      paper           lion-pytorch     Keras 3             optax
===========  ==============  ===============  ==================  =================
``lr``       eta             ``lr``           ``learning_rate``   ``learning_rate``
``betas``    beta1, beta2    ``betas``        ``beta_1, beta_2``  ``b1, b2``
``exp_avg``  m               ``exp_avg``      ``momentum``        ``mu``
===========  ==============  ===============  ==================  =================

Defaults and conventions
------------------------
lion-pytorch's: ``lr=1e-4``, ``betas=(0.9, 0.99)`` (the paper's), ``weight_decay=0``, decoupled
and multiplied by the current learning rate, applied before the sign step (2) as in the paper,
lion-pytorch and Keras. torch.optim has no Lion. Keras's learning rate is 1e-3; optax's weight
decay is 1e-3 and adds ``lambda * theta`` to the sign before scaling by ``-eta`` (the same
mathematics, rounded in another order). ``maximize`` (not in lion-pytorch) negates the gradient
first, as in every fastopt optimizer. Validation uses torch.optim's conditions and messages:
``lr >= 0`` and betas in [0, 1) (lion-pytorch asserts ``lr > 0`` and accepts ``beta = 1``);
lion-pytorch's ``decoupled_weight_decay`` option (decay divided by the initial lr) is not offered.

Conventions: Lion's arithmetic is the same in lion-pytorch, Keras and optax (up to the order of
rounding of optax's decay), so ``convention="keras"`` only sets Keras's ``lr=1e-3`` and
``convention="optax"`` optax's ``weight_decay=1e-3`` (it has no default learning rate). torch.optim
has no Lion.

References
----------
.. [1] X. Chen, C. Liang, D. Huang, E. Real, K. Wang, H. Pham, X. Dong, T. Luong,
       C.-J. Hsieh, Y. Lu, Q. V. Le. "Symbolic Discovery of Optimization Algorithms." NeurIPS 2023,
       arXiv:2302.06675 (Program 1).
.. [2] P. Wang (lucidrains). lion-pytorch 0.2.5, GitHub lucidrains/lion-pytorch,
       ``lion_pytorch/lion_pytorch.py``.
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_betas, check_flag, check_lr, check_weight_decay

__all__ = ["Lion", "LionAlgorithm"]


class LionAlgorithm(Algorithm):
    """Lion's rules, for ``fastopt.Lion`` and ``fastopt.torch.Lion``; the maths is in
    :mod:`fastopt.lion`."""

    kernel = "lion"
    buffers = ("exp_avg",)
    counters = ()  # no step counter, as lion-pytorch
    required = ("exp_avg",)

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's conditions and messages (as for Adam)."""
        check_lr(group["lr"])
        check_betas(group["betas"])
        check_weight_decay(group["weight_decay"])
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("exp_avg",)

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        cast = dtype.type
        beta1, beta2 = group["betas"]
        return (
            bool(group["maximize"]),
            cast(1.0 - group["lr"] * group["weight_decay"]),                           # (2)
            cast(beta1),
            cast(1.0 - beta1),
            cast(group["lr"]),
            cast(beta2),
            cast(1.0 - beta2),
        )


class Lion(Optimizer):
    """Lion (sign momentum); the maths is in :mod:`fastopt.lion`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-4
        Learning rate ``eta``: the size of every step (4).
    betas : (float, float), default (0.9, 0.99)
        ``beta1`` interpolates the direction (3), ``beta2`` decays the momentum (5); each in [0, 1).
    weight_decay : float, default 0
        ``lambda``: each step multiplies the weights by ``1 - lr * weight_decay`` (2).
    maximize : bool, default False
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly
        (the frameworks this optimizer has no preset for are refused, with the reason).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``exp_avg``, created on the parameter's first step (no step counter, as
    lion-pytorch).
    """

    name = "lion"
    algorithm = LionAlgorithm()
    conventions = {
        "keras": dict(lr=1e-3, betas=(0.9, 0.99)),
        "optax": dict(betas=(0.9, 0.99), weight_decay=1e-3),
    }
    not_offered = {"torch": "torch.optim has no Lion (fastopt's defaults are lion-pytorch's)"}

    def __init__(
        self,
        params,
        lr: float = 1e-4,
        betas: tuple[float, float] = (0.9, 0.99),
        weight_decay: float = 0.0,
        maximize: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
