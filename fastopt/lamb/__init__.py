r"""LAMB: Adam's update (plus weight decay) rescaled per tensor by the trust ratio ``||theta|| / ||u||``.

The update, for step :math:`t \ge 1` (tags are used in ``reference.py``, ``_numba.py`` and
``_cython.pyx``)::

    (1)  g_t = -g_t if maximize else g_t
    (2)  m_t = (1 - beta1) * g_t + beta1 * m_{t-1}                   # first moment, m_0 = 0
    (3)  v_t = (1 - beta2) * (g_t * g_t) + beta2 * v_{t-1}           # second moment, v_0 = 0
    (4)  mhat_t = m_t / (1 - beta1^t)                                # bias corrections
         vhat_t = v_t / (1 - beta2^t)
    (5)  u_t = mhat_t / (sqrt(vhat_t + eps_root) + eps)              # Adam's direction
    (6)  u_t = u_t + lambda * theta_{t-1}                            # weight decay, if lambda != 0
    (7)  p_t = norm(theta_{t-1})                                     # Euclidean norms of the whole tensor
         q_t = norm(u_t)
    (8)  r_t = p_t / q_t if min(p_t, q_t) > 0 else 1                 # the trust ratio (1 if either norm is 0)
    (9)  theta_t = theta_{t-1} - (eta * r_t) * u_t

LAMB [1]_ makes Adam usable at very large batch sizes (BERT with batches of 32k-64k) by giving
each tensor (a layer's weight matrix, a bias) a step proportional to its own size: the direction
of Adam with decoupled weight decay (5)-(6), rescaled so that its norm is ``eta * ||theta||``. A
layer of small weights takes small steps whatever its gradients' scale, and the learning rate
becomes a relative step size. Where one of the two norms is zero (a tensor initialised to zeros,
a gradient and a moment all zero) optax takes ``r_t = 1``: the update is then Adam's, unscaled.

This is optax's ``lamb`` (optax 0.2.8): ``scale_by_adam(b1, b2, eps, eps_root)``, then
``add_decayed_weights(weight_decay)`` (skipped when it is 0), then ``scale_by_trust_ratio()``
(``min_norm=0``, ``trust_coefficient=1``, ``eps=0``), then ``scale_by_learning_rate(lr)``, with
optax's element-wise order in (2)-(6). The bias corrections ``1 - beta^t`` and ``1 - beta``
are computed once per step in float64 and cast to the arrays' dtype (optax divides by them in
the arrays' dtype too); a NaN norm gives a NaN ratio, as in optax.

**Norms.** The two sums of squares of (7) follow fastopt's summation order (:mod:`fastopt._sums`):
each square in float64, accumulated in 8 lanes along the flattened tensor, combined by one fixed
tree. ``r_t`` and the step ``-(eta * r_t)`` are then float64 arithmetic, the step rounded once to
the arrays' dtype, and (9) is ``theta + step * u`` in that dtype. This is what makes the three
twins agree bit for bit. optax computes ``jnp.linalg.norm`` in the arrays' dtype in XLA's order,
and scales in two roundings (``u * r_t``, then ``* -eta``): float64 results agree to about 1e-15
relative, float32 ones to a few ulp. A parameter is one kernel call on one thread (its norms do not
depend on ``set_num_threads``). As the paper and optax, the norms are per parameter: a flat buffer
of many parameters (:func:`fastopt.flatten`) is one tensor to LAMB, with one trust ratio.

Symbols
-------
==================  ======================  ==========================  =================
fastopt             paper (Algorithm 2)     optax (``lamb``)            Keras 3 (``Lamb``)
==================  ======================  ==========================  =================
``lr``              eta                     ``learning_rate``           ``learning_rate``
``betas[0]``        beta1                   ``b1``                      ``beta_1``
``betas[1]``        beta2                   ``b2``                      ``beta_2``
``eps``             epsilon                 ``eps``                     ``epsilon``
``eps_root``        --                      ``eps_root``                --
``weight_decay``    lambda                  ``weight_decay``            --
``exp_avg``         m                       ``mu``                      ``momentums``
``exp_avg_sq``      v                       ``nu``                      ``velocities``
``step``            t                       ``count``                   ``iterations + 1``
==================  ======================  ==========================  =================

Defaults and conventions
------------------------
optax's: ``betas=(0.9, 0.999)``, ``eps=1e-6``, ``eps_root=0``, ``weight_decay=0``; optax has no
default learning rate, fastopt's is ``lr=1e-3``. ``convention="optax"`` sets optax's defaults
(not ``lr``). Validation is torch.optim's Adam checks, with its messages (``lr >= 0``,
``eps >= 0``, betas in ``[0, 1)``, ``weight_decay >= 0``), plus ``eps_root >= 0``, all finite.
torch.optim has no LAMB; :class:`fastopt.torch.LAMB` gives these hyperparameters a
torch.optim-style signature. Where fastopt differs from optax: ``maximize`` (optax has none);
a parameter with no elements counts the step and changes nothing; optax's ``mask`` and schedules
for ``learning_rate`` and ``weight_decay`` are not offered (use a parameter group without decay
and assign ``lr`` between steps).

References
----------
.. [1] Y. You, J. Li, S. Reddi, J. Hseu, S. Kumar, S. Bhojanapalli, X. Song, J. Demmel,
       K. Keutzer, C.-J. Hsieh. "Large Batch Optimization for Deep Learning: Training BERT in 76
       minutes." ICLR 2020, arXiv:1904.00962 (Algorithm 2).
.. [2] optax 0.2.8, ``optax.lamb`` (``optax/_src/alias.py``) and ``scale_by_trust_ratio``
       (``optax/_src/transform.py``).
"""

from __future__ import annotations

from typing import Any

from .._engine import Algorithm, moment_scalars
from .._optimizer import Optimizer, hyperparameters
from .._validation import check_adam_family, check_flag, check_nonnegative

__all__ = ["LAMB", "LAMBAlgorithm"]


class LAMBAlgorithm(Algorithm):
    """LAMB's rules, for ``fastopt.LAMB`` and ``fastopt.torch.LAMB``; the maths is in
    :mod:`fastopt.lamb`."""

    kernel = "lamb"
    buffers = ("exp_avg", "exp_avg_sq")
    required = ("step", "exp_avg", "exp_avg_sq")
    whole_tensor = True  # the trust ratio (8) takes two norms of the whole parameter

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks for Adam, in torch's order and with its messages, then
        ``eps_root`` and ``maximize``."""
        check_adam_family(group)
        eps_root = group["eps_root"]
        check_nonnegative("eps_root", eps_root, f"Invalid eps_root value: {eps_root}")
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("exp_avg", "exp_avg_sq")

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        """``maximize``, the constants of (2)-(3), ``eps`` and ``eps_root`` (5), ``weight_decay``
        (6), then ``lr`` as a float64 number (the kernels' step arithmetic (9))."""
        cast = dtype.type
        return (
            bool(group["maximize"]),
            *moment_scalars(group, dtype),                                             # (2), (3)
            cast(group["eps"]),                                                        # (5)
            cast(group["eps_root"]),                                                   # (5)
            cast(group["weight_decay"]),                                               # (6)
            float(group["lr"]),                                                        # (9)
        )

    def step_scalars(self, group: dict[str, Any], t: int) -> tuple:
        """The bias corrections ``1 - beta1^t`` and ``1 - beta2^t`` of (4), in float64."""
        beta1, beta2 = group["betas"]
        return 1 - beta1**t, 1 - beta2**t                                              # (4)


class LAMB(Optimizer):
    """LAMB (optax's ``lamb``); the maths is in :mod:`fastopt.lamb`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 1e-3
        ``eta``: the step is ``eta`` times the trust ratio times the update (9).
    betas : (float, float), default (0.9, 0.999)
        Decay rates of the first (2) and second (3) moments, each in [0, 1).
    eps : float, default 1e-6
        Added to the root of the corrected second moment (5).
    eps_root : float, default 0
        Added to the corrected second moment under the root (5) (optax's).
    weight_decay : float, default 0
        ``lambda``: ``lambda * theta`` is added to the update before the trust ratio (6).
    maximize : bool, default False
    convention : {"optax"} or None, default None
        A preset: optax's defaults for every argument not given explicitly (not ``lr``: optax has
        no default).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    State per parameter: ``step`` (int), ``exp_avg`` and ``exp_avg_sq``, created on the
    parameter's first step. Each parameter is one kernel call on one thread (its norms).
    """

    name = "lamb"
    algorithm = LAMBAlgorithm()
    conventions = {"optax": dict(betas=(0.9, 0.999), eps=1e-6, eps_root=0.0, weight_decay=0.0)}
    not_offered = {
        "torch": "torch.optim has no LAMB (fastopt's defaults are optax's)",
        "keras": "Keras 3's Lamb was not compared with fastopt's; fastopt reproduces optax.lamb",
    }

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-6,
        eps_root: float = 0.0,
        weight_decay: float = 0.0,
        maximize: bool = False,
        *,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        super().__init__(params, hyperparameters(locals()), backend)
