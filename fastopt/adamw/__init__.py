r"""AdamW: Adam with decoupled weight decay.

The update, for step :math:`t \ge 1`. AdamW is stepped by Adam's kernel (``fastopt/adam/``:
``reference.py``, ``_numba.py``, ``_cython.pyx``), whose weight-decay line (2) has both forms;
the tags are the same::

    (1)  d_t = -g_t if maximize else g_t
    (2)  theta'_{t-1} = theta_{t-1} * (1 - eta * lambda)    # decoupled decay, before the Adam step
    (3)  m_t = beta1 * m_{t-1} + (1 - beta1) * d_t
    (4)  v_t = beta2 * v_{t-1} + (1 - beta2) * d_t * d_t
    (5)  vmax_t = max(vmax_{t-1}, v_t)                      # AMSGrad only; vmax_t then replaces v_t in (6)
         vmax_t = max(vmax_{t-1}, v_t / (1 - beta2^t))      # instead, with amsgrad_corrected_max (optax)
    (6)  s_t = sqrt(v_t) + epsilon_t                        # epsilon_t = eps * sqrt(1 - beta2^t): on the corrected root (torch)
         s_t = sqrt(v_t) + eps                              # with eps_hat (Keras)
    (7)  theta_t = theta'_{t-1} - alpha_t * m_t / s_t       # alpha_t = eta * sqrt(1 - beta2^t) / (1 - beta1^t)

(6)-(7) are torch's ``(eta / (1 - beta1^t)) * m_t / (sqrt(v_t) / sqrt(1 - beta2^t) + eps)`` with
one division per element instead of two, as in :mod:`fastopt.adam`, which explains it.

The only difference from :mod:`fastopt.adam` is line (2). Adam's L2 term ``lambda * theta`` is
added to the gradient, so it passes through the moments and is divided by ``s_t``: weights with
large, noisy gradients are barely decayed. Here the weights shrink by the same factor
``1 - eta * lambda`` whatever their gradients, and the moments never see the decay. With
``weight_decay = 0`` AdamW and Adam are the same algorithm.

Symbols are Adam's (see :mod:`fastopt.adam`), plus ``weight_decay`` = lambda (torch
``weight_decay``; Keras ``weight_decay``; optax ``weight_decay``).

Defaults and conventions
------------------------
torch.optim's: ``weight_decay=1e-2`` (Keras 0.004, optax 1e-4), and the decay factor is multiplied
by the **current** learning rate, so a schedule scales the decay too (torch, Keras and optax
agree; the paper decouples it from eta as well, with its own schedule multiplier). The factor
``1 - eta * lambda`` is computed once per step in float64 and cast to the arrays' dtype (Keras
computes it in float32, from its float32 learning rate: in float64 the two differ by up to
~6e-8 of the factor per step). optax adds ``lambda * theta`` to the Adam direction before scaling
by ``-eta``: the same mathematics, rounded in another order.

The flags ``eps_hat`` (Keras) and ``amsgrad_corrected_max`` (optax) are Adam's (see
:mod:`fastopt.adam`). ``decoupled_weight_decay`` is always True here, as in torch's AdamW (it is
kept in the parameter groups so that Adam and AdamW load each other's state dicts).
``convention="keras"`` sets ``eps_hat``, ``eps=1e-7`` and ``weight_decay=0.004``;
``convention="optax"`` sets ``weight_decay=1e-4`` (optax's ``adamw`` has no AMSGrad);
``convention="torch"`` gives torch's defaults.

References
----------
.. [1] I. Loshchilov, F. Hutter. "Decoupled Weight Decay Regularization." ICLR 2019,
       arXiv:1711.05101 (Algorithm 2).
.. [2] D. P. Kingma, J. Ba. "Adam: A Method for Stochastic Optimization." ICLR 2015.
"""

from __future__ import annotations

from typing import Any

from .._optimizer import Optimizer, hyperparameters
from ..adam import Adam, AdamAlgorithm

__all__ = ["AdamW", "AdamWAlgorithm"]


class AdamWAlgorithm(AdamAlgorithm):
    """Adam's rules with the decay always decoupled (Adam's kernel steps it, line (2))."""

    flag_defaults = dict(eps_hat=False, amsgrad_corrected_max=False, decoupled_weight_decay=True)

    def check(self, group: dict[str, Any]) -> None:
        super().check(group)
        if group["decoupled_weight_decay"] is not True:
            raise ValueError(
                "AdamW's weight decay is always decoupled (decoupled_weight_decay=True); "
                "for L2 weight decay use fastopt.Adam"
            )


class AdamW(Adam):
    """AdamW (decoupled weight decay); the maths is in :mod:`fastopt.adamw`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        Learning rate ``eta``.
    betas : (float, float), default (0.9, 0.999)
    eps : float, default 1e-8
    weight_decay : float, default 1e-2
        ``lambda``: each step multiplies the weights by ``1 - lr * weight_decay`` (2).
    amsgrad : bool, default False
    maximize : bool, default False
    eps_hat : bool, default False
        Keras's "epsilon hat" (6)-(7).
    amsgrad_corrected_max : bool, default False
        AMSGrad's maximum over the bias-corrected ``v_hat`` (5): optax.
    decoupled_weight_decay : True
        Always True (a group set to False is rejected); use :class:`fastopt.Adam` for L2.
    convention : {"torch", "keras", "optax"} or None, default None
        A preset: that framework's defaults and flags for every argument not given explicitly.
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: as :class:`fastopt.Adam`.
    """

    name = "adamw"
    algorithm = AdamWAlgorithm()
    conventions = {
        "torch": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, eps_hat=False,
                      amsgrad_corrected_max=False),
        "keras": dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-7, weight_decay=0.004, eps_hat=True,
                      amsgrad_corrected_max=False),
        "optax": dict(betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4, eps_hat=False,
                      amsgrad_corrected_max=False),
    }

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        maximize: bool = False,
        *,
        eps_hat: bool = False,
        amsgrad_corrected_max: bool = False,
        decoupled_weight_decay: bool = True,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        Optimizer.__init__(self, params, hyperparameters(locals()), backend)

    def load_state_dict(self, state_dict):
        """As :meth:`fastopt.Optimizer.load_state_dict`; a state dict saved by Adam (whose groups
        may say ``decoupled_weight_decay=False``) loads with the flag forced True, as torch's AdamW
        does in ``__setstate__``."""
        if isinstance(state_dict, dict) and isinstance(state_dict.get("param_groups"), list):
            groups = [
                {**group, "decoupled_weight_decay": True} if isinstance(group, dict) else group
                for group in state_dict["param_groups"]
            ]
            state_dict = {**state_dict, "param_groups": groups}
        super().load_state_dict(state_dict)
