r"""SGD: stochastic gradient descent, with optional (Nesterov) momentum.

The update, for step :math:`t \ge 1` with gradient :math:`g_t` (tags are used in all three
implementations, ``reference.py``, ``_numba.py`` and ``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t         # direction of steepest descent (or ascent)
    (2)  d_t = d_t + lambda * theta_{t-1}        # L2 weight decay, if lambda != 0 (torch)
         theta_{t-1} = theta_{t-1} * (1 - eta * lambda)    # instead, with decoupled_weight_decay (Keras)
    (3)  b_t = d_t                               # first step with momentum (mu != 0)
         b_t = mu * b_{t-1} + (1 - tau) * d_t    # later steps with momentum
    (4)  d_t = d_t + mu * b_t                    # Nesterov, if mu != 0
         d_t = b_t                               # otherwise, if mu != 0
    (5)  theta_t = theta_{t-1} - eta * d_t

Symbols
-------
===================  ======  =====================  =======================  =======================
fastopt              paper   torch.optim            Keras 3                  optax
===================  ======  =====================  =======================  =======================
``lr``               eta     ``lr``                 ``learning_rate``        ``learning_rate``
``momentum``         mu      ``momentum``           ``momentum``             ``momentum``
``dampening``        tau     ``dampening``          (none)                   (none)
``weight_decay``     lambda  ``weight_decay`` (L2)  decoupled, in the base   ``add_decayed_weights``
``momentum_buffer``  b       ``momentum_buffer``    ``momentum`` (velocity)  ``trace``
===================  ======  =====================  =======================  =======================

Defaults and conventions
------------------------
fastopt follows torch.optim's for-loop implementation exactly: ``lr=1e-3`` (Keras uses 0.01,
optax has no default), no momentum. Two details are easy to miss:

* the buffer's **first** value is the direction itself, without the ``(1 - tau)`` factor (3), so
  dampening only acts from the second step on (torch keeps this for backward compatibility);
* the buffer is not scaled by the learning rate, so changing ``lr`` mid-training rescales the whole
  step at once. Keras keeps an lr-scaled "velocity" ``v = mu*v - lr*g`` instead; with a constant
  lr and no dampening the two give the same trajectory.

``maximize`` negates the gradient before anything else (1), so weight decay still shrinks the
weights when maximizing.

``decoupled_weight_decay=True`` makes ``weight_decay`` shrink the weights by ``1 - eta * lambda``
before the step (2), as Keras's ``weight_decay`` does; ``convention="keras"`` sets it with Keras's
``lr=0.01``. ``convention="optax"`` is torch's arithmetic (optax's ``sgd`` keeps its ``trace``
from zeros without dampening, which is torch's buffer; optax has no default learning rate and no
weight decay here). Not reproduced: Keras's lr-scaled velocity, which differs from torch's
buffer only when the learning rate changes between steps.

References
----------
.. [1] H. Robbins, S. Monro. "A Stochastic Approximation Method." Ann. Math. Statist., 1951.
.. [2] B. T. Polyak. "Some methods of speeding up the convergence of iteration methods." USSR
       Computational Mathematics and Mathematical Physics 4(5), 1964 (heavy-ball momentum).
.. [3] I. Sutskever, J. Martens, G. Dahl, G. Hinton. "On the importance of initialization and
       momentum in deep learning." ICML 2013 (the Nesterov form used here).
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_flag, check_lr, check_momentum, check_real, check_weight_decay

__all__ = ["SGD", "SGDAlgorithm"]


class SGDAlgorithm(Algorithm):
    """SGD's rules, for ``fastopt.SGD`` and ``fastopt.torch.SGD``; the maths is in :mod:`fastopt.sgd`."""

    kernel = "sgd"
    buffers = ("momentum_buffer",)
    counters = ()  # SGD keeps no step counter
    required = ()
    flag_defaults = {"decoupled_weight_decay": False}

    def check(self, group: dict[str, Any]) -> None:
        check_lr(group["lr"])
        check_momentum(group["momentum"])
        check_weight_decay(group["weight_decay"])
        check_real("dampening", group["dampening"])  # torch does not range-check dampening
        check_flag("nesterov", group["nesterov"])
        check_flag("maximize", group["maximize"])
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("momentum_buffer" if group["momentum"] != 0 else None,)

    def advance(self, group, counters, created) -> bool:
        # (3): torch creates the buffer whenever it is missing, holding d_t itself
        return "momentum_buffer" in created  # first_step

    def scalars(self, group: dict[str, Any], first_step: bool, dtype) -> tuple:
        cast = dtype.type
        return (
            bool(group["maximize"]),
            *weight_decay_scalars(group, dtype),
            cast(group["momentum"]),
            first_step,
            cast(1.0 - group["dampening"]),
            bool(group["nesterov"]),
            cast(group["lr"]),
        )


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum; the maths is in :mod:`fastopt.sgd`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta`` (5).
    momentum : float, default 0
        Momentum factor ``mu`` (3); 0 disables the buffer.
    dampening : float, default 0
        ``tau`` in (3); not applied on the first step.
    weight_decay : float, default 0
        L2 penalty ``lambda`` (2), added to the gradient.
    nesterov : bool, default False
        Nesterov momentum (4); needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Ascend instead of descend (1).
    decoupled_weight_decay : bool, default False
        Weight decay shrinks the weights by ``1 - lr * weight_decay`` before the step (2): Keras.
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly.
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``momentum_buffer`` (only with momentum).
    """

    name = "sgd"
    algorithm = SGDAlgorithm()
    conventions = {
        "torch": dict(lr=1e-3, decoupled_weight_decay=False),
        "keras": dict(lr=1e-2, decoupled_weight_decay=True),
        "optax": dict(decoupled_weight_decay=False),
    }

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        """torch.optim's rules; under ``convention="keras"`` also Keras's ``nesterov=True`` at
        momentum 0 (its default), which Keras steps as plain SGD: so does the kernel, whose
        Nesterov line (4) is inside the momentum branch."""
        if self.convention == "keras" and group["nesterov"] and group["momentum"] == 0 and group["dampening"] == 0:
            group = {**group, "nesterov": False}
        super().check_hyperparameters(group)

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
        maximize: bool = False,
        *,
        decoupled_weight_decay: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
