r"""Adafactor: Adam's second moment in factored form, rows and columns, and steps relative to the weights.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)   G_t = -g_t if maximize else g_t
    (2)   w_t = t^tau                                               # the averages' weight, 1 - beta2_t (tau = beta2_decay <= 0)
    (3)   rho_t = min(gamma, 1 / sqrt(t))                           # the relative step size
    (4)   alpha_t = max(epsilon_2, RMS(theta_{t-1})) * rho_t        # ... times the weights' root mean square
    (5)   theta_{t-1} = theta_{t-1} * (1 - gamma * lambda)          # decoupled weight decay
    (6)   R_t = lerp(R_{t-1}, rowmean(G_t^2), w_t)                  # a matrix: one second moment per row ...
    (7)   C_t = lerp(C_{t-1}, colmean(G_t^2), w_t)                  # ... and one per column
    (8)   V_t = outer(R_t, C_t) / max(mean(R_t), epsilon_1)         # their product estimates every weight's
    (9)   V_t = lerp(V_{t-1}, G_t^2, w_t)                           # a vector or a scalar instead: one per element
    (10)  U_t = G_t / sqrt(max(V_t, epsilon_1^2))
    (11)  theta_t = theta_{t-1} - alpha_t / max(1, RMS(U_t) / d) * U_t

where ``lerp(a, b, w) = a + w (b - a)``, ``RMS(x) = sqrt(sum(x^2) / n)`` over the ``n`` elements
of the tensor, ``rowmean`` is the mean along each row (one number per row), ``colmean`` down each
column, ``mean(R_t)`` the mean of a matrix's row factors, and ``outer(R, C)`` the matrix of
products ``R_i C_j``. A parameter of 2 or more dimensions is a stack of matrices (its last two
dimensions) and takes (6)-(8); a vector or a scalar takes (9).

Adam keeps one second moment per weight; for an ``m x n`` matrix Adafactor [1]_ keeps ``m + n``:
the mean squared gradient of each row and of each column, whose outer product divided by their
overall mean (8) is the best rank-one estimate of the full matrix of second moments (it is exact
when they are). A 4,096 x 4,096 layer then costs 32 KiB of optimizer state where Adam's costs
128 MiB. Adafactor also drops the first moment by default, decays the average with a weight
``t^tau`` that starts at 1 (2) (no bias correction is needed: ``w_1 = 1`` takes the first
squared gradient whole) and makes the step *relative*: it is ``rho_t`` times the weights' own
root mean square (4), so a matrix of large weights takes proportionally large steps. The update is
clipped by its own root mean square (11): no step is larger than ``d`` in RMS, whatever a
stale second moment says.

This is torch.optim.Adafactor's algorithm (PyTorch 2.13, which follows [1]_ with [2]_'s
``beta2_decay`` and weight decay). ``lerp`` is torch's: ``a + w (b - a)`` when ``w < 0.5``,
``b - (b - a)(1 - w)`` otherwise, with ``w`` computed once per step in float64 and cast to the
arrays' dtype, ``1 - w`` computed in that dtype. Every element-wise operation is in the arrays' dtype,
in torch's order: ``(R_i C_j) / max(mean(R), epsilon_1)``, then ``(1 / sqrt(V)) * G``. The
scalars of (3) are computed once per step in float64 (``1 / t^0.5`` with Python's ``**``, as
torch); ``alpha_t`` and the clip of (11) depend on the data and are computed by each kernel in
float64 from its sums, with the same operations in the three twins.

**Sums.** The root mean squares of (4) and (11) and the means of (6)-(8) follow fastopt's
summation order (:mod:`fastopt._sums`): accumulated in float64 in 8 lanes along a row or a
flattened tensor, sequentially down a column; a mean is rounded once to the arrays' dtype. This
is what makes the three twins agree bit for bit. torch computes each with ``torch.norm`` (a
square root, squared again) in the arrays' dtype and its own order: a float32 mean differs from
fastopt's by an ulp or so, float64 agreement is about 1e-16 relative. A parameter is one kernel
call on one thread (its sums do not depend on ``set_num_threads``).

Symbols
-------
====================  ===========================  ==================  ================================
fastopt               paper                        torch.optim         optax (``adafactor``)
====================  ===========================  ==================  ================================
``lr``                rho (relative step size)     ``lr``              ``learning_rate``
``beta2_decay``       c in beta2_t = 1 - t^c       ``beta2_decay``     ``decay_rate`` (as +0.8)
``eps``               epsilon_1, epsilon_2         ``eps``             ``eps``
``d``                 d (clipping threshold)       ``d``               ``clipping_threshold``
``weight_decay``      --                           ``weight_decay``    ``weight_decay_rate``
``row_var``           R                            ``row_var``         ``v_row``
``col_var``           C                            ``col_var``         ``v_col``
``variance``          V (vectors)                  ``variance``        ``v``
``step``              t                            ``step``            ``count``
====================  ===========================  ==================  ================================

Defaults and conventions
------------------------
torch.optim's: ``lr=1e-2``, ``beta2_decay=-0.8``, ``eps=(None, 1e-3)`` (``epsilon_1 = None``
means the machine epsilon of the parameter's dtype), ``d=1.0``, ``weight_decay=0``. There is no
first moment, as in torch. A parameter of two or more dimensions is factored over its last two
(``row_var`` has its shape with the last dimension 1, ``col_var`` with the next-to-last 1: torch's
layout), anything smaller keeps a full ``variance``. Validation is torch's, with its messages
(``lr >= 0``, ``beta2_decay <= 0``, ``epsilon_1, epsilon_2 >= 0``, ``d >= 1``,
``weight_decay >= 0``), plus finite values.

Only ``convention="torch"`` is offered: optax's ``adafactor`` factors only dimensions of at least
128, uses a relative step only on request, and clips and decays differently; Keras's Adafactor
has no clipping by RMS. Where fastopt differs from torch: a parameter with no elements counts the
step and changes nothing (torch divides by its zero size and raises ``ZeroDivisionError``); in a
group mixing float32 and float64 parameters, ``epsilon_1 = None`` is each parameter's own machine
epsilon (torch takes the first parameter's for all).

References
----------
.. [1] N. Shazeer, M. Stern. "Adafactor: Adaptive Learning Rates with Sublinear Memory Cost."
       ICML 2018, arXiv:1804.04235 (Algorithms 4 and 5).
.. [2] X. Zhai, A. Kolesnikov, N. Houlsby, L. Beyer. "Scaling Vision Transformers." CVPR 2022,
       arXiv:2106.04560 (``beta2_decay = -0.8``, weight decay).
.. [3] torch.optim.Adafactor (PyTorch 2.13), ``torch/optim/_adafactor.py``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._engine import Algorithm
from .._engine.algorithm import Double
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_flag, check_real

__all__ = ["Adafactor", "AdafactorAlgorithm"]


def _checked(name: str, value: object, holds, message: str) -> None:
    """torch's check of ``value`` (``holds``, its message; NaN fails it), then finite."""
    check_real(name, value)
    if not holds(value):
        raise ValueError(message)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


class AdafactorAlgorithm(Algorithm):
    """Adafactor's rules, for ``fastopt.Adafactor`` and ``fastopt.torch.Adafactor``; the maths is
    in :mod:`fastopt.adafactor`."""

    kernel = "adafactor"
    buffers = ("row_var", "col_var", "variance")
    required = ("step",)
    whole_tensor = True

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks, in torch's order and with its messages (and finite values)."""
        lr = group["lr"]
        _checked("lr", lr, lambda x: 0.0 <= x, f"Learning rate should be >= 0 but is: {lr}")
        beta2_decay = group["beta2_decay"]
        _checked("beta2_decay", beta2_decay, lambda x: 0.0 >= x, f"beta2_decay should be <= 0 but is: {beta2_decay}")
        eps = group["eps"]
        if not isinstance(eps, (tuple, list)) or len(eps) != 2:
            raise TypeError(f"eps must be a pair (epsilon1 or None, epsilon2), got {eps!r}")
        if eps[0] is not None:
            _checked("eps[0]", eps[0], lambda x: 0.0 <= x, f"epsilon1 should be >= 0 but is: {eps[0]}")
        _checked("eps[1]", eps[1], lambda x: 0.0 <= x, f"epsilon2 should be >= 0 but is: {eps[1]}")
        d = group["d"]
        _checked("d", d, lambda x: 1.0 <= x, f"Clipping threshold d should be >= 1 but is: {d}")
        weight_decay = group["weight_decay"]
        _checked("weight_decay", weight_decay, lambda x: 0.0 <= x, f"weight_decay should be >= 0 but is: {weight_decay}")
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("row_var", "col_var", "variance")

    def buffer_shape(self, buffer: str, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """torch's layout: a matrix (2 or more dimensions) keeps ``row_var`` (its shape, the last
        dimension 1) and ``col_var`` (the next-to-last 1); anything smaller keeps ``variance``."""
        if len(shape) < 2:
            return shape if buffer == "variance" else None
        if buffer == "row_var":
            return (*shape[:-1], 1)
        if buffer == "col_var":
            return (*shape[:-2], 1, shape[-1])
        return None

    def shape_arguments(self, shape: tuple[int, ...]) -> tuple:
        """``factored, rows, cols``: a parameter of 2 or more dimensions as a stack of ``rows x
        cols`` matrices (its last two dimensions); anything smaller as one row of its elements,
        unfactored."""
        if len(shape) < 2:
            return False, 1, max(math.prod(shape), 1)
        return True, max(shape[-2], 1), max(shape[-1], 1)

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        """``maximize``, (5)'s ``decay_factor``, ``epsilon_1`` and its square (8), (10), then
        ``epsilon_2`` (4) and ``d`` (11) as float64 numbers (the kernels' alpha arithmetic)."""
        cast = dtype.type
        eps1, eps2 = group["eps"]
        if eps1 is None:
            eps1 = float(np.finfo(dtype).eps)  # the parameter's own dtype
        return (
            bool(group["maximize"]),
            cast(1.0 - group["lr"] * group["weight_decay"]),                            # (5)
            cast(eps1),                                                                # (8)
            cast(eps1 * eps1),                                                         # (10)
            float(eps2),                                                               # (4)
            float(group["d"]),                                                         # (11)
        )

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """The weight ``w_t`` of (2) (cast to the arrays' dtype; the kernels take ``1 - w_t`` and
        torch's lerp branch from it, as torch does) and ``rho_t`` of (3) in float64, both with
        torch's expressions."""
        return (
            float(t) ** group["beta2_decay"],                                          # (2)
            Double(min(group["lr"], 1 / (float(t) ** 0.5))),                           # (3)
        )


class Adafactor(Optimizer):
    """Adafactor (torch.optim's); the maths is in :mod:`fastopt.adafactor`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-2
        ``gamma``: the largest relative step size ``rho_t = min(lr, 1/sqrt(t))`` (3).
    beta2_decay : float, default -0.8
        ``tau <= 0``: the second moments average with weight ``t^tau`` (2).
    eps : (float or None, float), default (None, 1e-3)
        ``epsilon_1`` (None: the dtype's machine epsilon), the floor of the second moments (8),
        (10); ``epsilon_2``, the floor of the weights' root mean square (4).
    d : float, default 1.0
        The clipping threshold: the update's root mean square is at most ``d`` (11).
    weight_decay : float, default 0
        ``lambda``: the weights shrink by ``1 - lr * weight_decay`` per step (5).
    maximize : bool, default False
    convention : {"torch"} or None, default None
        A preset: torch's defaults for every argument not given explicitly.
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), then ``row_var`` and ``col_var`` (a parameter of 2 or
    more dimensions) or ``variance`` (fewer), created on the parameter's first step, torch's
    names and shapes.
    """

    name = "adafactor"
    algorithm = AdafactorAlgorithm()
    conventions = {"torch": dict(lr=1e-2, beta2_decay=-0.8, eps=(None, 1e-3), d=1.0, weight_decay=0.0)}
    not_offered = {
        "keras": "Keras's Adafactor has no clipping by the update's RMS and decays differently; fastopt "
        "reproduces torch.optim.Adafactor only",
        "optax": "optax's adafactor factors only dimensions of at least 128 and clips differently; fastopt "
        "reproduces torch.optim.Adafactor only",
    }

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        beta2_decay: float = -0.8,
        eps: tuple[float | None, float] = (None, 1e-3),
        d: float = 1.0,
        weight_decay: float = 0.0,
        maximize: bool = False,
        *,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
