r"""ADOPT: Adam with the second moment of the *previous* gradients, and the normalisation before the momentum.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}                   # an L2 term (decouple=False, the authors' default)
    (3)  v_1 = d_1 * d_1                                    # step 1 only: theta, m untouched, (4)-(9) skipped
    (4)  theta_{t-1} = theta_{t-1} * (1 - eta * lambda)     # instead of (2) with decouple=True, from step 2
    (5)  u_t = d_t / max(sqrt(v_{t-1}), epsilon)            # normalised by the PREVIOUS gradients' moment
    (6)  u_t = min(max(u_t, -c_t), c_t)                     # clipped: c_t = clip_lambda(t - 1), default (t - 1)^(1/4)
    (7)  m_t = beta1 * m_{t-1} + (1 - beta1) * u_t          # momentum of the normalised gradients, m_1 = 0
    (8)  theta_t = theta_{t-1} - eta * m_t
    (9)  v_t = beta2 * v_{t-1} + (1 - beta2) * (d_t * d_t)  # the second moment, updated after its use

Adam divides its momentum by a second moment that already contains the current gradient, which
correlates the two and is why Adam can diverge unless ``beta2`` is chosen for the problem. ADOPT
[1]_ removes the correlation twice: the gradient is normalised by ``v_{t-1}``, the moment of the
*previous* gradients (5), and it is normalised *before* it enters the momentum (5)-(7), not
after. With that, the paper proves the optimal ``O(1/sqrt(T))`` rate for any ``beta2``. No bias
correction is needed: ``v_1`` starts at the first gradient's square (3) (that step moves
nothing), and the momentum averages quantities of order one. Near-zero gradients at the start
(a layer initialised at zero) would make ``u_t`` huge, so the authors' current version clips it
to ``[-c_t, c_t]`` (6), with ``c_t = (t - 1)^(1/4)`` growing slowly enough to keep the
convergence guarantee (the paper's updated version); ``clip_lambda=None`` gives the original,
unclipped algorithm.

The arithmetic is optax's ``scale_by_adopt``, operation for operation: ``max(sqrt(v), epsilon)``
then one division (5), clipping by minimum and maximum, so NaN passes through (6), ``(1 - beta1) *
u + beta1 * m`` (7), ``theta + (-eta) * m`` (8), ``(1 - beta2) * (d * d) + beta2 * v`` (9) (a sum
of the same two rounded products in either order). ``1 - beta1``, ``1 - beta2``, ``1 - eta *
lambda`` and ``c_t`` are scalars computed once per step in float64 (``c_t`` by calling
``clip_lambda(t - 1)`` in Python) and cast to the arrays' dtype; the kernels never call ``pow``.
optax (jax with x64) computes ``count**0.25`` as a float64 and clips the arrays with it cast to
their dtype, as fastopt does; its ``pow`` and Python's gave the same doubles for every count below
100,000. So fastopt's weights and both moments are optax's bits, in float64 (tested at every step)
and, as measured here, in float32 too (200 steps of 20,000 elements, with and without clipping:
no element differed; the test allows 1e-6 in float32, XLA's float32 code being machine-dependent).

Symbols
-------
====================  ==============  =====================  ==========================================
fastopt               paper           optax                  authors' package (torch-adopt)
====================  ==============  =====================  ==========================================
``lr``                alpha_t         ``learning_rate``      ``lr``
``betas``             beta1, beta2    ``b1``, ``b2``         ``betas``
``eps``               epsilon         ``eps``                ``eps``
``clip_lambda``       c_t             ``clip_value_fn``      ``clip_lambda``
``weight_decay``      --              --                     ``weight_decay``
``decouple``          --              --                     ``decouple``
``exp_avg``           m               ``mu``                 ``exp_avg``
``exp_avg_sq``        v               ``nu``                 ``exp_avg_sq``
``step``              t               ``count``              ``step``
====================  ==============  =====================  ==========================================

Defaults and conventions
------------------------
optax's ``contrib.adopt`` and the authors' package agree: ``lr=1e-3`` (the package's; optax has
none), ``betas=(0.9, 0.9999)``, ``eps=1e-6`` and the clipping value ``step**0.25`` of the number of
steps already taken (``clip_lambda(t - 1)``: 0 at the first step, which moves nothing anyway, 1 at
the second). fastopt's default ``clip_lambda`` is :func:`fastopt.adopt.quarter_power`, a
module-level function (the authors' is a ``lambda``, which ``pickle`` cannot save). It is called
with the step count as a Python ``int`` (the package passes a float, optax an int32 array) and
must return a real number ``>= 0`` (``inf`` clips nothing); anything else is a ``ValueError``
naming ``clip_lambda`` at the step, raised before anything changed. ``weight_decay=0``; when it is not 0 it is an L2 term added to the gradient (2), the
authors' default ``decouple=False``, also at the first step (so ``v_1`` is the square of the
decayed gradient, as in the package); ``decouple=True`` shrinks the weights by ``1 - lr *
weight_decay`` before each step but the first (4). optax's ``adopt`` has no weight decay.
``convention="optax"`` sets optax's betas and eps (the defaults); torch.optim and Keras have no
ADOPT.

Differences from the two oracles, all at the edges:

* **The first step.** The authors' package returns after (3): ``theta`` and ``m`` are not touched.
  optax runs the whole update with ``beta1 = 1``, ``beta2 = 0`` and clipping value 0, which gives
  the same bits for finite gradients (``m_1 = 0 * u + 1 * m_0 = 0``, ``theta + (-eta) * 0``), but
  NaN where ``u_1`` is NaN (a NaN gradient). fastopt does as the package: a NaN gradient at step 1
  leaves ``theta`` and ``m`` finite and ``v_1`` NaN (so every later step is NaN anyway).
* **Rounding of the package.** It updates the momentum by ``lerp`` (``m + (1 - beta1) * (u -
  m)``), decays by ``theta + (-eta * lambda) * theta`` and fuses nothing else differently: the
  same numbers to a few ulp (tested in float64).
* Not reproduced: optax's ``nesterov=True`` and ``mu_dtype``; the package's ``foreach``,
  ``capturable``, ``differentiable`` and ``fused`` (``fastopt.torch.ADOPT`` accepts ``foreach``
  and ``fused`` and refuses the other two, as every fastopt.torch optimizer). ``maximize`` is the
  package's (optax has none).

References
----------
.. [1] S. Taniguchi, K. Harada, G. Minegishi, Y. Oshima, S. C. Jeong, G. Nagahara, T. Iiyama,
       M. Suzuki, Y. Iwasawa, Y. Matsuo. "ADOPT: Modified Adam Can Converge with Any beta2 with the
       Optimal Rate." NeurIPS 2024, arXiv:2411.02853 (Algorithm 2, and the clipped version).
.. [2] optax 0.2.8, ``optax.contrib.adopt`` and ``optax.contrib.scale_by_adopt``
       (``optax/contrib/_adopt.py``).
.. [3] S. Taniguchi. torch-adopt 0.1.0 (PyPI), GitHub iShohei220/adopt, ``adopt/adopt.py``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from .._engine import Algorithm, moment_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_adam_family, check_flag

__all__ = ["ADOPT", "ADOPTAlgorithm", "quarter_power"]


def quarter_power(step: int) -> float:
    """The authors' and optax's default clipping value ``step**0.25`` (6), for the ``step`` steps
    already taken."""
    return step**0.25


def check_clip_lambda(clip_lambda: object) -> None:
    """``clip_lambda`` is None (no clipping) or a callable of the step count."""
    if clip_lambda is not None and not callable(clip_lambda):
        raise TypeError(f"clip_lambda must be None or a callable, got {type(clip_lambda).__name__} {clip_lambda!r}")


def clip_value(clip_lambda, steps: int) -> float:
    """``c_t = clip_lambda(t - 1)`` (6) as a float64, ``inf`` without clipping; a ValueError naming
    ``clip_lambda`` unless it is a real number >= 0."""
    if clip_lambda is None:
        return math.inf
    value = clip_lambda(steps)
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"clip_lambda({steps}) must return a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not value >= 0:  # also NaN
        raise ValueError(f"Invalid clip_lambda value: clip_lambda({steps}) = {value}, must be >= 0")
    return value


class ADOPTAlgorithm(Algorithm):
    """ADOPT's rules, for ``fastopt.ADOPT`` and ``fastopt.torch.ADOPT``; the maths is in
    :mod:`fastopt.adopt`."""

    kernel = "adopt"
    buffers = ("exp_avg", "exp_avg_sq")
    required = ("step", "exp_avg", "exp_avg_sq")

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks for Adam, in torch's order (the authors' package makes the same
        four with the same messages), then ``clip_lambda`` and the flags."""
        check_adam_family(group)
        check_clip_lambda(group["clip_lambda"])
        check_flag("decouple", group["decouple"])
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("exp_avg", "exp_avg_sq")

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        """``maximize``, (2)'s ``weight_decay`` and (4)'s ``decay_factor``, the constants of (7)
        and (9), then ``eps`` (5) and ``eta`` (8)."""
        cast = dtype.type
        weight_decay = group["weight_decay"]
        if group["decouple"] and weight_decay != 0:
            decay = (cast(0.0), cast(1.0 - group["lr"] * weight_decay))                  # (4)
        else:
            decay = (cast(weight_decay), cast(1.0))                                     # (2)
        return (
            bool(group["maximize"]),
            *decay,
            *moment_scalars(group, dtype),
            cast(group["eps"]),
            cast(group["lr"]),
        )

    def advance(self, group: dict[str, Any], counters: dict[str, Any], created: tuple[str, ...]):
        """The step counter goes up by one, as for every optimizer; but first ``clip_lambda``'s
        value for this step is checked, so that a bad value is refused before any counter or
        array of the group has changed (the step engine computes the scalars after advancing)."""
        if counters["step"] >= 1:
            clip_value(group["clip_lambda"], counters["step"])
        return super().advance(group, counters, created)

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """Whether this is the first step (3), and the clipping value ``c_t`` of (6), in float64."""
        first = t == 1
        return first, (0.0 if first else clip_value(group["clip_lambda"], t - 1))        # (3), (6)


class ADOPT(Optimizer):
    """ADOPT (clipped, as the authors' current version and optax); the maths is in
    :mod:`fastopt.adopt`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta`` (8).
    betas : (float, float), default (0.9, 0.9999)
        Decay rates of the momentum (7) and of the second moment (9), each in [0, 1).
    eps : float, default 1e-6
        The least denominator of (5): ``max(sqrt(v), eps)``.
    clip_lambda : callable or None, default :func:`fastopt.adopt.quarter_power`
        ``clip_lambda(t - 1)`` (the steps already taken, an int) is the clipping value ``c_t`` of
        the normalised gradient (6); a real number >= 0 (``inf`` clips nothing). None: no
        clipping (the paper's original algorithm).
    weight_decay : float, default 0
        ``lambda``: an L2 term added to the gradient (2), or with ``decouple=True`` the weights
        shrink by ``1 - lr * weight_decay`` per step (4).
    decouple : bool, default False
        The authors' option: decay the weights (AdamW-style) rather than the gradient.
    maximize : bool, default False
    convention : {"optax"} or None, default None
        A preset: optax's defaults for every argument not given explicitly (torch.optim and
        Keras have no ADOPT).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``exp_avg`` and ``exp_avg_sq``, the authors' names,
    created on the parameter's first step (which only sets ``exp_avg_sq``).
    """

    name = "adopt"
    algorithm = ADOPTAlgorithm()
    conventions = {"optax": dict(betas=(0.9, 0.9999), eps=1e-6)}
    not_offered = {"torch": "torch.optim has no ADOPT (fastopt's defaults are optax's and the authors' package's)",
                   "keras": "Keras 3 has no ADOPT"}

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.9999),
        eps: float = 1e-6,
        clip_lambda=quarter_power,
        weight_decay: float = 0.0,
        decouple: bool = False,
        maximize: bool = False,
        *,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
