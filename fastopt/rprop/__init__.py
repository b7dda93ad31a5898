r"""Rprop: a step size per weight, grown while its gradient keeps its sign and shrunk when it flips.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  s_t = d_t * p_{t-1}                                  # > 0: the sign repeated; < 0: it flipped; p_0 = 0
    (3)  f_t = eta_plus if s_t > 0 else eta_minus if s_t < 0 else 1    # 1 also where s_t is NaN
    (4)  Delta_t = min(max(Delta_{t-1} * f_t, Delta_min), Delta_max)   # every element, every step; Delta_0 = eta
    (5)  d_t = 0 if s_t < 0 else d_t                          # a flipped derivative is forgotten
    (6)  theta_t = theta_{t-1} - sign(d_t) * Delta_t          # sign: 1, -1, or 0 for either zero and NaN
    (7)  p_t = d_t                                            # kept (as prev) for the next step

Rprop ("resilient propagation") [1]_ uses only the **sign** of each partial derivative, never its
size: every weight has its own step size ``Delta``, multiplied by ``eta_plus > 1`` while the
derivative keeps its sign (the minimum is still ahead: accelerate) and by ``eta_minus < 1`` when
the sign flips (the last step jumped over it: slow down), within ``[Delta_min, Delta_max]``. The
learning rate ``eta`` is only the step size every weight starts from. A weight whose derivative
flipped sign takes no step this time (5)-(6), and because (5) also stores 0 in ``prev`` (7), its
next step counts as neither a repetition nor a flip: the step size is then left as it is
(``f = 1``).
The original algorithm [1]_ also undoes the previous step at a flip ("weight-backtracking");
torch.optim does not. Setting the flipped derivative to 0 without backtracking is the variant
Igel and Hüsken call **iRprop-** [2]_, [3]_, and it is what torch.optim implements and fastopt
reproduces. Rprop is meant for full-batch gradients: with minibatch noise the signs flip at
random and the step sizes shrink to ``Delta_min``.

Exactly torch.optim's for-loop arithmetic, element by element:

* ``s_t`` is the product of the two derivatives, and only its comparisons with 0 are used: torch
  takes ``torch.sign`` of the product, which is 0 for NaN, so a NaN product (a NaN or infinite
  derivative against a zero) selects ``f = 1`` (3), here too.
* the clamp (4) applies to every element, also where ``f = 1``: a starting ``eta`` outside
  ``[Delta_min, Delta_max]`` is brought inside at the first step. ``min(max(x, lo), hi)`` keeps a
  NaN (as ``torch.clamp``).
* ``sign`` (6) is ``torch.sign``'s rule: 1 for ``x > 0``, -1 for ``x < 0``, and 0 (``+0.0``) for
  either zero **and for NaN** (torch 2.13 on the CPU, checked in float32 and float64, in its
  vectorised body and scalar tail and in the foreach path's ``torch._foreach_sign``; NumPy's
  ``np.sign`` would give NaN). So a NaN gradient leaves its weight and its step size unchanged
  and is remembered in ``prev``, where next step it makes a NaN product, that is ``f = 1`` again.
  This is torch's behaviour, kept for agreement with it; it differs from fastopt's Lion, whose
  sign follows ``np.sign`` (NaN stays NaN, as lion-pytorch would not: see :mod:`fastopt.lion`).
* ``Delta_t * sign(d_t)`` is exact (a product by 1, -1 or 0) and the products ``Delta * f``
  are rounded once, so fastopt and torch.optim agree **bit for bit** (torch's FMA contraction
  of ``theta + (-1 * sign) * Delta`` cannot round differently).

One difference from torch, in float32 only, with absurd factors: torch finds the flipped
elements (5) by comparing its multiplier with ``eta_minus`` rounded to float32. An ``eta_minus``
that rounds to 1.0 there (above ``1 - 2**-25``) also matches the multiplier 1 of every element
whose product is 0, the first step's included, so torch zeroes those derivatives too and never
moves a weight; one that rounds to 0.0 (below ``2**-150``) is replaced by torch's multiplier 1
and zeroes nothing. fastopt zeroes exactly the flips, ``s_t < 0``, and multiplies by the rounded
``eta_minus`` as it is.

Symbols
-------
=================  ================================  ================  ===========================
fastopt            paper                             torch.optim       optax
=================  ================================  ================  ===========================
``lr``             Delta_0                           ``lr``            ``learning_rate``
``etas``           eta-, eta+                        ``etas``          ``eta_minus, eta_plus``
``step_sizes``     Delta_min, Delta_max              ``step_sizes``    ``min_step_size, max_step_size``
``prev``           p = dE/dw (t-1)                   ``prev``          ``prev_updates`` (see below)
``step_size``      Delta_ij                          ``step_size``     ``step_sizes``
``step``           t                                 ``step``          (none)
=================  ================================  ================  ===========================

Defaults and conventions
------------------------
torch.optim's: ``lr=1e-2``, ``etas=(0.5, 1.2)`` (the paper's), ``step_sizes=(1e-6, 50)`` (the
paper's 50 for ``Delta_max``). There is no weight decay, as in torch. The learning rate is read
once, when a parameter's step sizes are created at its first step: changing ``lr`` later (a
scheduler) changes nothing, as in torch. The step counter ``t`` is not used by the update; it is
kept for torch's state layout. Validation is torch's (``lr >= 0``, ``0 < eta_minus < 1 <
eta_plus``, with its messages), plus finite values and ``0 <= Delta_min <= Delta_max`` (torch
checks none of the step sizes; ``Delta_max`` may be ``inf``).

Only ``convention="torch"`` is offered. Keras 3 has no Rprop. optax's ``rprop`` is not reproduced:
its ``scale_by_rprop`` (``optax/_src/transform.py``, in the version read) leaves the step size
unchanged **and unclamped** where the product is 0, keeps the previous *update*
(``Delta * sign(g)``) instead of the previous gradient, and returns, where the sign did not flip,
the update kept from the previous step rather than this step's.

References
----------
.. [1] M. Riedmiller, H. Braun. "A Direct Adaptive Method for Faster Backpropagation Learning:
       The RPROP Algorithm." IEEE International Conference on Neural Networks, 1993, pp. 586-591.
.. [2] C. Igel, M. Hüsken. "Improving the Rprop Learning Algorithm." Proceedings of the Second
       International ICSC Symposium on Neural Computation (NC 2000), pp. 115-121.
.. [3] C. Igel, M. Hüsken. "Empirical evaluation of the improved Rprop learning algorithms."
       Neurocomputing 50 (2003), pp. 105-123.
"""

from __future__ import annotations

import math
from typing import Any

from .._engine import Algorithm
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_flag, check_lr, check_real

__all__ = ["Rprop", "RpropAlgorithm"]


def _pair(name: str, value: object, meaning: str) -> tuple:
    """``value`` as a pair of real numbers, or ``TypeError`` naming the argument."""
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise TypeError(f"{name} must be a pair ({meaning}), got {value!r}")
    for index, item in enumerate(value):
        check_real(f"{name}[{index}]", item)
    return tuple(value)


class RpropAlgorithm(Algorithm):
    """Rprop's rules, for ``fastopt.Rprop`` and ``fastopt.torch.Rprop``; the maths is in
    :mod:`fastopt.rprop`."""

    kernel = "rprop"
    buffers = ("prev", "step_size")
    # its step counter counts steps for torch's state layout; the update does not use it
    required = ("step", "prev", "step_size")

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks, in torch's order and with its messages, then the step sizes'."""
        check_lr(group["lr"])
        etaminus, etaplus = _pair("etas", group["etas"], "etaminus, etaplus")
        if not 0.0 < etaminus < 1.0 < etaplus < math.inf:
            raise ValueError(f"Invalid eta values: {etaminus}, {etaplus}")
        smallest, largest = _pair("step_sizes", group["step_sizes"], "minimal, maximal step size")
        if not 0.0 <= smallest <= largest or smallest == math.inf:
            raise ValueError(f"Invalid step_sizes values: {smallest}, {largest}")
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("prev", "step_size")

    def fill(self, buffer: str, group: dict[str, Any]) -> float:
        """``prev`` starts at 0 and every step size at the learning rate (torch's ``full_like``)."""
        return group["lr"] if buffer == "step_size" else 0.0

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        cast = dtype.type
        etaminus, etaplus = group["etas"]
        smallest, largest = group["step_sizes"]
        return (
            bool(group["maximize"]),
            cast(etaplus),                                                             # (3)
            cast(etaminus),                                                            # (3)
            cast(smallest),                                                            # (4)
            cast(largest),                                                             # (4)
        )


class Rprop(Optimizer):
    """Rprop (resilient propagation, torch.optim's iRprop-); the maths is in :mod:`fastopt.rprop`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-2
        The step size ``Delta_0`` every weight starts from, read at its first step (4).
    etas : (float, float), default (0.5, 1.2)
        ``(eta_minus, eta_plus)``: the factors of the step size after a sign flip and after a
        repeated sign (3), with ``0 < eta_minus < 1 < eta_plus``.
    step_sizes : (float, float), default (1e-6, 50)
        ``(Delta_min, Delta_max)``: the bounds of every step size (4), ``0 <= Delta_min <=
        Delta_max`` (``Delta_max`` may be ``inf``).
    maximize : bool, default False
    convention : {"torch"} or None, default None
        A preset: torch's defaults for every argument not given explicitly (Keras has no Rprop;
        optax's is not reproduced, see :mod:`fastopt.rprop`).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``prev`` (the last derivative, 0 where it flipped) and
    ``step_size``, created on the parameter's first step, as in torch.
    """

    name = "rprop"
    algorithm = RpropAlgorithm()
    conventions = {"torch": dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50))}
    not_offered = {
        "keras": "Keras 3 has no Rprop",
        "optax": "optax's scale_by_rprop does not clamp where the product is 0 and returns the previous "
        "step's update; fastopt reproduces torch's iRprop- only",
    }

    def __init__(
        self,
        params,
        lr: float = 1e-2,
        etas: tuple[float, float] = (0.5, 1.2),
        step_sizes: tuple[float, float] = (1e-6, 50),
        maximize: bool = False,
        *,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
