r"""NAdam: Adam with Nesterov momentum, looking one momentum step ahead.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}                       # L2 weight decay, if lambda != 0
         theta_{t-1} = theta_{t-1} * (1 - eta * lambda)         # instead, with decoupled_weight_decay
    (3)  mu_t = beta1 * (1 - 0.5 * 0.96^(t * psi))              # momentum schedule; mu_{t+1} likewise
    (4)  Pi_t = Pi_{t-1} * mu_t                                 # product of the schedule, Pi_0 = 1, kept in FLOAT32 (torch)
    (5)  m_t = beta1 * m_{t-1} + (1 - beta1) * d_t              # first moment, m_0 = 0
    (6)  v_t = beta2 * v_{t-1} + (1 - beta2) * d_t * d_t        # second moment, v_0 = 0
    (7)  s_t = sqrt(v_t / (1 - beta2^t)) + eps                  # v is bias-corrected BEFORE the root
    (8)  theta'_t = theta_{t-1} - (eta * (1 - mu_t) / (1 - Pi_t)) * d_t / s_t
    (9)  theta_t = theta'_t - (eta * mu_{t+1} / (1 - Pi_t * mu_{t+1})) * m_t / s_t

Nesterov's method evaluates the momentum step where the parameters are about to be, not where
they are. Dozat [1]_ folds that look-ahead into Adam: the update mixes the current direction
``d_t`` (8) with the momentum ``m_t`` (9), and the momentum term uses **next** step's factor
``mu_{t+1}``, as if the momentum step had already been taken. Both terms are bias-corrected by
the product ``Pi`` of the momentum factors instead of ``1 - beta1^t``. The schedule (3) warms the
momentum up from ``beta1 / 2`` towards ``beta1``; ``psi`` (``momentum_decay``, 0.004) sets how
slowly (``0.96^(t * psi)`` halves after about 4,300 steps).

``mu_t``, ``mu_{t+1}``, ``Pi_t`` and the two step sizes are scalars computed once per step by the
class and cast to the arrays' dtype. ``Pi`` follows torch exactly: it is a **float32** scalar even
for float64 parameters, multiplied each step in float32 by ``mu_t`` rounded to float32, and read
back as a float64 for (8) and (9) (``Pi_t * mu_{t+1}`` is a float64 product). Keeping ``Pi`` in
float64 would drift from torch by ~1e-11 relative after a dozen steps.

Symbols
-------
==============  ==============  ==================  ===================  ========================
fastopt         paper           torch.optim         Keras 3              optax
==============  ==============  ==================  ===================  ========================
``lr``          alpha           ``lr``              ``learning_rate``    ``learning_rate``
``betas``       mu, nu          ``betas``           ``beta_1, beta_2``   ``b1, b2``
``eps``         epsilon         ``eps``             ``epsilon``          ``eps``
momentum_decay  (0.004 fixed)   ``momentum_decay``  (none)               (none)
``exp_avg``     m               ``exp_avg``         ``momentum``         ``mu``
``exp_avg_sq``  n               ``exp_avg_sq``      ``velocity``         ``nu``
``mu_product``  prod mu_i       ``mu_product``      ``u_product``        (none)
``step``        t               ``step``            ``iterations + 1``   ``count``
==============  ==============  ==================  ===================  ========================

Defaults and conventions
------------------------
torch.optim's: ``lr=2e-3`` (the paper's), ``betas=(0.9, 0.999)``, ``eps=1e-8``,
``weight_decay=0`` (L2 (2), or AdamW's decoupled decay with ``decoupled_weight_decay=True``),
``momentum_decay=4e-3``. Keras's Nadam has the schedule ``beta1 * (1 - 0.5 * 0.96^t)``, without
``psi`` (its momentum reaches ``beta1`` within a few dozen steps), one ``u_product`` shared by all
variables, and eps added to ``sqrt(v_hat)`` as here. optax's ``nadam`` is ``adam(nesterov=True)``:
a constant ``beta1``, no schedule and no product, with the look-ahead written as
``beta1 * m_t / (1 - beta1^(t+1)) + (1 - beta1) * g_t / (1 - beta1^t)``.

State: ``mu_product`` is stored per parameter as a ``numpy.float32`` scalar (torch: a 0-d float32
tensor), so ``state_dict`` round trips are exact; ``load_state_dict`` also accepts a 0-d float32
array or a Python float that is exactly a float32. The step counter ``t`` is a Python integer.

Conventions: ``convention="keras"`` sets ``momentum_decay=1`` (Keras's schedule
``beta1 * (1 - 0.5 * 0.96^t)`` is (3) with ``psi = 1``), decoupled weight decay (2) and Keras's
``lr=1e-3``, ``eps=1e-7``. Two roundings remain: Keras keeps its product ``u_product`` in the
variables' dtype (float64 for float64 weights; fastopt keeps torch's float32 ``Pi``, a relative
difference of ~1e-8 after a few steps in float64, none in float32), and it adds the two terms (8)
and (9) before dividing. optax's ``nadam`` is not offered: it is ``adam(nesterov=True)``, with a
constant ``beta1`` and no schedule.

References
----------
.. [1] T. Dozat. "Incorporating Nesterov Momentum into Adam." ICLR 2016 workshop track
       (Algorithm 2, with the schedule ``mu_t = beta1 * (1 - 0.5 * 0.96^(t / 250))``).
.. [2] D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._engine import Algorithm, moment_scalars, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_adam_family, check_flag, check_nonnegative

__all__ = ["NAdam", "NAdamAlgorithm"]


def momentum_schedule(beta1: float, psi: float, t: int) -> float:
    """``mu_t`` of (3), in torch's float64 arithmetic."""
    return beta1 * (1.0 - 0.5 * (0.96 ** (t * psi)))


def next_mu_product(mu_product: np.float32, beta1: float, psi: float, t: int) -> np.float32:
    """``Pi_t`` of (4): ``Pi_{t-1} * mu_t``, both float32, the product rounded to float32 (torch's
    ``mu_product *= mu`` on a 0-d float32 tensor)."""
    return np.float32(mu_product) * np.float32(momentum_schedule(beta1, psi, t))


class NAdamAlgorithm(Algorithm):
    """NAdam's rules, for ``fastopt.NAdam`` and ``fastopt.torch.NAdam``; the maths is in
    :mod:`fastopt.nadam`."""

    kernel = "nadam"
    buffers = ("exp_avg", "exp_avg_sq")
    counters = ("step", "mu_product")  # Pi_t (4) is a float32, as torch keeps it
    state_keys = ("step", "exp_avg", "exp_avg_sq", "mu_product")
    required = state_keys
    flag_defaults = {"decoupled_weight_decay": False}

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks, in torch's order."""
        check_adam_family(group)
        check_nonnegative(
            "momentum_decay", group["momentum_decay"], f"Invalid momentum_decay value: {group['momentum_decay']}"
        )
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("exp_avg", "exp_avg_sq")

    def initial_counters(self, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": 0, "mu_product": np.float32(1.0)}

    def advance(self, group, counters, created) -> tuple:
        counters["step"] += 1
        t = counters["step"]
        counters["mu_product"] = next_mu_product(counters["mu_product"], group["betas"][0], group["momentum_decay"], t)
        return t, counters["mu_product"]  # two parameters share their scalars if both agree

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        return (bool(group["maximize"]), *weight_decay_scalars(group, dtype), *moment_scalars(group, dtype))

    def step_scalars(self, group: dict[str, Any], key: tuple) -> tuple:
        t, mu_product = key  # Pi_t of (4), advanced with the step counter
        lr = group["lr"]
        beta1, beta2 = group["betas"]
        mu = momentum_schedule(beta1, group["momentum_decay"], t)                     # (3)
        mu_next = momentum_schedule(beta1, group["momentum_decay"], t + 1)           # (3)
        mu_product = float(mu_product)  # torch's _get_value: the float32 read as a float64
        bias_correction2 = 1 - beta2**t                                               # (7)
        grad_step = lr * (1.0 - mu) / (1.0 - mu_product)                               # (8)
        momentum_step = lr * mu_next / (1.0 - mu_product * mu_next)                    # (9)
        return bias_correction2, group["eps"], grad_step, momentum_step

    def check_counter(self, where: str, name: str, value: object) -> None:
        """``mu_product`` is a product of momentum coefficients, each in [0, 1): a finite real
        number in [0, 1] (1 before the first step). Out of that range the step sizes (8)-(9)
        would be meaningless, or overflow float32."""
        super().check_counter(where, name, value)
        if name == "mu_product" and not 0.0 <= value <= 1.0:
            raise ValueError(f"{where} must be in [0, 1] (a product of momentum coefficients), got {value!r}")

    def load_counter(self, where: str, name: str, value: object) -> Any:
        """As the base class, plus ``mu_product``: a float32 scalar (``numpy.float32``, a 0-d
        float32 array as torch's, or a Python float that is exactly a float32)."""
        if name != "mu_product":
            return super().load_counter(where, name, value)
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if (
            isinstance(value, (bool, np.bool_))
            or not isinstance(value, (numbers.Real, np.floating))
            or not float(np.float32(value)) == float(value)  # exactly a float32 (NaN fails)
        ):
            raise ValueError(f"{where} must be a float32 scalar, got {value!r}")
        value = np.float32(value)
        self.check_counter(where, name, value)
        return value


class NAdam(Optimizer):
    """NAdam (Adam with Nesterov momentum); the maths is in :mod:`fastopt.nadam`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 2e-3
        Learning rate ``eta``.
    betas : (float, float), default (0.9, 0.999)
        ``beta1`` (the momentum schedule's limit (3) and the decay of ``m`` (5)) and ``beta2`` (6).
    eps : float, default 1e-8
        Added to the bias-corrected root (7).
    weight_decay : float, default 0
        ``lambda`` (2): an L2 penalty added to the gradient, or, with ``decoupled_weight_decay``,
        a decay of the weights by ``1 - lr * weight_decay`` per step.
    momentum_decay : float, default 4e-3
        ``psi`` in the momentum schedule (3).
    decoupled_weight_decay : bool, default False
    maximize : bool, default False
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly
        (the frameworks this optimizer has no preset for are refused, with the reason).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq`` and ``mu_product`` (a
    ``numpy.float32``), created on the parameter's first step.
    """

    name = "nadam"
    algorithm = NAdamAlgorithm()
    conventions = {
        "torch": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, momentum_decay=4e-3, decoupled_weight_decay=False),
        # Keras's schedule beta1 * (1 - 0.5 * 0.96^t) is (3) with psi = 1
        "keras": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, momentum_decay=1.0, decoupled_weight_decay=True),
    }
    not_offered = {
        "optax": "optax's nadam is adam(nesterov=True): a constant beta1, no momentum schedule and no "
        "product, a different update",
    }

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        maximize: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
