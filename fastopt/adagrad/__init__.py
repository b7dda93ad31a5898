r"""Adagrad: a learning rate per parameter, from the sum of its squared gradients.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}               # L2 weight decay, if lambda != 0 (torch)
         theta_{t-1} = theta_{t-1} * (1 - eta * lambda)    # instead, with decoupled_weight_decay (Keras)
    (3)  eta_t = eta / (1 + (t - 1) * kappa)            # learning-rate decay (a scalar, float64)
    (4)  G_t = G_{t-1} + d_t * d_t                      # sum of squares, G_0 = initial_accumulator_value
    (5)  s_t = sqrt(G_t) + eps                          # eps OUTSIDE the root (torch)
         s_t = sqrt(G_t + eps)                          # eps INSIDE, with eps_inside_sqrt (Keras, optax)
    (6)  theta_t = theta_{t-1} - eta_t * d_t / s_t

The effective per-parameter learning rate is ``eta_t / (sqrt(G_t) + eps)``. ``G_t`` only grows,
so on a long run the effective rate decays towards zero: Adagrad's famous flaw, which RMSprop
fixes by replacing the sum with a decaying average (see :mod:`fastopt.rmsprop`).

Symbols
-------
=============================  =======  =============================  =============================  =============================
fastopt                        paper    torch.optim                    Keras 3                        optax
=============================  =======  =============================  =============================  =============================
``lr``                         eta      ``lr``                         ``learning_rate``              ``learning_rate``
``lr_decay``                   kappa    ``lr_decay``                   (none)                         (none)
``initial_accumulator_value``  G_0      ``initial_accumulator_value``  ``initial_accumulator_value``  ``initial_accumulator_value``
``eps``                        epsilon  ``eps``                        ``epsilon``                    ``eps``
``sum`` (state)                G        ``sum``                        ``accumulator``                ``sum_of_squares``
=============================  =======  =============================  =============================  =============================

Defaults and conventions
------------------------
torch.optim's: ``lr=1e-2``, ``initial_accumulator_value=0``, ``eps=1e-10``, eps added **outside**
the square root (5). Keras and optax start the accumulator at 0.1 and put ``eps=1e-7`` **inside**
the root, ``sqrt(G + eps)``. The same name therefore gives visibly different first steps: with
torch's defaults the first step of every coordinate is ``lr * sign(g)`` (almost exactly), with
Keras's it is ``lr * g / sqrt(0.1 + g^2)``.

``eps_inside_sqrt=True`` puts eps inside the root (5); ``decoupled_weight_decay=True`` makes
``weight_decay`` shrink the weights by ``1 - eta * lambda`` before the step (2), as Keras's does
(``eta`` is the learning rate before the decay (3); Keras has no ``lr_decay``).
``convention="keras"`` sets both, with Keras's ``lr=1e-3``, ``initial_accumulator_value=0.1``
and ``eps=1e-7``; ``convention="optax"`` sets eps inside the root, the accumulator 0.1 and
``eps=1e-7`` (optax has no default learning rate and no weight decay for Adagrad: fastopt's lr
is kept); ``convention="torch"`` gives torch's defaults. Explicit arguments override a preset.
Not reproduced: optax returns a zero update wherever ``G == 0``, which only differs from
``0 / sqrt(0 + eps)`` when ``eps = 0`` (0/0 = NaN here).

The step counter ``t`` (state ``step``) is a Python integer: it never saturates (torch keeps a
float32 counter, which stops at 2**24).

Like torch, the state (``step = 0`` and ``sum = G_0``) is created in the constructor. A group
added later with :meth:`add_param_group` uses its own ``initial_accumulator_value`` (torch uses
the constructor's value there).

References
----------
.. [1] J. Duchi, E. Hazan, Y. Singer. "Adaptive Subgradient Methods for Online Learning and
       Stochastic Optimization." JMLR 12, 2011.
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_eps, check_flag, check_lr, check_nonnegative, check_weight_decay

__all__ = ["Adagrad", "AdagradAlgorithm"]

FLAGS = ("eps_inside_sqrt", "decoupled_weight_decay")


class AdagradAlgorithm(Algorithm):
    """Adagrad's rules, for ``fastopt.Adagrad`` and ``fastopt.torch.Adagrad``; the maths is in
    :mod:`fastopt.adagrad`."""

    kernel = "adagrad"
    buffers = ("sum",)
    required = ("step", "sum")
    eager = True  # as torch: step = 0 and sum = G_0 exist before the first step
    flag_defaults = dict.fromkeys(FLAGS, False)

    def check(self, group: dict[str, Any]) -> None:
        check_lr(group["lr"])
        check_nonnegative("lr_decay", group["lr_decay"], f"Invalid lr_decay value: {group['lr_decay']}")
        check_weight_decay(group["weight_decay"])
        value = group["initial_accumulator_value"]
        check_nonnegative(
            "initial_accumulator_value", value, f"Invalid initial_accumulator_value value: {value}"
        )
        check_eps(group["eps"])
        check_flag("maximize", group["maximize"])
        for flag in FLAGS:
            check_flag(flag, group[flag])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("sum",)

    def fill(self, buffer: str, group: dict[str, Any]) -> float:
        return group["initial_accumulator_value"]  # G_0

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        return (
            bool(group["maximize"]),
            *weight_decay_scalars(group, dtype),
            bool(group["eps_inside_sqrt"]),
            dtype.type(group["eps"]),
        )

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """(3)'s decayed learning rate ``eta_t`` at step ``t``."""
        clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])                           # (3)
        return (clr,)


class Adagrad(Optimizer):
    """Adagrad; the maths is in :mod:`fastopt.adagrad`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-2
        Learning rate ``eta``.
    lr_decay : float, default 0
        ``kappa`` in (3).
    weight_decay : float, default 0
        ``lambda`` (2): an L2 penalty added to the gradient, or with ``decoupled_weight_decay`` a
        decay of the weights by ``1 - lr * weight_decay`` per step.
    initial_accumulator_value : float, default 0
        ``G_0``, the starting value of the sum of squares (4).
    eps : float, default 1e-10
        Added outside the square root (5), or inside with ``eps_inside_sqrt``.
    maximize : bool, default False
    eps_inside_sqrt : bool, default False
        ``sqrt(G + eps)`` instead of ``sqrt(G) + eps`` (5): Keras, optax.
    decoupled_weight_decay : bool, default False
        Weight decay shrinks the weights before the step (2): Keras.
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly.
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int) and ``sum``, created in the constructor.
    """

    name = "adagrad"
    algorithm = AdagradAlgorithm()
    conventions = {
        "torch": dict(lr=1e-2, lr_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, **AdagradAlgorithm.flag_defaults),
        "keras": dict(lr=1e-3, lr_decay=0.0, initial_accumulator_value=0.1, eps=1e-7, eps_inside_sqrt=True,
                      decoupled_weight_decay=True),
        "optax": dict(lr_decay=0.0, initial_accumulator_value=0.1, eps=1e-7, eps_inside_sqrt=True,
                      decoupled_weight_decay=False),
    }

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
        *,
        eps_inside_sqrt: bool = False,
        decoupled_weight_decay: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
