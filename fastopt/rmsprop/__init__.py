r"""RMSprop: divide the step by a running root-mean-square of recent gradients.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}               # L2 weight decay, if lambda != 0
    (3)  v_t = rho * v_{t-1} + (1 - rho) * d_t * d_t    # decaying mean of squares, v_0 = 0
    (4)  gbar_t = rho * gbar_{t-1} + (1 - rho) * d_t    # centered only: mean gradient, gbar_0 = 0
    (5)  s_t = sqrt(v_t - gbar_t * gbar_t)              # centered
         s_t = sqrt(v_t)                                # otherwise
    (6)  s_t = s_t + eps                                # eps OUTSIDE the root (torch)
    (7)  b_t = mu * b_{t-1} + d_t / s_t                 # if mu > 0 (b_0 = 0), then
         theta_t = theta_{t-1} - eta * b_t
    (8)  theta_t = theta_{t-1} - eta * d_t / s_t        # if mu = 0

Where Adagrad's sum (see :mod:`fastopt.adagrad`) only grows, ``v_t`` forgets: a gradient seen
``k`` steps ago weighs ``rho**k``, so the average covers roughly the last ``1 / (1 - rho)`` steps
(10 for the default ``rho = 0.9``) and the effective learning rate ``eta / (sqrt(v_t) + eps)``
tracks the current gradient scale instead of decaying to zero.

Symbols
-------
===================  =======  ===================  ====================  =================
fastopt              paper    torch.optim          Keras 3               optax
===================  =======  ===================  ====================  =================
``lr``               eta      ``lr``               ``learning_rate``     ``learning_rate``
``rho``              rho      ``alpha``            ``rho``               ``decay``
``eps``              epsilon  ``eps``              ``epsilon``           ``eps``
``momentum``         mu       ``momentum``         ``momentum``          ``momentum``
``square_avg``       v        ``square_avg``       ``velocity``          ``nu``
``grad_avg``         gbar     ``grad_avg``         ``average_gradient``  ``mu``
``momentum_buffer``  b        ``momentum_buffer``  ``momentum``          ``trace``
===================  =======  ===================  ====================  =================

Defaults and conventions
------------------------
The arithmetic is torch.optim's for-loop implementation, with one deliberate difference of
naming: the decay is called ``rho`` and defaults to **0.9**, as in Hinton's lecture, Keras and
TensorFlow (torch calls it ``alpha`` and defaults to 0.99, a memory of ~100 steps). ``lr=1e-3``
and ``eps=1e-8``. eps is added **outside** the square root (6), also in centered mode; Keras and
optax (by default) add it inside, ``sqrt(v + eps)``, which matters when ``v`` is tiny. The momentum
buffer holds ``d / s`` without the learning rate (torch); TensorFlow and optax keep lr-scaled steps
in it. In centered mode ``v - gbar^2`` is not clamped: rounding can make it slightly negative and
the square root then gives NaN, exactly as in torch.

References
----------
.. [1] G. Hinton, N. Srivastava, K. Swersky. "Neural Networks for Machine Learning", Coursera,
       lecture 6e: "rmsprop: Divide the gradient by a running average of its recent magnitude",
       2012.
.. [2] A. Graves. "Generating Sequences With Recurrent Neural Networks." arXiv:1308.0850, 2013
       (the centered variant, eq. 38-45).
"""

from __future__ import annotations

from typing import Any

from .._optimizer import Optimizer
from .._validation import (
    check_eps,
    check_flag,
    check_lr,
    check_momentum,
    check_unit_interval,
    check_weight_decay,
)

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """RMSprop; the maths is in :mod:`fastopt.rmsprop`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta``.
    rho : float in [0, 1), default 0.9
        Decay of the mean of squares (3) (torch's ``alpha``).
    eps : float, default 1e-8
        Added outside the square root (6).
    weight_decay : float, default 0
        L2 penalty ``lambda`` (2).
    momentum : float, default 0
        ``mu`` in (7); 0 disables the buffer.
    centered : bool, default False
        Normalise by an estimate of the gradient's variance (4)-(5).
    maximize : bool, default False
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``square_avg``, ``momentum_buffer`` (with momentum) and
    ``grad_avg`` (centered), created on the parameter's first step.
    """

    name = "rmsprop"
    state_keys = ("step", "square_avg", "momentum_buffer", "grad_avg")
    required_state_keys = ("step", "square_avg")

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
        maximize: bool = False,
        backend: str = "auto",
    ) -> None:
        defaults = dict(
            lr=lr,
            rho=rho,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
            maximize=maximize,
        )
        super().__init__(params, defaults, backend)

    @staticmethod
    def check_hyperparameters(group: dict[str, Any]) -> None:
        check_lr(group["lr"])
        check_eps(group["eps"])
        check_momentum(group["momentum"])
        check_weight_decay(group["weight_decay"])
        check_unit_interval("rho", group["rho"], f"Invalid rho value: {group['rho']}")
        check_flag("centered", group["centered"])
        check_flag("maximize", group["maximize"])

    def _init_state(self, param, group):
        return {"step": 0, "square_avg": self._zeros_like(param)}

    def _begin_step(self, param, state, group):
        # Optional buffers are created when first needed, also if the option is switched on later
        # (torch raises KeyError then); a fresh buffer starts at zero, as on a first step.
        if group["momentum"] > 0 and "momentum_buffer" not in state:
            state["momentum_buffer"] = self._zeros_like(param)
        if group["centered"] and "grad_avg" not in state:
            state["grad_avg"] = self._zeros_like(param)
        state["step"] += 1  # t is not used by the update; kept for torch's state layout
        return None  # the scalars do not change from step to step

    def _kernel_slots(self, group):
        return (
            "square_avg",
            "grad_avg" if group["centered"] else None,
            "momentum_buffer" if group["momentum"] > 0 else None,
        )

    def _kernel_scalars(self, group, key, dtype):
        cast = dtype.type
        return (
            bool(group["maximize"]),
            cast(group["weight_decay"]),
            cast(group["rho"]),
            cast(1.0 - group["rho"]),
            bool(group["centered"]),
            cast(group["eps"]),
            cast(group["momentum"]),
            cast(group["lr"]),
        )
