r"""Adamax: Adam with the root mean square replaced by a decaying maximum of gradient magnitudes.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  d_t = -g_t if maximize else g_t
    (2)  d_t = d_t + lambda * theta_{t-1}                           # L2 weight decay, if lambda != 0 (torch)
         theta_{t-1} = theta_{t-1} * (1 - eta * lambda)             # instead, with decoupled_weight_decay (Keras)
    (3)  m_t = beta1 * m_{t-1} + (1 - beta1) * d_t                  # first moment (momentum), m_0 = 0
    (4)  u_t = max(beta2 * u_{t-1}, max(d_t, -d_t) + eps)           # max(beta2 u, |d_t| + eps): eps INSIDE the max, u_0 = 0 (torch, optax)
         u_t = max(beta2 * u_{t-1}, max(d_t, -d_t))                 # with eps_outside_max (Keras)
    (5)  theta_t = theta_{t-1} - (eta / (1 - beta1^t)) * m_t / u_t  # = eta * m_hat_t / u_t
         theta_t = theta_{t-1} - (eta / (1 - beta1^t)) * m_t / (u_t + eps)    # with eps_outside_max (Keras)

Section 7.1 of the Adam paper [1]_ generalises Adam's second moment from the L2 norm to the Lp
norm of past gradients, ``(sum_k beta2^(p(t-k)) |g_k|^p)^(1/p)``, and lets ``p`` go to
infinity: the norm becomes the running maximum (4) of exponentially decayed magnitudes. That
maximum needs no bias correction (a maximum is not pulled towards its zero start the way a mean
is), so only ``m`` is corrected, in the step size ``eta / (1 - beta1^t)``. The denominator reacts
to one large gradient at once and forgets it geometrically, at rate ``beta2`` per step, so the
step is bounded: ``|theta_t - theta_{t-1}| <= eta / (1 - beta1^t) * |m_t| / u_t``, and ``u_t``
never falls below ``eps``. The maximum propagates NaN (``np.maximum``'s rule, as
``torch.maximum``). ``1 - beta1`` and the step size are computed once per step in float64 and
cast to the arrays' dtype; the kernels never call ``pow``.

Symbols
-------
===========  ==================  ===========  ==================  =================
fastopt      paper               torch.optim  Keras 3             optax
===========  ==================  ===========  ==================  =================
``lr``       eta (paper: alpha)  ``lr``       ``learning_rate``   ``learning_rate``
``betas``    beta1, beta2        ``betas``    ``beta_1, beta_2``  ``b1, b2``
``eps``      epsilon             ``eps``      ``epsilon``         ``eps``
``exp_avg``  m                   ``exp_avg``  ``momentum``        ``mu``
``exp_inf``  u                   ``exp_inf``  ``norm``            ``nu``
``step``     t                   ``step``     ``iterations + 1``  ``count``
===========  ==================  ===========  ==================  =================

Defaults and conventions
------------------------
torch.optim's: ``lr=2e-3`` (the paper's value for Adamax), ``betas=(0.9, 0.999)``, ``eps=1e-8``,
``weight_decay=0`` (an L2 term added to the gradient (2)). The paper's Algorithm 2 has no eps;
torch and optax put it **inside** the maximum (4), so ``u`` itself is never below eps, while Keras
keeps ``u = max(beta2 * u, |g|)`` and adds eps to the denominator, ``m / (u + eps)``: the same
guard, except that Keras's ``u`` can be zero and torch's cannot. Keras's default eps is 1e-7 and
its learning rate 1e-3. The step counter ``t`` is a Python integer.

``eps_outside_max=True`` reproduces Keras's placement (4)-(5) and ``decoupled_weight_decay=True``
its decay of the weights before the step (2); ``convention="keras"`` sets both with Keras's
``lr=1e-3`` and ``eps=1e-7``. ``convention="optax"`` is torch's arithmetic (optax puts eps inside
the maximum too) with ``eps=1e-8``; optax has no default learning rate (fastopt's is kept).

References
----------
.. [1] D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015,
       arXiv:1412.6980 (section 7.1 and Algorithm 2, AdaMax).
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm, weight_decay_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_adam_family, check_flag

__all__ = ["Adamax", "AdamaxAlgorithm"]


class AdamaxAlgorithm(Algorithm):
    """Adamax's rules, for ``fastopt.Adamax`` and ``fastopt.torch.Adamax``; the maths is in
    :mod:`fastopt.adamax`."""

    kernel = "adamax"
    buffers = ("exp_avg", "exp_inf")
    required = ("step", "exp_avg", "exp_inf")
    flag_defaults = {"eps_outside_max": False, "decoupled_weight_decay": False}

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks, in torch's order."""
        check_adam_family(group)
        check_flag("maximize", group["maximize"])
        check_flag("eps_outside_max", group["eps_outside_max"])
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("exp_avg", "exp_inf")

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        cast = dtype.type
        beta1, beta2 = group["betas"]
        return (
            bool(group["maximize"]),
            *weight_decay_scalars(group, dtype),
            cast(beta1),
            cast(1.0 - beta1),
            cast(beta2),
            bool(group["eps_outside_max"]),
            cast(group["eps"]),
        )

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """(5)'s step size ``eta / (1 - beta1^t)`` at step ``t`` (the first moment's bias correction)."""
        bias_correction1 = 1 - group["betas"][0] ** t                                 # (5)
        return (group["lr"] / bias_correction1,)                                       # (5)


class Adamax(Optimizer):
    """Adamax (Adam with the infinity norm); the maths is in :mod:`fastopt.adamax`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 2e-3
        Learning rate ``eta``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first moment (3) and of the running maximum (4), each in [0, 1).
    eps : float, default 1e-8
        Floor of the running maximum (4).
    weight_decay : float, default 0
        L2 penalty ``lambda`` (2), added to the gradient.
    maximize : bool, default False
    eps_outside_max : bool, default False
        eps added to the denominator after the maximum (4)-(5): Keras.
    decoupled_weight_decay : bool, default False
        Weight decay shrinks the weights by ``1 - lr * weight_decay`` before the step (2): Keras.
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly.
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``exp_avg`` and ``exp_inf``, created on the parameter's
    first step.
    """

    name = "adamax"
    algorithm = AdamaxAlgorithm()
    conventions = {
        "torch": dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8, **AdamaxAlgorithm.flag_defaults),
        "keras": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, eps_outside_max=True, decoupled_weight_decay=True),
        "optax": dict(betas=(0.9, 0.999), eps=1e-8, **AdamaxAlgorithm.flag_defaults),
    }

    def __init__(
        self,
        params,
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        maximize: bool = False,
        *,
        eps_outside_max: bool = False,
        decoupled_weight_decay: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
