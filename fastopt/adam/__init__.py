r"""Adam: momentum (a decaying mean of gradients) divided by RMSprop's root mean square.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}                             # L2 weight decay, if lambda != 0 (torch)
         theta_{t-1} = theta_{t-1} * (1 - eta * lambda)               # instead, with decoupled_weight_decay (AdamW, Keras)
    (3)  m_t = beta1 * m_{t-1} + (1 - beta1) * d_t                    # first moment (momentum), m_0 = 0
    (4)  v_t = beta2 * v_{t-1} + (1 - beta2) * d_t * d_t              # second moment (RMSprop), v_0 = 0
    (5)  vmax_t = max(vmax_{t-1}, v_t)                                # AMSGrad only; vmax_t then replaces v_t in (6) (torch, Keras)
         vmax_t = max(vmax_{t-1}, v_t / (1 - beta2^t))                # instead, with amsgrad_corrected_max (optax); (6)-(7) then take sqrt(1 - beta2^t) as 1
    (6)  s_t = sqrt(v_t) + epsilon_t                                  # epsilon_t = eps * sqrt(1 - beta2^t): eps on the corrected root (torch, optax)
         s_t = sqrt(v_t) + eps                                        # with eps_hat (Keras, TensorFlow): eps on the uncorrected root
    (7)  theta_t = theta_{t-1} - alpha_t * m_t / s_t                  # alpha_t = eta * sqrt(1 - beta2^t) / (1 - beta1^t)

(6)-(7) are the paper's Algorithm 1 and torch's ``(eta / (1 - beta1^t)) * m_t / (sqrt(v_t) /
sqrt(1 - beta2^t) + eps)`` with numerator and denominator multiplied by ``sqrt(1 - beta2^t)``: the
same quantity, computed with one division per element instead of two (the divisions and the
square root are what bound Adam's speed while its arrays fit in cache). The roundings differ from
torch's order by an ulp or so, as torch's own fused kernel does; fastopt's three backends agree
bit for bit. Keras's "epsilon hat" is the same form with ``epsilon_t = eps``, rounding for rounding.

The bias corrections ``1 - beta^t`` undo the pull of the zero initial moments towards zero.
They, ``1 - beta1``, ``1 - beta2`` and the step size ``alpha_t = eta * sqrt(1 - beta2^t) / (1 - beta1^t)``
of (7) are scalars computed once per step in float64 and cast to the arrays' dtype; the kernels
never call ``pow``.
Adam with ``beta1 = 0`` is RMSprop with bias correction.

Symbols
-------
==================  ==================  ==================  ==================  =================
fastopt             paper               torch.optim         Keras 3             optax
==================  ==================  ==================  ==================  =================
``lr``              eta (paper: alpha)  ``lr``              ``learning_rate``   ``learning_rate``
``betas[0]``        beta1               ``betas[0]``        ``beta_1``          ``b1``
``betas[1]``        beta2               ``betas[1]``        ``beta_2``          ``b2``
``eps``             epsilon             ``eps``             ``epsilon`` (hat)   ``eps``
``exp_avg``         m                   ``exp_avg``         ``momentum``        ``mu``
``exp_avg_sq``      v                   ``exp_avg_sq``      ``velocity``        ``nu``
``max_exp_avg_sq``  vmax                ``max_exp_avg_sq``  ``velocity_hat``    ``nu_max``
``step``            t                   ``step``            ``iterations + 1``  ``count``
==================  ==================  ==================  ==================  =================

Defaults and conventions
------------------------
torch.optim's for-loop implementation: ``lr=1e-3``, ``betas=(0.9, 0.999)``, ``eps=1e-8`` added to
the **bias-corrected** root (6), as in Algorithm 1 of the paper; ``weight_decay`` is an L2 term
added to the gradient (2) and therefore rescaled by ``1/s_t`` like the gradient. For decay that
is not rescaled, use :class:`fastopt.AdamW` or ``decoupled_weight_decay=True`` (torch's flag of
the same name). The step counter ``t`` is a Python integer (torch's float32 counter stops at 2**24).

Three flags reproduce what the same name computes elsewhere:

* ``eps_hat`` (6)-(7): Keras and TensorFlow add eps to the **uncorrected** ``sqrt(v_t)`` and fold
  both corrections into the step size, ``eta * sqrt(1 - beta2^t) / (1 - beta1^t)`` (the paper's
  "epsilon hat", end of its section 2). This is torch's update with a step-dependent
  ``eps * sqrt(1 - beta2^t)``: at ``t = 1`` with ``beta2 = 0.999`` Keras's eps acts like one 31.6
  times smaller, so the first steps differ most where ``v`` is tiny.
* ``amsgrad_corrected_max`` (5): torch and Keras take the maximum over the **raw** ``v_t`` and
  divide it by the current ``1 - beta2^t``; optax's ``amsgrad`` (``bias_correction_nu=True``, its
  default) takes the maximum of the **corrected** ``v_hat_t``. Early maxima are then larger (each
  is divided by a smaller correction when it is taken), so optax's AMSGrad steps less.
* ``decoupled_weight_decay`` (2): the weights shrink by ``1 - eta * lambda`` before the step
  (torch's AdamW; Keras's ``weight_decay`` in every optimizer).

``convention="keras"`` sets ``eps_hat`` and decoupled decay with Keras's ``eps=1e-7``;
``convention="optax"`` sets ``amsgrad_corrected_max`` (it acts only with ``amsgrad=True``, which
is ``optax.amsgrad``) with ``eps=1e-8``; ``convention="torch"`` gives torch's defaults. Explicit
arguments override a preset. ``eps_hat`` and ``amsgrad_corrected_max`` cannot be combined (no
library does, and the corrections would be applied twice). Not reproduced: optax's ``eps_root``
(0 by default) and ``nesterov`` (that is optax's ``nadam``), and Keras's moment updates written
as ``m + (g - m) * (1 - beta1)``, which are the same numbers up to rounding.

References
----------
.. [1] D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015,
       arXiv:1412.6980 (Algorithm 1).
.. [2] S. J. Reddi, S. Kale, S. Kumar. "On the Convergence of Adam and Beyond." ICLR 2018
       (AMSGrad).
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm, moment_scalars, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_adam_family, check_flag

__all__ = ["Adam", "AdamAlgorithm"]


FLAGS = ("eps_hat", "amsgrad_corrected_max", "decoupled_weight_decay")


class AdamAlgorithm(Algorithm):
    """Adam's rules (AdamW's too: decoupled decay is its flag), for ``fastopt.Adam``,
    ``fastopt.AdamW`` and ``fastopt.torch.Adam``; the maths is in :mod:`fastopt.adam`."""

    kernel = "adam"
    buffers = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    required = ("step", "exp_avg", "exp_avg_sq")
    flag_defaults = dict.fromkeys(FLAGS, False)

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks for Adam and AdamW, in torch's order, then the convention flags."""
        check_adam_family(group)
        check_flag("amsgrad", group["amsgrad"])
        check_flag("maximize", group["maximize"])
        for flag in FLAGS:
            check_flag(flag, group[flag])
        if group["eps_hat"] and group["amsgrad_corrected_max"]:
            raise ValueError(
                "eps_hat (Keras) and amsgrad_corrected_max (optax) cannot both be set: "
                "the bias correction would be applied twice"
            )

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        # the maximum (5) only with AMSGrad, also when it is switched on later (torch: KeyError)
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq" if group["amsgrad"] else None)

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        """``maximize``, (2)'s ``weight_decay`` and ``decay_factor``, then the constants of (3)-(5)."""
        return (
            bool(group["maximize"]),
            *weight_decay_scalars(group, dtype),
            *moment_scalars(group, dtype),
            bool(group["amsgrad"]),
            bool(group["amsgrad_corrected_max"]),
        )

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """The arguments of (5)-(7) at step ``t``: ``bias_correction2``, ``eps_t`` and ``step_size``
        (the bias corrections of the zero-initialised moments, in float64)."""
        beta1, beta2 = group["betas"]
        bias_correction1 = 1 - beta1**t                                               # (7)
        bias_correction2 = 1 - beta2**t                                               # (5), (6)
        lr, eps = group["lr"], group["eps"]
        if group["eps_hat"]:  # Keras: eps on the uncorrected root, both corrections in the step
            eps_t = eps                                                                # (6)
            step_size = lr * bias_correction2**0.5 / bias_correction1                 # (7)
        elif group["amsgrad_corrected_max"] and group["amsgrad"]:  # optax: vmax is corrected (5)
            eps_t = eps                                                                # (6)
            step_size = lr / bias_correction1                                          # (7)
        else:
            eps_t = eps * bias_correction2**0.5                                        # (6)
            step_size = lr * bias_correction2**0.5 / bias_correction1                 # (7)
        return bias_correction2, eps_t, step_size


class Adam(Optimizer):
    """Adam (and AMSGrad) with L2 weight decay; the maths is in :mod:`fastopt.adam`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first (3) and second (4) moments, each in [0, 1).
    eps : float, default 1e-8
        Added to the bias-corrected root (6), or with ``eps_hat`` to the uncorrected one.
    weight_decay : float, default 0
        ``lambda`` (2): an L2 penalty added to the gradient, or with ``decoupled_weight_decay`` a
        decay of the weights by ``1 - lr * weight_decay`` per step.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (5).
    maximize : bool, default False
    eps_hat : bool, default False
        Keras/TensorFlow's "epsilon hat": eps on the uncorrected root (6)-(7).
    amsgrad_corrected_max : bool, default False
        AMSGrad's maximum over the bias-corrected ``v_hat`` (5): optax.
    decoupled_weight_decay : bool, default False
        Weight decay shrinks the weights before the step (2): torch's AdamW, Keras.
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly.
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq`` and ``max_exp_avg_sq``
    (AMSGrad), created on the parameter's first step.
    """

    name = "adam"
    algorithm = AdamAlgorithm()
    conventions = {
        "torch": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, **AdamAlgorithm.flag_defaults),
        "keras": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, eps_hat=True, amsgrad_corrected_max=False,
                      decoupled_weight_decay=True),
        "optax": dict(betas=(0.9, 0.999), eps=1e-8, eps_hat=False, amsgrad_corrected_max=True,
                      decoupled_weight_decay=False),
    }

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
        *,
        eps_hat: bool = False,
        amsgrad_corrected_max: bool = False,
        decoupled_weight_decay: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
