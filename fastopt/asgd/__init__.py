r"""ASGD: stochastic gradient descent whose answer is the running average of its iterates.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda_wd * theta_{t-1}                         # L2 weight decay, if weight_decay != 0
    (3)  theta_t = theta_{t-1} * (1 - lambda * eta_t) - eta_t * d_t  # shrink, then step (two roundings, as torch)
    (4)  ax_t = theta_t                                              # while mu_t = 1 (before averaging starts)
         ax_t = ax_{t-1} + (theta_t - ax_{t-1}) * mu_t               # otherwise: a running mean
    (5)  eta_{t+1} = lr / (1 + lambda * lr * t)^alpha                # eta_1 = lr
    (6)  mu_{t+1} = 1 / max(1, t - t0)                               # mu_1 = 1

Plain SGD with a step size that decays like ``t^(-alpha)`` still rattles around the minimum of a
noisy loss; Polyak and Juditsky [1]_ showed that the *average* of the iterates converges at the
best rate any stochastic method can reach, with step sizes that decay more slowly than ``1/t``
(``alpha`` in (1/2, 1)). The iterate ``theta`` keeps taking large, noisy steps, so it explores;
the average ``ax`` (4) cancels the noise. Xu [2]_ and Bottou [3]_ give the schedule used here
and in torch.optim: the step size (5) starts at ``lr`` and decays with exponent ``alpha = 0.75``,
``lambda`` (torch's ``lambd``) is the strength of the L2 regulariser ``lambda/2 |theta|^2`` whose
gradient shrinks the weights in (3), and averaging starts after step ``t0``. By (6), ``ax`` equals ``theta`` up to
step ``t0 + 2`` and from there on is the mean of the iterates since that step.

**The average is not the parameter.** The step updates ``theta`` in place; the average lives in
the state, ``opt.state[i]["ax"]``. Evaluate (or export) the model with ``ax`` copied into the
parameters, as with torch.optim.ASGD. With torch's default ``t0 = 1e6`` averaging starts only
after a million steps, and until then ``ax`` is a copy of ``theta``.

``eta_t`` and ``mu_t`` are per-parameter counters, advanced after each step from the new step
count, and, as torch keeps them, **float32** numbers (0-d float32 tensors in torch, whatever the
parameter's dtype): a float64 parameter steps with the float32 rounding of ``eta_t``, in torch
and here. ``1 - lambd * eta_t`` is computed in float64 from that float32 and cast to the arrays'
dtype (``shrink_factor``), so the kernels do no scalar arithmetic of their own.

Symbols
-------
================  ======================  ================
fastopt           papers                  torch.optim
================  ======================  ================
``lr``            gamma_0 (initial step)  ``lr``
``lambd``         lambda (L2 strength)    ``lambd``
``alpha``         c (decay exponent)      ``alpha``
``t0``            t_0 (start averaging)   ``t0``
``eta``           gamma_t                 ``eta``
``mu``            mu_t                    ``mu``
``ax``            theta-bar (average)     ``ax``
``step``          t                       ``step``
================  ======================  ================

Defaults and conventions
------------------------
torch.optim's: ``lr=1e-2``, ``lambd=1e-4``, ``alpha=0.75``, ``t0=1e6``, ``weight_decay=0``.
torch checks only ``lr >= 0`` and ``weight_decay >= 0``; fastopt also requires ``lambd >= 0`` and
``alpha >= 0`` (a negative ``lambd`` would raise a negative number to a fractional power in (5),
which torch turns into a complex number and fails on) and a ``t0`` that is not NaN. Keras and
optax have no ASGD, so ``convention="torch"`` is the only preset.

References
----------
.. [1] B. T. Polyak, A. B. Juditsky. "Acceleration of stochastic approximation by averaging."
       SIAM Journal on Control and Optimization 30(4), 838-855, 1992.
.. [2] W. Xu. "Towards optimal one pass large scale learning with averaged stochastic gradient
       descent." arXiv:1107.2490, 2011 (the schedules (5) and (6)).
.. [3] L. Bottou. "Stochastic gradient descent tricks." Neural Networks: Tricks of the Trade,
       2nd ed., LNCS 7700, 421-436, Springer, 2012.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable
from typing import Any

import numpy as np

from .._engine import Algorithm
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_flag, check_lr, check_nonnegative, check_real, check_weight_decay

__all__ = ["ASGD", "ASGDAlgorithm", "next_eta", "next_mu"]


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def as_float32(value: float) -> np.float32:
    """``value`` rounded to a float32; beyond float32's range it becomes inf, as in torch, without
    the overflow warning (and without the cost of ``np.errstate`` on every step)."""
    # compared as a Python float: a NumPy float16 lr would cast float32's maximum to float16 (and warn)
    if -_FLOAT32_MAX <= float(value) <= _FLOAT32_MAX:
        return np.float32(value)
    with np.errstate(over="ignore"):
        return np.float32(value)


def next_eta(lr: float, lambd: float, alpha: float, t: int) -> np.float32:
    """(5): the step size after step ``t``, computed in float64 and kept as a float32 (torch's
    scalar dtype). A power too large for a float64 makes it 0, the limit it tends to."""
    try:
        decay = (1.0 + lambd * lr * t) ** alpha                                      # (5)
    except OverflowError:
        return np.float32(0.0)
    return as_float32(lr / decay)                                                    # (5)


def next_mu(t: int, t0: float) -> np.float32:
    """(6): the averaging weight after step ``t``, as a float32 (torch's scalar dtype)."""
    return np.float32(1.0 / max(1.0, t - t0))                                         # (6)


class ASGDAlgorithm(Algorithm):
    """ASGD's rules, for ``fastopt.ASGD`` and ``fastopt.torch.ASGD``; the maths is in
    :mod:`fastopt.asgd`."""

    kernel = "asgd"
    buffers = ("ax",)
    counters = ("step", "eta", "mu")  # eta_t (5) and mu_t (6) are float32, as torch keeps them
    state_keys = ("step", "eta", "mu", "ax")
    required = state_keys

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks, in torch's order, then fastopt's own (see the module docstring)."""
        check_lr(group["lr"])
        check_weight_decay(group["weight_decay"])
        check_nonnegative("lambd", group["lambd"], f"Invalid lambd value: {group['lambd']}")
        check_nonnegative("alpha", group["alpha"], f"Invalid alpha value: {group['alpha']}")
        check_real("t0", group["t0"])
        if math.isnan(group["t0"]):
            raise ValueError(f"Invalid t0 value: {group['t0']}")
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("ax",)

    def initial_counters(self, group: dict[str, Any]) -> dict[str, Any]:
        return {"step": 0, "eta": as_float32(group["lr"]), "mu": np.float32(1.0)}

    def advance(self, group, counters, created) -> tuple:
        """Step ``t`` uses the ``eta_t`` and ``mu_t`` found in the state (its key), then leaves
        ``eta_{t+1}`` (5) and ``mu_{t+1}`` (6) there for the next."""
        key = (counters["eta"], counters["mu"])
        counters["step"] += 1
        t = counters["step"]
        counters["eta"] = next_eta(group["lr"], group["lambd"], group["alpha"], t)   # (5)
        counters["mu"] = next_mu(t, group["t0"])                                     # (6)
        return key  # two parameters share their scalars if both agree

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        return (bool(group["maximize"]), dtype.type(group["weight_decay"]))

    def step_scalars(self, group: dict[str, Any], key: Hashable) -> tuple:
        """(3)'s ``1 - lambd * eta_t`` and ``eta_t``, and (4)'s ``mu_t``, at this step's key."""
        eta, mu = float(key[0]), float(key[1])  # torch's _get_value: the float32 read as a float64
        return 1.0 - group["lambd"] * eta, eta, mu != 1.0, mu                         # (3), (4)

    def check_counter(self, where: str, name: str, value: object) -> None:
        """``eta`` is a step size: a real number >= 0 (inf if ``lr`` overflows float32);
        ``mu`` an averaging weight in (0, 1]."""
        if name == "step":
            return super().check_counter(where, name, value)
        check_real(where, value)
        if name == "eta" and not value >= 0:
            raise ValueError(f"{where} must be a step size >= 0, got {value!r}")
        if name == "mu" and not 0 < value <= 1:
            raise ValueError(f"{where} must be an averaging weight in (0, 1], got {value!r}")

    def load_counter(self, where: str, name: str, value: object) -> Any:
        """As the base class, plus ``eta`` and ``mu``: real numbers, kept as float32 (torch saves
        0-d float32 tensors; one loaded into a float64 model may have become float64)."""
        if name == "step":
            return super().load_counter(where, name, value)
        if isinstance(value, np.ndarray) and value.ndim == 0:
            value = value[()]
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (numbers.Real, np.floating)):
            raise ValueError(f"{where} must be a real number, got {value!r}")
        try:
            value = as_float32(float(value))
        except OverflowError:  # an integer beyond float64's range
            raise ValueError(f"{where} is too large for a float64 (got a {type(value).__name__})") from None
        self.check_counter(where, name, value)
        return value


class ASGD(Optimizer):
    """Averaged stochastic gradient descent; the maths is in :mod:`fastopt.asgd`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-2
        Initial step size ``eta_1``; the step size decays by (5).
    lambd : float, default 1e-4
        Strength of the L2 shrinkage in (3), also the decay rate of the step size (5).
    alpha : float, default 0.75
        Exponent of the step size's decay (5).
    t0 : float, default 1e6
        The step after which averaging starts (6).
    weight_decay : float, default 0
        L2 penalty ``lambda_wd`` (2), added to the gradient.
    maximize : bool, default False
    convention : {"torch"} or None, default None
        A preset: torch's defaults for every argument not given explicitly (Keras and optax have
        no ASGD).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``eta`` and ``mu`` (float32 numbers) and ``ax``, the
    average of the iterates, created on the parameter's first step.
    """

    name = "asgd"
    algorithm = ASGDAlgorithm()
    conventions = {"torch": dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6)}
    not_offered = {"keras": "Keras has no ASGD", "optax": "optax has no ASGD"}

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0.0,
        maximize: bool = False,
        *,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
