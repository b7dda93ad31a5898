r"""Adagrad: a learning rate per parameter, from the sum of its squared gradients.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}       # L2 weight decay, if lambda != 0
    (3)  eta_t = eta / (1 + (t - 1) * kappa)    # learning-rate decay (a scalar, float64)
    (4)  G_t = G_{t-1} + d_t * d_t              # sum of squares, G_0 = initial_accumulator_value
    (5)  s_t = sqrt(G_t) + eps                  # eps OUTSIDE the root (torch)
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
the root, ``sqrt(G + eps)``; optax also returns a zero update wherever ``G == 0``. The same name
therefore gives visibly different first steps: with torch's defaults the first step of every
coordinate is ``lr * sign(g)`` (almost exactly), with Keras's it is ``lr * g / sqrt(0.1 + g^2)``.

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

from .._optimizer import Optimizer
from .._validation import check_eps, check_flag, check_lr, check_nonnegative, check_weight_decay

__all__ = ["Adagrad"]


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
        L2 penalty ``lambda`` (2).
    initial_accumulator_value : float, default 0
        ``G_0``, the starting value of the sum of squares (4).
    eps : float, default 1e-10
        Added outside the square root (5).
    maximize : bool, default False
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int) and ``sum``, created in the constructor.
    """

    name = "adagrad"
    state_keys = ("step", "sum")
    required_state_keys = ("step", "sum")
    eager_state = True  # as torch: step = 0 and sum = G_0 exist before the first step

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
        maximize: bool = False,
        backend: str = "auto",
    ) -> None:
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            initial_accumulator_value=initial_accumulator_value,
            eps=eps,
            maximize=maximize,
        )
        super().__init__(params, defaults, backend)

    @staticmethod
    def check_hyperparameters(group: dict[str, Any]) -> None:
        check_lr(group["lr"])
        check_nonnegative("lr_decay", group["lr_decay"], f"Invalid lr_decay value: {group['lr_decay']}")
        check_weight_decay(group["weight_decay"])
        value = group["initial_accumulator_value"]
        check_nonnegative(
            "initial_accumulator_value", value, f"Invalid initial_accumulator_value value: {value}"
        )
        check_eps(group["eps"])
        check_flag("maximize", group["maximize"])

    def _init_state(self, param, group):
        return {"step": 0, "sum": self._zeros_like(param, group["initial_accumulator_value"])}

    def _begin_step(self, param, state, group):
        state["step"] += 1
        return state["step"]

    def _kernel_slots(self, group):
        return ("sum",)

    def _kernel_scalars(self, group, t, dtype):
        cast = dtype.type
        clr = group["lr"] / (1 + (t - 1) * group["lr_decay"])                           # (3)
        return (bool(group["maximize"]), cast(group["weight_decay"]), cast(group["eps"]), cast(clr))
