r"""RMSprop: divide the step by a running root-mean-square of recent gradients.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}               # L2 weight decay, if lambda != 0 (torch)
         theta_{t-1} = theta_{t-1} * (1 - eta * lambda)    # instead, with decoupled_weight_decay (Keras)
    (3)  v_t = rho * v_{t-1} + (1 - rho) * d_t * d_t    # decaying mean of squares, v_0 = 0
    (4)  gbar_t = rho * gbar_{t-1} + (1 - rho) * d_t    # centered only: mean gradient, gbar_0 = 0
    (5)  w_t = v_t - gbar_t * gbar_t                    # centered
         w_t = v_t                                      # otherwise
    (6)  s_t = sqrt(w_t) + eps                          # eps OUTSIDE the root (torch)
         s_t = sqrt(w_t + eps)                          # eps INSIDE, with eps_inside_sqrt (Keras, optax)
    (7)  b_t = mu * b_{t-1} + d_t / s_t                 # if mu > 0 (b_0 = 0), then (torch)
         theta_t = theta_{t-1} - eta * b_t
         b_t = mu * b_{t-1} + eta * d_t / s_t           # instead, with lr_in_momentum (Keras, optax), then
         theta_t = theta_{t-1} - b_t
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
and ``eps=1e-8``. In centered mode ``w_t = v - gbar^2`` is not clamped: rounding can make it
slightly negative and the square root then gives NaN, exactly as in torch.

The same name means other arithmetic elsewhere, and three flags reproduce it:

* ``eps_inside_sqrt`` (6): torch adds eps **outside** the square root, ``sqrt(v) + eps``; Keras,
  TensorFlow and optax (``eps_in_sqrt=True``, its default) add it **inside**, ``sqrt(v + eps)``.
  This matters where ``v`` is tiny: eps = 1e-8 outside bounds the step by ``eta * |d| / 1e-8``,
  inside by ``eta * |d| / 1e-4``.
* ``lr_in_momentum`` (7): torch's buffer holds ``d / s`` and the step is ``eta * b``; Keras,
  TensorFlow (``ApplyRMSProp``) and optax (``trace`` after the learning rate) keep lr-scaled steps,
  ``b = mu * b + eta * d / s``. With a constant ``eta`` the two are the same trajectory (up to
  rounding); under a schedule a change of ``eta`` acts at once in torch and only gradually in Keras.
* ``decoupled_weight_decay`` (2): Keras's ``weight_decay`` shrinks the weights by
  ``1 - eta * lambda`` before the step (every Keras optimizer does); torch's is an L2 term.

``convention="keras"`` sets all three and Keras's defaults (``lr=1e-3``, ``rho=0.9``,
``eps=1e-7``); ``convention="optax"`` sets the first two and optax's (``rho=0.9``, ``eps=1e-8``;
optax has no default learning rate, so fastopt's is kept); ``convention="torch"`` gives torch's
defaults, ``lr=1e-2`` and ``rho=0.99``. Explicit arguments override a preset. Not reproduced:
optax's ``bias_correction`` and ``initial_scale`` options (off by default there) and its
``nesterov`` trace. ``maximize`` exists in torch only.

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

from .._engine import Algorithm, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import (
    check_eps,
    check_flag,
    check_lr,
    check_momentum,
    check_unit_interval,
    check_weight_decay,
)

__all__ = ["RMSprop", "RMSpropAlgorithm"]

FLAGS = ("eps_inside_sqrt", "lr_in_momentum", "decoupled_weight_decay")


class RMSpropAlgorithm(Algorithm):
    """RMSprop's rules, for ``fastopt.RMSprop`` and ``fastopt.torch.RMSprop`` (whose ``alpha`` is
    ``rho`` here); the maths is in :mod:`fastopt.rmsprop`."""

    kernel = "rmsprop"
    buffers = ("square_avg", "momentum_buffer", "grad_avg")
    # its step counter counts steps for torch's state layout; the update does not use it
    required = ("step", "square_avg")
    flag_defaults = dict.fromkeys(FLAGS, False)

    def check(self, group: dict[str, Any]) -> None:
        check_lr(group["lr"])
        check_eps(group["eps"])
        check_momentum(group["momentum"])
        check_weight_decay(group["weight_decay"])
        check_unit_interval("rho", group["rho"], f"Invalid rho value: {group['rho']}")
        check_flag("centered", group["centered"])
        check_flag("maximize", group["maximize"])
        for flag in FLAGS:
            check_flag(flag, group[flag])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        # Optional buffers are created when first needed, also if the option is switched on later
        # (torch raises KeyError then); a fresh buffer starts at zero, as on a first step.
        return (
            "square_avg",
            "grad_avg" if group["centered"] else None,
            "momentum_buffer" if group["momentum"] > 0 else None,
        )

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        cast = dtype.type
        return (
            bool(group["maximize"]),
            *weight_decay_scalars(group, dtype),
            cast(group["rho"]),
            cast(1.0 - group["rho"]),
            bool(group["centered"]),
            bool(group["eps_inside_sqrt"]),
            cast(group["eps"]),
            cast(group["momentum"]),
            bool(group["lr_in_momentum"]),
            cast(group["lr"]),
        )


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
        Added outside the square root (6), or inside with ``eps_inside_sqrt``.
    weight_decay : float, default 0
        ``lambda`` (2): an L2 penalty added to the gradient, or with ``decoupled_weight_decay`` a
        decay of the weights by ``1 - lr * weight_decay`` per step.
    momentum : float, default 0
        ``mu`` in (7); 0 disables the buffer.
    centered : bool, default False
        Normalise by an estimate of the gradient's variance (4)-(5).
    maximize : bool, default False
    eps_inside_sqrt : bool, default False
        ``sqrt(v + eps)`` instead of ``sqrt(v) + eps`` (6): Keras, TensorFlow, optax.
    lr_in_momentum : bool, default False
        The momentum buffer holds lr-scaled steps (7): Keras, TensorFlow, optax.
    decoupled_weight_decay : bool, default False
        Weight decay shrinks the weights before the step (2): Keras.
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly.
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``square_avg``, ``momentum_buffer`` (with momentum) and
    ``grad_avg`` (centered), created on the parameter's first step.
    """

    name = "rmsprop"
    algorithm = RMSpropAlgorithm()
    conventions = {
        "torch": dict(lr=1e-2, rho=0.99, eps=1e-8, **RMSpropAlgorithm.flag_defaults),
        "keras": dict(lr=1e-3, rho=0.9, eps=1e-7, eps_inside_sqrt=True, lr_in_momentum=True, decoupled_weight_decay=True),
        "optax": dict(rho=0.9, eps=1e-8, eps_inside_sqrt=True, lr_in_momentum=True, decoupled_weight_decay=False),
    }

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
        *,
        eps_inside_sqrt: bool = False,
        lr_in_momentum: bool = False,
        decoupled_weight_decay: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
