r"""RAdam: Adam whose adaptive step is switched on only once the variance of its denominator is tractable.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}                        # L2 weight decay, if lambda != 0
         theta_{t-1} = theta_{t-1} * (1 - eta * lambda)          # instead, with decoupled_weight_decay
    (3)  m_t = beta1 * m_{t-1} + (1 - beta1) * d_t               # first moment, m_0 = 0
    (4)  v_t = beta2 * v_{t-1} + (1 - beta2) * d_t * d_t         # second moment, v_0 = 0
    (5)  m_hat_t = m_t / (1 - beta1^t)
    (6)  rho_t = rho_{\infty} - 2 * t * beta2^t / (1 - beta2^t)  # rho_inf = 2 / (1 - beta2) - 1: a scalar, one branch per step
    (7)  r_t = sqrt((rho_t - 4) * (rho_t - 2) * rho_{\infty} / ((rho_{\infty} - 4) * (rho_{\infty} - 2) * rho_t))
    (8)  theta_t = theta_{t-1} - m_hat_t * eta * (sqrt(1 - beta2^t) / (sqrt(v_t) + eps)) * r_t    # if rho_t > 5 (rectified)
         theta_t = theta_{t-1} - m_hat_t * eta                   # otherwise: SGD with (bias-corrected) momentum

Adam's denominator ``sqrt(v_hat_t)`` estimates the gradient's scale from few samples in the
first steps, and its variance is then large (infinite at t = 1 in the paper's model), which is
why Adam needs a warm-up of the learning rate. RAdam [1]_ computes the length ``rho_t`` of the
simple moving average that the exponential average ``v_t`` approximates (6); ``rho_t`` grows
from 1 towards ``rho_inf`` (1999 for ``beta2 = 0.999``). While ``rho_t <= 5`` the adaptive term
is dropped and the step is plain momentum (8, second line); after that the adaptive step is
multiplied by ``r_t`` (7), which undoes the excess variance and tends to 1 as ``t`` grows: a
warm-up derived from ``beta2`` instead of chosen by hand. With ``beta2 = 0.999`` the first five
steps are unrectified and rectification starts at ``t = 6``. ``rho_t``, ``r_t``, the bias
corrections and the branch are scalars, computed once per step in float64 by the class (the
branch is decided per step, never per element) and cast to the arrays' dtype.

Symbols
-------
==============  ==================  ==============  =================
fastopt         paper               torch.optim     optax
==============  ==================  ==============  =================
``lr``          alpha               ``lr``          ``learning_rate``
``betas``       beta1, beta2        ``betas``       ``b1, b2``
``eps``         epsilon             ``eps``         ``eps``
``exp_avg``     m                   ``exp_avg``     ``mu``
``exp_avg_sq``  v                   ``exp_avg_sq``  ``nu``
``step``        t                   ``step``        ``count``
(none)          rho_inf, rho_t, r   (local)         ``threshold`` = 5
==============  ==================  ==============  =================

Keras 3 has no RAdam.

Defaults and conventions
------------------------
torch.optim's: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``weight_decay=0`` (L2, added
to the gradient (2)) or, with ``decoupled_weight_decay=True``, AdamW's decay of the weights by
``1 - eta * lambda`` before the step. The threshold is torch's ``rho_t > 5``; the paper's
Algorithm 2 rectifies when ``rho_t > 4`` (where ``r_t`` is first defined) and optax when
``rho_t >= 5``. eps is added to the **uncorrected** root, ``sqrt(1 - beta2^t) / (sqrt(v_t) + eps)``,
as in torch; optax adds it to the corrected root, ``1 / (sqrt(v_hat_t) + eps)``, like Adam. The
rectified step multiplies in torch's order, ``((m_hat * eta) * a) * r``. The step counter ``t`` is
a Python integer.

Conventions: only ``convention="torch"`` is offered. Keras 3 has no RAdam, and optax's
(eps on the corrected root, threshold ``rho_t >= 5``) is not reproduced.

References
----------
.. [1] L. Liu, H. Jiang, P. He, W. Chen, X. Liu, J. Gao, J. Han. "On the Variance of the Adaptive
       Learning Rate and Beyond." ICLR 2020, arXiv:1908.03265 (Algorithm 2).
.. [2] D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015.
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm, moment_scalars, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_adam_family, check_flag

__all__ = ["RAdam", "RAdamAlgorithm", "rectification"]


def rectification(beta2: float, t: int) -> tuple[float, float]:
    """``(rho_t, r_t)`` of (6) and (7), in torch's float64 arithmetic (``r_t`` is NaN while
    ``rho_t <= 5``, where the update does not use it)."""
    bias_correction2 = 1 - beta2**t
    rho_inf = 2 / (1 - beta2) - 1                                                 # (6)
    rho_t = rho_inf - 2 * t * (beta2**t) / bias_correction2                       # (6)
    if not rho_t > 5.0:
        return rho_t, float("nan")
    rect = ((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5  # (7)
    return rho_t, rect


class RAdamAlgorithm(Algorithm):
    """RAdam's rules, for ``fastopt.RAdam`` and ``fastopt.torch.RAdam``; the maths is in
    :mod:`fastopt.radam`."""

    kernel = "radam"
    buffers = ("exp_avg", "exp_avg_sq")
    required = ("step", "exp_avg", "exp_avg_sq")
    flag_defaults = {"decoupled_weight_decay": False}

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks, in torch's order."""
        check_adam_family(group)
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("exp_avg", "exp_avg_sq")

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        return (bool(group["maximize"]), *weight_decay_scalars(group, dtype), *moment_scalars(group, dtype))

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """The arguments of (5)-(8) at step ``t``: the bias corrections, and whether and by how
        much the adaptive step is rectified."""
        beta1, beta2 = group["betas"]
        bias_correction1 = 1 - beta1**t                                               # (5)
        rho_t, rect = rectification(beta2, t)                                         # (6), (7)
        rectified = bool(rho_t > 5.0)                                                 # (8)
        bias_correction2_sqrt = (1 - beta2**t) ** 0.5                                 # (8)
        return bias_correction1, group["lr"], rectified, bias_correction2_sqrt, group["eps"], rect if rectified else 1.0


class RAdam(Optimizer):
    """RAdam (rectified Adam); the maths is in :mod:`fastopt.radam`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first (3) and second (4) moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the uncorrected root in (8).
    weight_decay : float, default 0
        ``lambda`` (2): an L2 penalty added to the gradient, or, with ``decoupled_weight_decay``,
        a decay of the weights by ``1 - lr * weight_decay`` per step.
    decoupled_weight_decay : bool, default False
    maximize : bool, default False
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly
        (the frameworks this optimizer has no preset for are refused, with the reason).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``exp_avg`` and ``exp_avg_sq``, created on the
    parameter's first step.
    """

    name = "radam"
    algorithm = RAdamAlgorithm()
    rectification = staticmethod(rectification)
    conventions = {
        "torch": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, decoupled_weight_decay=False),
    }
    not_offered = {
        "keras": "Keras 3 has no RAdam",
        "optax": "optax adds eps to the bias-corrected root and rectifies when rho_t >= 5; "
        "fastopt reproduces torch's placement only",
    }

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
