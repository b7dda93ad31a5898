r"""AdaBelief: Adam whose second moment is the spread of the gradient around its own mean.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  theta_{t-1} = theta_{t-1} * (1 - eta * lambda)               # decoupled weight decay (the default, as the authors' package)
         theta_{t-1} = theta_{t-1} * (1 - lambda)                     # instead, with fixed_decay: a decay that ignores eta
         d_t = d_t + lambda * theta_{t-1}                             # instead, without decoupled_weight_decay: an L2 term
    (3)  m_t = beta1 * m_{t-1} + (1 - beta1) * d_t                    # first moment (momentum), m_0 = 0
    (4)  r_t = d_t - m_t                                              # the surprise: the gradient's deviation from the NEW mean
    (5)  s_t = beta2 * s_{t-1} + (1 - beta2) * (r_t * r_t) + epsilon_r  # the belief, s_0 = 0; epsilon_r (eps_root) is kept in s_t
    (6)  smax_t = max(smax_{t-1}, s_t)                                # AMSGrad only; smax_t then replaces s_t in (8)
    (7)  mhat_t = m_t / (1 - beta1^t)                                 # bias corrections of the zero initial moments
    (8)  shat_t = s_t / (1 - beta2^t)
    (9)  theta_t = theta_{t-1} - eta * (mhat_t / (sqrt(shat_t) + epsilon))

Adam divides the momentum by the root mean square of the gradients; AdaBelief [1]_ divides it by
the root mean square of ``g_t - m_t``, how far each gradient lands from the prediction the
momentum made. Where the gradients agree with their mean (a smooth slope) ``s_t`` is small and
the step is large; where they scatter (noise, or a sharp valley that flips their sign) ``s_t`` is
large and the step small. The deviation is taken from the mean *after* it has seen the current
gradient (4), as in the paper's Algorithm 2, optax and the authors' package. ``epsilon_r`` is
added to ``s_t`` itself and kept there (5), so it accumulates in the state, ``s_t >= epsilon_r *
(1 + beta2 + ... + beta2^(t-1))``; ``epsilon`` is added to the bias-corrected root (9).

The arithmetic is optax's ``scale_by_belief``, operation for operation: ``(1 - beta2)``
multiplies the rounded square ``r_t * r_t`` (5), ``epsilon_r`` is added after the moving average,
both moments are divided by their bias corrections (7), (8) before the square root, and the step
is ``eta`` times the rounded quotient (9): three divisions per element where fastopt's Adam needs
one, the price of optax's rounding. The bias corrections ``1 - beta^t``, ``1 - beta1``,
``1 - beta2`` and ``1 - eta * lambda`` are scalars computed once per step in float64 and cast to
the arrays' dtype; the kernels never call ``pow``. Two things make optax's results differ from
fastopt's by an ulp here and there: optax (jax with x64) computes ``beta^t`` by repeated squaring
where fastopt uses Python's ``pow`` (``0.9^4`` differs in the last bit), and XLA compiles the
division by a scalar of (7), (8) into a multiplication by its reciprocal for some pytrees (a
single array) and not for others (a list of arrays), so optax itself rounds two ways. Where
neither applies (a list of arrays, the first three steps at the default betas) fastopt's float64
weights and state are optax's bits (tested); in float32 an element or so in a thousand differs by
an ulp from XLA's compiled arithmetic.

Symbols
-------
====================  ==============  ==================  ===================================
fastopt               paper           optax               authors' package (adabelief-pytorch)
====================  ==============  ==================  ===================================
``lr``                alpha           ``learning_rate``   ``lr``
``betas``             beta1, beta2    ``b1``, ``b2``      ``betas``
``eps``               epsilon         ``eps``             ``eps`` (both places)
``eps_root``          epsilon (in s)  ``eps_root``        ``eps`` (both places)
``weight_decay``      --              --                  ``weight_decay``
``exp_avg``           m               ``mu``              ``exp_avg``
``exp_avg_var``       s               ``nu``              ``exp_avg_var``
``max_exp_avg_var``   --              --                  ``max_exp_avg_var``
``step``              t               ``count``           ``step``
====================  ==============  ==================  ===================================

Defaults and conventions
------------------------
optax's ``adabelief`` and the authors' package agree: ``lr=1e-3`` (the package's; optax has
none), ``betas=(0.9, 0.999)``, ``eps=1e-16`` and ``eps_root=1e-16`` (the package uses its one
``eps`` in both places; optax notes the paper's as ``eps=1e-8``, ``eps_root=0``, and the
package's notice recommends ``eps=1e-8`` where SGD beats Adam, e.g. CNNs for images). ``weight_decay=0``; when it is not 0 it is decoupled by default (2), the
authors' ``weight_decouple=True``: the weights shrink by ``1 - lr * weight_decay`` before the
step (with ``fixed_decay=True``, the authors' option, by ``1 - weight_decay`` whatever ``lr``);
``decoupled_weight_decay=False`` adds an L2 term to the gradient instead (``fixed_decay`` then
does nothing, as in the package). optax's
``adabelief`` has no weight decay. ``amsgrad`` (6) is the authors' package's: the maximum of the
raw ``s_t`` (``epsilon_r`` included), divided by the current correction; optax has none.
``convention="optax"`` sets optax's betas and eps (the defaults); torch.optim and Keras have no
AdaBelief.

Not reproduced, from the authors' package: ``rectify=True`` (its default: RAdam's rectification,
with an SGD step in the first steps); ``fastopt.torch.AdaBelief`` refuses it with an error naming
the option (so its default is ``rectify=False``, where the package's is True). The package rounds ``sqrt(s_t) / sqrt(1 - beta2^t) + epsilon`` and multiplies by
``eta / (1 - beta1^t)`` after dividing: the same numbers up to a few ulp. From optax:
``nesterov=True``. ``maximize`` (in neither) negates the gradient first, as in every fastopt
optimizer.

References
----------
.. [1] J. Zhuang, T. Tang, Y. Ding, S. Tatikonda, N. Dvornek, X. Papademetris, J. S. Duncan.
       "AdaBelief Optimizer: Adapting Stepsizes by the Belief in Observed Gradients." NeurIPS
       2020, arXiv:2010.07468 (Algorithm 2).
.. [2] optax 0.2.8, ``optax.adabelief`` and ``optax.scale_by_belief``
       (``optax/_src/alias.py``, ``optax/_src/transform.py``).
.. [3] J. Zhuang. adabelief-pytorch 0.2.1, GitHub juntang-zhuang/Adabelief-Optimizer,
       ``adabelief_pytorch/AdaBelief.py``.
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm, moment_scalars, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_adam_family, check_flag, check_nonnegative

__all__ = ["AdaBelief", "AdaBeliefAlgorithm"]


class AdaBeliefAlgorithm(Algorithm):
    """AdaBelief's rules, for ``fastopt.AdaBelief`` and ``fastopt.torch.AdaBelief``; the maths is
    in :mod:`fastopt.adabelief`."""

    kernel = "adabelief"
    buffers = ("exp_avg", "exp_avg_var", "max_exp_avg_var")
    required = ("step", "exp_avg", "exp_avg_var")

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks for Adam, in torch's order (the authors' package makes the first
        three with the same messages), then ``eps_root`` and the flags."""
        check_adam_family(group)
        eps_root = group["eps_root"]
        check_nonnegative("eps_root", eps_root, f"Invalid eps_root value: {eps_root}")
        check_flag("amsgrad", group["amsgrad"])
        check_flag("maximize", group["maximize"])
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])
        check_flag("fixed_decay", group["fixed_decay"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        # the maximum (6) only with AMSGrad, also when it is switched on later
        return ("exp_avg", "exp_avg_var", "max_exp_avg_var" if group["amsgrad"] else None)

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        """``maximize``, (2)'s ``weight_decay`` and ``decay_factor``, the constants of (3) and
        (5), ``amsgrad``, then ``eta`` and ``epsilon`` of (9)."""
        cast = dtype.type
        if group["fixed_decay"] and group["decoupled_weight_decay"] and group["weight_decay"] != 0:
            decay = (cast(0.0), cast(1.0 - group["weight_decay"]))                      # (2), fixed_decay
        else:
            decay = weight_decay_scalars(group, dtype)                                 # (2)
        return (
            bool(group["maximize"]),
            *decay,
            *moment_scalars(group, dtype),
            cast(group["eps_root"]),
            bool(group["amsgrad"]),
            cast(group["lr"]),
            cast(group["eps"]),
        )

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """The bias corrections of (7) and (8) at step ``t``, in float64."""
        beta1, beta2 = group["betas"]
        return 1 - beta1**t, 1 - beta2**t                                              # (7), (8)


class AdaBelief(Optimizer):
    """AdaBelief (and its AMSGrad variant) with decoupled weight decay; the maths is in
    :mod:`fastopt.adabelief`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta`` (9).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the mean (3) and of the belief ``s`` (5), each in [0, 1).
    eps : float, default 1e-16
        Added to the bias-corrected root (9) (optax's and the authors' default).
    weight_decay : float, default 0
        ``lambda`` (2): the weights shrink by ``1 - lr * weight_decay`` per step, or, with
        ``decoupled_weight_decay=False``, an L2 penalty added to the gradient.
    amsgrad : bool, default False
        Use the running maximum of ``s`` (6), as the authors' package.
    maximize : bool, default False
    eps_root : float, default 1e-16
        Added to ``s_t`` itself and kept in the state (5) (optax's ``eps_root``; the authors'
        package uses ``eps`` here too).
    decoupled_weight_decay : bool, default True
        The authors' ``weight_decouple``: decay the weights (AdamW) rather than the gradient (2).
    fixed_decay : bool, default False
        The authors' option: the decoupled decay multiplies the weights by ``1 - weight_decay``,
        whatever ``lr`` (2).
    convention : {"optax"} or None, default None
        A preset: optax's defaults for every argument not given explicitly (torch.optim and
        Keras have no AdaBelief).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_var`` and ``max_exp_avg_var``
    (AMSGrad), the authors' names, created on the parameter's first step.
    """

    name = "adabelief"
    algorithm = AdaBeliefAlgorithm()
    conventions = {"optax": dict(betas=(0.9, 0.999), eps=1e-16, eps_root=1e-16)}
    not_offered = {"torch": "torch.optim has no AdaBelief (fastopt's defaults are optax's and the authors' package's)",
                   "keras": "Keras 3 has no AdaBelief"}

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-16,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
        *,
        eps_root: float = 1e-16,
        decoupled_weight_decay: bool = True,
        fixed_decay: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
