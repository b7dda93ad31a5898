r"""SparseAdam: Adam that updates only the rows a sparse gradient names ("lazy" Adam).

The update, for step :math:`t \ge 1`, on every element of the rows the gradient names; every other
element of the weights and moments is left as it is (tags are used in ``reference.py``,
``_numba.py`` and ``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  m_t = m_{t-1} + (d_t - m_{t-1}) * (1 - beta1)              # the moving average, written as torch writes it
    (3)  v_t = v_{t-1} + (d_t * d_t - v_{t-1}) * (1 - beta2)
    (4)  theta_t = theta_{t-1} - (eta * sqrt(1 - beta2^t) / (1 - beta1^t)) * (m_t / (sqrt(v_t) + eps))

An embedding table has a row per word of a vocabulary, and a batch looks up a few hundred of
them: the gradient is zero on every other row. Adam would still decay every row's moments and
move every row's weights (a step of ``m / (sqrt(v) + eps)`` does not vanish when ``g = 0``), which
costs a pass over the whole table per step and keeps moving words the batch never saw. SparseAdam
updates the named rows only: a row's moments decay only at the steps that touch it, so they
average over *its* gradients, not over time. The bias corrections in (4) use the parameter's step
count ``t`` (its steps with a gradient, as torch counts them), not the row's own count: an
approximation that torch.optim, TensorFlow's ``LazyAdam`` and fastopt share. ``python -m fastopt
show sparse_adam`` prints the kernels.

**A sparse gradient** is ``(indices, values)`` in the NumPy API: ``indices`` a 1-D integer array
of row numbers along the parameter's first axis and ``values`` the gradient of those rows, shape
``(len(indices), *param.shape[1:])``; a row named twice gets the sum of its values (torch's
``coalesce``). ``fastopt.torch.SparseAdam`` takes torch's sparse COO gradients
(``nn.Embedding(..., sparse=True)``), as torch.optim.SparseAdam does. The step engine gathers the
named rows of the parameter and of ``exp_avg`` and ``exp_avg_sq`` into contiguous arrays, runs
the kernel on those and writes them back (``fastopt/_engine/rows.py``): the three kernels are
element-wise, as every other optimizer's.

The arithmetic is torch.optim's, written as torch writes it: the moments move by ``(d - m) *
(1 - beta)`` (2)-(3), not ``beta * m + (1 - beta) * d`` as in Adam (the two round differently),
and the step size is computed once per step in float64, ``eta * sqrt(1 - beta2^t) / (1 -
beta1^t)``, and cast to the arrays' dtype; eps is added to the uncorrected root.

Symbols
-------
==============  ==========  ================  ===========================================
fastopt         paper       torch.optim       TensorFlow Addons ``LazyAdam``
==============  ==========  ================  ===========================================
``lr``          alpha       ``lr``            ``learning_rate``
``betas``       beta1, 2    ``betas``         ``beta_1``, ``beta_2``
``eps``         epsilon     ``eps``           ``epsilon``
``exp_avg``     m           ``exp_avg``       ``m``
``exp_avg_sq``  v           ``exp_avg_sq``    ``v``
``step``        t           ``step``          ``iterations + 1``
==============  ==========  ================  ===========================================

Defaults and conventions
------------------------
torch.optim's: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, no weight decay. torch requires
``lr > 0`` and ``eps > 0`` (strictly, unlike Adam) and betas in ``[0, 1)``, with its messages.
Keras 3 and optax have no sparse Adam (optax's updates are dense), so ``convention="torch"`` is the
only preset. Dense gradients are refused, as in torch (use :class:`fastopt.Adam`).

References
----------
.. [1] D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015,
       arXiv:1412.6980.
.. [2] torch.optim.SparseAdam (PyTorch 2.13) and ``torch.optim._functional.sparse_adam``.
"""

from __future__ import annotations

import math
from typing import Any

from .._engine import Algorithm
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_betas, check_flag, check_real

__all__ = ["SparseAdam", "SparseAdamAlgorithm"]


class SparseAdamAlgorithm(Algorithm):
    """SparseAdam's rules, for ``fastopt.SparseAdam`` and ``fastopt.torch.SparseAdam``; the maths
    is in :mod:`fastopt.sparse_adam`."""

    kernel = "sparse_adam"
    buffers = ("exp_avg", "exp_avg_sq")
    required = ("step", "exp_avg", "exp_avg_sq")
    sparse = True
    low_precision = False  # rows gathered and written back: not with 16-bit rounding (yet)

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks, in torch's order (``lr`` and ``eps`` strictly positive)."""
        for name, label in (("lr", "learning rate"), ("eps", "epsilon value")):
            check_real(name, group[name])
            if not 0.0 < group[name] < math.inf:
                raise ValueError(f"Invalid {label}: {group[name]}")
        check_betas(group["betas"])
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("exp_avg", "exp_avg_sq")

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        beta1, beta2 = group["betas"]
        cast = dtype.type
        return bool(group["maximize"]), cast(1.0 - beta1), cast(1.0 - beta2), cast(group["eps"])

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """(4)'s step size at step ``t``, computed as torch computes it."""
        beta1, beta2 = group["betas"]
        bias_correction1 = 1 - beta1**t                                               # (4)
        bias_correction2 = 1 - beta2**t                                               # (4)
        return (group["lr"] * math.sqrt(bias_correction2) / bias_correction1,)        # (4)


class SparseAdam(Optimizer):
    """Adam on the rows a sparse gradient names; the maths is in :mod:`fastopt.sparse_adam`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable, at least 1-D), or
        parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta`` (> 0).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the two moments (2)-(3), each in [0, 1).
    eps : float, default 1e-8
        Added to the root of the second moment (4) (> 0).
    maximize : bool, default False
    convention : {"torch"} or None, default None
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    ``step(grads)`` takes, per parameter, ``None`` or ``(indices, values)``: the row numbers
    (along the first axis) and their gradient, shape ``(len(indices), *param.shape[1:])``.
    State per parameter: ``step`` (int), ``exp_avg`` and ``exp_avg_sq``, created on the
    parameter's first step; rows no gradient has named keep their zeros.
    """

    name = "sparse_adam"
    algorithm = SparseAdamAlgorithm()
    conventions = {"torch": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8)}
    not_offered = {"keras": "Keras has no sparse Adam", "optax": "optax has no sparse Adam (its updates are dense)"}

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        maximize: bool = False,
        *,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
