r"""Muon: momentum, then the update orthogonalised by a Newton-Schulz iteration, for matrices.

The update of one ``rows x cols`` matrix, for step :math:`t \ge 1` (tags are used in
``reference.py``, ``_numba.py`` and ``_cython.pyx``)::

    (1)  B_t = lerp(B_{t-1}, g_t, 1 - mu)                # mu * B_{t-1} + (1 - mu) * g_t, B_0 = 0
    (2)  U_t = lerp(g_t, B_t, mu) if nesterov else B_t   # Nesterov: g_t + mu * (B_t - g_t)
    (3)  X_0 = U_t / max(norm(U_t), eps)                 # Frobenius norm; transposed if rows > cols
    (4)  A_s = X_s X_s^T                                 # s = 0 .. ns_steps - 1: the Gram matrix
    (5)  G_s = b * A_s + c * (A_s A_s)
    (6)  X_{s+1} = a * X_s + G_s X_s                     # p(X) = a X + b (X X^T) X + c (X X^T)^2 X
    (7)  O_t = X_{ns_steps}                              # transposed back to rows x cols
    (8)  theta = theta_{t-1} * (1 - eta * lambda)        # decoupled weight decay
    (9)  theta_t = theta - (eta * r) * O_t               # r = sqrt(max(1, rows / cols)) ("original"),
                                                         # or 0.2 * sqrt(max(rows, cols)) ("match_rms_adamw")

``lerp(x, y, w)`` is torch's: ``x + w * (y - x)`` if ``|w| < 0.5``, else ``y - (y - x) * (1 - w)``.
Muon [1]_ replaces the momentum update of a hidden layer's weight matrix by the nearest
semi-orthogonal matrix: its singular values, which in a momentum matrix span orders of magnitude
(a few directions dominate), are all pushed towards 1 by the odd polynomial
``p(s) = a s + b s^3 + c s^5`` applied ``ns_steps`` times (4)-(6); every direction of the update
then moves the weights by about the same amount. The coefficients ``(3.4445, -4.7750, 2.0315)``
make ``p`` as steep as possible at 0: after 5 steps the singular values lie roughly in
[0.7, 1.2] rather than at exactly 1 (``python -m fastopt tour --only 12`` shows them). The
normalisation (3) puts every singular value in [0, 1] first. The learning-rate ratio ``r`` of (9)
makes the update's root mean square independent of the matrix's aspect ("original", Keller
Jordan's), or close to AdamW's 0.2 ("match_rms_adamw", Moonshot's [2]_), so that AdamW's learning
rate and weight decay carry over.

This is ``torch.optim.Muon`` (PyTorch 2.13) with one deliberate difference: **torch runs
(3)-(6) in bfloat16** (it casts the update with ``.bfloat16()``: 8 bits of mantissa, about 3
significant digits), fastopt in the parameter's dtype. Their updates then differ by bfloat16's
rounding (relative differences of about 1e-2 per element); with torch's cast removed, float64
agrees to about 1e-13 (``tests/test_muon.py``). Everything else is torch's arithmetic in torch's
order: the two ``lerp`` forms, ``clamp(min=eps)`` (a NaN norm stays NaN), ``addmm``'s
``beta * M + alpha * (P @ Q)``, then ``param.mul_(1 - lr * weight_decay)`` and
``param.add_(O, alpha=-lr * r)``; ``1 - momentum``, ``1 - lr * weight_decay`` and ``lr * r`` are
computed in float64 and rounded once to the dtype.

**Sums.** The norm of (3) follows rule 2 of :mod:`fastopt._sums` and each matrix product of
(4)-(6) its rule 4: every element of ``P @ Q`` is a float64 sum of the float64 products
``P[i, k] * Q[k, j]`` in 8 lanes along ``k``, combined by one fixed tree and rounded once. No BLAS
(its order of additions changes with the size, the CPU and the threads), so the three twins agree
bit for bit, and a step's bits never depend on the thread count: each parameter is one kernel call
on one thread. The compiled twins read both operands of a product along ``k`` (the right one
transposed), compute 2 x 2 outputs at a time (2 x 4 in the AVX-512 build), each with its own
8 lanes in vector registers, and compute one triangle of the symmetric products
``X X^T`` and ``A A``. The iteration runs in the wide orientation (``X`` is ``min x max``), so
the Gram matrices are the small ones, as in torch.

Symbols
-------
======================  ================  =========================  ==========================
fastopt                 paper / post      torch (``Muon``)           Keller Jordan's ``muon.py``
======================  ================  =========================  ==========================
``lr``                  eta               ``lr``                     ``lr``
``momentum``            mu                ``momentum``               ``momentum`` (``beta``)
``nesterov``            --                ``nesterov``               ``nesterov``
``weight_decay``        lambda            ``weight_decay``           ``weight_decay``
``ns_coefficients``     (a, b, c)         ``ns_coefficients``        ``a, b, c``
``ns_steps``            N                 ``ns_steps``               ``ns_steps`` / ``steps``
``eps``                 epsilon           ``eps``                    ``eps``
``adjust_lr_fn``        r                 ``adjust_lr_fn``           ``max(1, rows/cols)**0.5``
``momentum_buffer``     B                 ``momentum_buffer``        ``momentum_buffer``
======================  ================  =========================  ==========================

Defaults and conventions
------------------------
torch's: ``lr=1e-3``, ``weight_decay=0.1``, ``momentum=0.95``, ``nesterov=True``,
``ns_coefficients=(3.4445, -4.7750, 2.0315)``, ``eps=1e-7``, ``ns_steps=5``,
``adjust_lr_fn=None`` ("original"). Validation: torch's checks and messages (``lr``,
``momentum`` and ``weight_decay`` >= 0, ``adjust_lr_fn`` None, "original" or "match_rms_adamw";
``ns_steps < 100``), each also finite, plus ``eps >= 0``, ``ns_coefficients`` three finite
numbers, ``ns_steps`` an int >= 0 and ``nesterov`` a bool. **Matrices only**: a parameter that is
not 2-D is refused when it is registered (torch's rule; use AdamW for biases and embeddings), an
error naming it. State per parameter: ``momentum_buffer`` only (no step counter), as torch's.

References
----------
.. [1] K. Jordan, Y. Jin, V. Boza, J. You, F. Cesista, L. Newhouse, J. Bernstein. "Muon: An
       optimizer for hidden layers in neural networks." 2024,
       https://kellerjordan.github.io/posts/muon/
.. [2] J. Liu et al. (Moonshot AI). "Muon is Scalable for LLM Training." arXiv:2502.16982, 2025.
.. [3] torch.optim.Muon (PyTorch 2.13), ``torch/optim/_muon.py``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .._engine import Algorithm
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_flag, check_real
from .reference import workspace_length

__all__ = ["Muon", "MuonAlgorithm"]

ADJUST_LR_FNS = (None, "original", "match_rms_adamw")


def _checked(name: str, value: object, message: str) -> None:
    """torch's ``0 <= value`` with its message (NaN fails it), then finite."""
    check_real(name, value)
    if not 0.0 <= value:  # type: ignore[operator]
        raise ValueError(message)
    if not math.isfinite(value):  # type: ignore[arg-type]
        raise ValueError(f"{name} must be finite, got {value!r}")


class MuonAlgorithm(Algorithm):
    """Muon's rules, for ``fastopt.Muon`` and ``fastopt.torch.Muon``; the maths is in
    :mod:`fastopt.muon`."""

    kernel = "muon"
    buffers = ("momentum_buffer",)
    counters = ()  # torch keeps no step counter for Muon
    required = ("momentum_buffer",)
    whole_tensor = True  # the norm (3) and the matrix products (4)-(6) take the whole matrix

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim.Muon's checks, in torch's order and with its messages, then fastopt's."""
        lr = group["lr"]
        _checked("lr", lr, f"Learning rate should be >= 0 but is: {lr}")
        momentum = group["momentum"]
        _checked("momentum", momentum, f"momentum should be >= 0 but is: {momentum}")
        weight_decay = group["weight_decay"]
        _checked("weight_decay", weight_decay, f"weight decay should be >= 0 but is: {weight_decay}")
        adjust_lr_fn = group["adjust_lr_fn"]
        if not (adjust_lr_fn is None or (isinstance(adjust_lr_fn, str) and adjust_lr_fn in ADJUST_LR_FNS)):
            raise ValueError(f"Adjust learning rate function {adjust_lr_fn} is not supported "
                             "(adjust_lr_fn must be None, 'original' or 'match_rms_adamw')")
        check_flag("nesterov", group["nesterov"])
        coefficients = group["ns_coefficients"]
        if not isinstance(coefficients, (tuple, list)) or len(coefficients) != 3:
            raise ValueError(f"ns_coefficients must be a tuple of exactly 3 values (a, b, c), got {coefficients!r}")
        for name, value in zip("abc", coefficients):
            check_real(f"ns_coefficients ({name})", value)
            if not math.isfinite(value):
                raise ValueError(f"ns_coefficients ({name}) must be finite, got {value!r}")
        eps = group["eps"]
        _checked("eps", eps, f"eps should be >= 0 but is: {eps}")
        ns_steps = group["ns_steps"]
        if isinstance(ns_steps, (bool, np.bool_)) or not isinstance(ns_steps, numbers.Integral):
            raise TypeError(f"ns_steps must be an int, got {type(ns_steps).__name__} {ns_steps!r}")
        if ns_steps >= 100:
            raise ValueError(f"Number of steps must be less than 100 for computational efficiency (ns_steps = {ns_steps})")
        if ns_steps < 0:
            raise ValueError(f"ns_steps must be >= 0, got {ns_steps}")

    def check_shape(self, where: str, shape: tuple[int, ...]) -> None:
        """Matrices only, as torch."""
        if len(shape) != 2:
            raise ValueError(
                f"{where} has shape {tuple(shape)}: Muon only supports 2D parameters (matrices); optimize "
                "biases, embeddings and other parameters with another optimizer (AdamW)"
            )

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("momentum_buffer",)

    def workspace(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, ...]:
        """The compiled twins' scratch matrices for one step (the reference ignores it)."""
        return (np.empty(workspace_length(*shape), dtype),)

    def shape_arguments(self, shape: tuple[int, ...]) -> tuple:
        """``rows, cols`` of the matrix."""
        return shape[0], shape[1]

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        """``nesterov``, ``mu`` and the lerp weight ``1 - mu`` (1)-(2), ``a, b, c`` (5)-(6),
        ``eps`` (3), ``ns_steps``, the decay factor ``1 - eta * lambda`` (8), then ``eta`` as a
        float64 number and the learning-rate ratio's rule (0: "original", 1: "match_rms_adamw")
        (9)."""
        cast = dtype.type
        a, b, c = group["ns_coefficients"]
        return (
            bool(group["nesterov"]),                                                   # (2)
            cast(group["momentum"]),                                                   # (2)
            cast(1.0 - group["momentum"]),                                             # (1)
            cast(a), cast(b), cast(c),                                                 # (5), (6)
            cast(group["eps"]),                                                        # (3)
            int(group["ns_steps"]),                                                    # (4)
            cast(1.0 - group["lr"] * group["weight_decay"]),                           # (8)
            float(group["lr"]),                                                        # (9)
            1 if group["adjust_lr_fn"] == "match_rms_adamw" else 0,                    # (9)
        )


class Muon(Optimizer):
    """Muon (torch.optim's, Newton-Schulz in the parameter's dtype); the maths is in
    :mod:`fastopt.muon`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        2-D arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter
        groups.
    lr : float, default 1e-3
        ``eta`` (9), scaled by the ratio ``adjust_lr_fn`` picks.
    weight_decay : float, default 0.1
        ``lambda``: the weights shrink by ``1 - eta * lambda`` per step (8).
    momentum : float, default 0.95
        ``mu`` (1)-(2).
    nesterov : bool, default True
        Orthogonalise ``lerp(g, B, mu)`` rather than ``B`` (2).
    ns_coefficients : (float, float, float), default (3.4445, -4.7750, 2.0315)
        ``a, b, c`` of the Newton-Schulz polynomial (5)-(6).
    eps : float, default 1e-7
        The floor of the update's norm (3).
    ns_steps : int, default 5
        Newton-Schulz iterations (4)-(6), fewer than 100.
    adjust_lr_fn : {None, "original", "match_rms_adamw"}, default None
        The learning-rate ratio of (9); None is "original".
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``momentum_buffer``, created on the parameter's first step (torch's
    name; no step counter). Each parameter is one kernel call on one thread.
    """

    name = "muon"
    algorithm = MuonAlgorithm()
    conventions = {"torch": dict(lr=1e-3, weight_decay=0.1, momentum=0.95, nesterov=True,
                                 ns_coefficients=(3.4445, -4.7750, 2.0315), eps=1e-7, ns_steps=5, adjust_lr_fn=None)}
    not_offered = {
        "keras": "Keras 3 has no Muon (fastopt reproduces torch.optim.Muon)",
        "optax": "optax's contrib muon was not compared with fastopt; fastopt reproduces torch.optim.Muon",
    }

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        weight_decay: float = 0.1,
        momentum: float = 0.95,
        nesterov: bool = True,
        ns_coefficients: tuple[float, float, float] = (3.4445, -4.7750, 2.0315),
        eps: float = 1e-7,
        ns_steps: int = 5,
        adjust_lr_fn: str | None = None,
        *,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
