r"""Adam: momentum (a decaying mean of gradients) divided by RMSprop's root mean square.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}                             # L2 weight decay, if lambda != 0
    (3)  m_t = beta1 * m_{t-1} + (1 - beta1) * d_t                    # first moment (momentum), m_0 = 0
    (4)  v_t = beta2 * v_{t-1} + (1 - beta2) * d_t * d_t              # second moment (RMSprop), v_0 = 0
    (5)  vmax_t = max(vmax_{t-1}, v_t)                                # AMSGrad only; vmax_t then replaces v_t in (6)
    (6)  s_t = sqrt(v_t) / sqrt(1 - beta2^t) + eps                    # = sqrt(v_hat_t) + eps
    (7)  theta_t = theta_{t-1} - (eta / (1 - beta1^t)) * m_t / s_t    # = eta * m_hat_t / s_t

The bias corrections ``1 - beta^t`` undo the pull of the zero initial moments towards zero.
They, ``1 - beta1``, ``1 - beta2`` and the step size ``eta / (1 - beta1^t)`` are scalars computed
once per step in float64 and cast to the arrays' dtype; the kernels never call ``pow``.
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
is not rescaled, use :class:`fastopt.AdamW`. Keras/TensorFlow use "epsilon hat": eps added to the
uncorrected ``sqrt(v_t)`` with the correction folded into the step size (equivalent to a
step-dependent ``eps * sqrt(1 - beta2^t)`` here), and Keras's default eps is 1e-7. AMSGrad takes
the maximum over the **raw** ``v_t`` and divides by the current correction (torch, Keras); optax's
``amsgrad`` by default takes the maximum over the bias-corrected ``v_hat``.

The step counter ``t`` is a Python integer (torch's float32 counter stops at 2**24).

References
----------
.. [1] D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015,
       arXiv:1412.6980 (Algorithm 1).
.. [2] S. J. Reddi, S. Kale, S. Kumar. "On the Convergence of Adam and Beyond." ICLR 2018
       (AMSGrad).
"""

from __future__ import annotations

from typing import Any

from .._optimizer import Optimizer
from .._validation import check_betas, check_eps, check_flag, check_lr, check_weight_decay

__all__ = ["Adam"]


def check_adam_hyperparameters(group: dict[str, Any]) -> None:
    """torch.optim's checks for Adam and AdamW, in torch's order."""
    check_lr(group["lr"])
    check_eps(group["eps"])
    check_betas(group["betas"])
    check_weight_decay(group["weight_decay"])
    check_flag("amsgrad", group["amsgrad"])
    check_flag("maximize", group["maximize"])


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
        Added to the bias-corrected root (6).
    weight_decay : float, default 0
        L2 penalty ``lambda`` (2), added to the gradient.
    amsgrad : bool, default False
        Use the running maximum of ``v`` (5).
    maximize : bool, default False
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``exp_avg``, ``exp_avg_sq`` and ``max_exp_avg_sq``
    (AMSGrad), created on the parameter's first step.
    """

    name = "adam"
    state_keys = ("step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    required_state_keys = ("step", "exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
        maximize: bool = False,
        backend: str = "auto",
    ) -> None:
        defaults = dict(
            lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize
        )
        super().__init__(params, defaults, backend)

    check_hyperparameters = staticmethod(check_adam_hyperparameters)

    def _init_state(self, param, group):
        return {"step": 0, "exp_avg": self._zeros_like(param), "exp_avg_sq": self._zeros_like(param)}

    def _begin_step(self, param, state, group):
        if group["amsgrad"] and "max_exp_avg_sq" not in state:  # also when switched on later (torch: KeyError)
            state["max_exp_avg_sq"] = self._zeros_like(param)
        state["step"] += 1
        return state["step"]

    def _kernel_slots(self, group):
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq" if group["amsgrad"] else None)

    def _kernel_scalars(self, group, t, dtype):
        return (bool(group["maximize"]), dtype.type(group["weight_decay"]), *self._moment_scalars(group, t, dtype))

    @staticmethod
    def _moment_scalars(group, t, dtype) -> tuple:
        """The arguments of (3)-(7), shared with AdamW: from ``beta1`` to ``step_size``."""
        cast = dtype.type
        beta1, beta2 = group["betas"]
        bias_correction1 = 1 - beta1**t
        bias_correction2 = 1 - beta2**t
        return (
            cast(beta1),
            cast(1.0 - beta1),
            cast(beta2),
            cast(1.0 - beta2),
            bool(group["amsgrad"]),
            cast(bias_correction2**0.5),
            cast(group["eps"]),
            cast(group["lr"] / bias_correction1),
        )
