r"""Adadelta: a step whose size is the ratio of two running root-mean-squares, with no learning rate needed.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}                        # L2 weight decay, if lambda != 0 (torch, optax)
         theta_{t-1} = theta_{t-1} * (1 - eta * lambda)          # instead, with decoupled_weight_decay (Keras)
    (3)  v_t = rho * v_{t-1} + (1 - rho) * d_t * d_t             # decaying mean of squared gradients, v_0 = 0
    (4)  s_t = sqrt(v_t + eps)                                   # RMS[g]_t: eps INSIDE the root
    (5)  delta_t = sqrt(u_{t-1} + eps) / s_t * d_t               # RMS[delta]_{t-1} / RMS[g]_t * d_t
    (6)  u_t = rho * u_{t-1} + (1 - rho) * delta_t * delta_t     # decaying mean of squared steps, u_0 = 0
    (7)  theta_t = theta_{t-1} - eta * delta_t

Adadelta [1]_ starts from Adagrad (see :mod:`fastopt.adagrad`) and fixes its two weaknesses: the
sum of squares is replaced by RMSprop's decaying mean (3), so the step does not shrink to zero,
and the step is multiplied by the RMS of the previous **steps** (5), so that ``delta`` has the
units of ``theta`` (the paper's argument from a diagonal Newton step: ``delta ~ g / H`` and
``1/H ~ delta / g``). No learning rate is needed: ``eta = 1`` is the paper's algorithm, and
``eta`` is kept only as a multiplier (torch, Keras). The numerator uses ``u_{t-1}``, the mean
before this step's own ``delta`` is known, so eps sets the size of the first steps:
``delta_1 = sqrt(eps) / sqrt((1 - rho) * d^2 + eps) * d``, about ``sqrt(eps / (1 - rho))`` in
magnitude (0.003 with the defaults). ``1 - rho`` is computed once per step in float64 and cast
to the arrays' dtype.

Symbols
-------
==============  ======================  ==============  =========================  ==================
fastopt         paper                   torch.optim     Keras 3                    optax
==============  ======================  ==============  =========================  ==================
``lr``          eta (1 in Algorithm 1)  ``lr``          ``learning_rate``          ``learning_rate``
``rho``         rho                     ``rho``         ``rho``                    ``rho``
``eps``         epsilon                 ``eps``         ``epsilon``                ``eps``
``square_avg``  v = E[g^2]              ``square_avg``  ``accumulated_grad``       ``e_g``
``acc_delta``   u = E[delta x^2]        ``acc_delta``   ``accumulated_delta_var``  ``e_x``
``step``        t                       ``step``        ``iterations + 1``         (none)
==============  ======================  ==============  =========================  ==================

Defaults and conventions
------------------------
torch.optim's: ``lr=1.0``, ``rho=0.9``, ``eps=1e-6``, ``weight_decay=0``. Keras uses
``learning_rate=0.001`` (so its Adadelta moves a thousand times less per step), ``rho=0.95`` (the
paper's value) and ``epsilon=1e-7``; optax ``learning_rate=None`` (no scaling at all). The three
libraries put eps **inside** both roots, as the paper does. ``rho`` may be 1 here, as in torch
(both means then stay zero and every step is ``sqrt(eps) / sqrt(eps) * d = d``: plain SGD).
Weight decay is an L2 term added to the gradient (2) (torch); Keras decays the weights directly,
and optax adds ``lambda * theta`` before its Adadelta scaling, which acts like L2 here. The step
counter ``t`` is not used by the update; it is kept for torch's state layout.

``decoupled_weight_decay=True`` reproduces Keras's decay of the weights before the step (2);
``convention="keras"`` sets it with Keras's ``lr=0.001``, ``rho=0.95`` and ``eps=1e-7``.
``convention="optax"`` is torch's arithmetic and defaults (``rho=0.9``, ``eps=1e-6``, lr 1): optax's
default ``learning_rate=None`` skips the scaling by ``-lr`` altogether, so its updates are
*added* to the parameters (gradient ascent); that is not reproduced.

References
----------
.. [1] M. D. Zeiler. "ADADELTA: An Adaptive Learning Rate Method." arXiv:1212.5701, 2012
       (Algorithm 1).
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_eps, check_flag, check_lr, check_real, check_weight_decay

__all__ = ["Adadelta", "AdadeltaAlgorithm"]


class AdadeltaAlgorithm(Algorithm):
    """Adadelta's rules, for ``fastopt.Adadelta`` and ``fastopt.torch.Adadelta``; the maths is in
    :mod:`fastopt.adadelta`."""

    kernel = "adadelta"
    buffers = ("square_avg", "acc_delta")
    # its step counter counts steps for torch's state layout; the update does not use it
    required = ("step", "square_avg", "acc_delta")
    flag_defaults = {"decoupled_weight_decay": False}

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks, in torch's order (``rho = 1`` is accepted, as in torch)."""
        check_lr(group["lr"])
        check_real("rho", group["rho"])
        if not 0.0 <= group["rho"] <= 1.0:
            raise ValueError(f"Invalid rho value: {group['rho']}")
        check_eps(group["eps"])
        check_weight_decay(group["weight_decay"])
        check_flag("maximize", group["maximize"])
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("square_avg", "acc_delta")

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        cast = dtype.type
        return (
            bool(group["maximize"]),
            *weight_decay_scalars(group, dtype),
            cast(group["rho"]),
            cast(1.0 - group["rho"]),
            cast(group["eps"]),
            cast(group["lr"]),
        )


class Adadelta(Optimizer):
    """Adadelta; the maths is in :mod:`fastopt.adadelta`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1.0
        Multiplier ``eta`` of the step (7); the paper's algorithm is ``lr=1``.
    rho : float in [0, 1], default 0.9
        Decay of both running means (3) and (6).
    eps : float, default 1e-6
        Added inside both roots (4) and (5); it also sets the size of the first steps.
    weight_decay : float, default 0
        L2 penalty ``lambda`` (2), added to the gradient.
    maximize : bool, default False
    decoupled_weight_decay : bool, default False
        Weight decay shrinks the weights by ``1 - lr * weight_decay`` before the step (2): Keras.
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly.
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``square_avg`` and ``acc_delta``, created on the
    parameter's first step.
    """

    name = "adadelta"
    algorithm = AdadeltaAlgorithm()
    conventions = {
        "torch": dict(lr=1.0, rho=0.9, eps=1e-6, decoupled_weight_decay=False),
        "keras": dict(lr=1e-3, rho=0.95, eps=1e-7, decoupled_weight_decay=True),
        "optax": dict(lr=1.0, rho=0.9, eps=1e-6, decoupled_weight_decay=False),
    }

    def __init__(
        self,
        params,
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0.0,
        maximize: bool = False,
        *,
        decoupled_weight_decay: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
