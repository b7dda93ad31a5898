r"""Schedule-Free AdamW: Adam's normalised step, with the learning-rate schedule replaced by an
average of the iterates.

Schedule-Free methods [1]_ keep two sequences, ``z`` (the base iterate, which takes the plain
gradient steps) and ``x`` (a running weighted average of ``z``: the point to evaluate), and take
the gradient at a third point between them, ``y = (1 - beta1) z + beta1 x``. The average does
what a decaying schedule would, without one, so training needs no schedule and no stopping time
fixed in advance. As in the authors' package [2]_, the parameter holds ``y`` while training; ``x``
is never stored: it is recovered from ``y`` and ``z`` when the optimizer switches to evaluation
(14), and ``y`` again when it switches back (13).

The update of each element at step ``t = k + 1`` (``k`` steps taken before; tags are used in
``reference.py``, ``_numba.py`` and ``_cython.pyx``; ``y`` is the parameter), its scalars (9)-(12)
computed once per step in float64 from the group's counters ``k``, ``lr_max`` and
``weight_sum``, and the switches between the two points (13), (14), with ``x = (y - (1 - beta1)
z) / beta1``::

    (1)   d_t = -g_t if maximize else g_t                                   # g_t taken at y_{t-1}
    (2)   v_t = beta2 * v_{t-1} + (1 - beta2) * d_t * d_t                   # exp_avg_sq, v_0 = 0
    (3)   delta_t = sqrt(v_t / (1 - beta2^t)) + epsilon
    (4)   u_t = d_t / delta_t
    (5)   u_t = u_t + lambda * y_{t-1}                                      # weight decay, taken at y
    (6)   ybar_t = (1 - c_{t+1}) * y_{t-1} + c_{t+1} * z_{t-1}              # lerp(y, z, c), torch's forms
    (7)   y_t = ybar_t + lr_t * (beta1 * (1 - c_{t+1}) - 1) * u_t
    (8)   z_t = z_{t-1} - lr_t * u_t                                        # z_0 = the initial parameter
    (9)   lr_t = lr * t / warmup_steps if k < warmup_steps else lr          # linear warmup
    (10)  lr_max_t = max(lr_max_{t-1}, lr_t)                                # lr_max_0 = -1
    (11)  w_t = t^r * lr_max_t^weight_lr_power                              # the average's weight
          W_t = W_{t-1} + w_t                                              # weight_sum, W_0 = 0
    (12)  c_{t+1} = w_t / W_t                                              # ckp1 (0 if W_t = 0)
    (13)  y = (1 - beta1) * z + beta1 * x                                  # train(): lerp(x, z, 1 - beta1)
    (14)  x = (y - (1 - beta1) * z) / beta1                                # eval(): lerp(y, z, 1 - 1/beta1)

(6)-(8) are the paper's ``z_t = z_{t-1} - lr_t u_t``, ``x_t = (1 - c_{t+1}) x_{t-1} + c_{t+1}
z_t``, ``y_t = (1 - beta1) z_t + beta1 x_t`` (Algorithm 1 with Adam's normalisation) written on
``y`` directly, as the authors' package does, so that ``x`` needs no array of its own. Adam's
first moment is gone: the interpolation with ``z`` is the momentum. There is no bias correction
of a first moment; ``v`` is corrected as in Adam (3).

``lerp`` is torch's, both forms: ``a + w * (b - a)`` when ``|w| < 0.5``, else ``b - (b - a) *
(1 - w)``, so that ``c_{t+1} = 1`` (the first step) gives ``z`` exactly. Which form, ``c_{t+1}``,
``1 - c_{t+1}``, ``1 - beta2^t``, ``lr_t`` and ``lr_t * (beta1 * (1 - c_{t+1}) - 1)`` are scalars
computed once per step in float64 (``ScheduleFreeAdamWAlgorithm.step_scalars``) and cast to the
arrays' dtype; the kernels never call ``pow``. The switches (13), (14) are NumPy expressions on
the whole array (``interpolate`` in this module), the same code whatever the backend, so they
leave the three backends' arrays identical; they run once per switch, not per step.

Where the counters live
-----------------------
The authors keep ``k``, ``weight_sum``, ``lr_max`` (and ``train_mode``, ``scheduled_lr``, the
last ``lr_t``, for logging) in each **parameter group**, not per parameter: the average's weights
belong to the group, and ``k`` advances at every step, also for a group none of whose parameters
had a gradient. fastopt keeps them there too, in both front ends, so that ``fastopt.torch``'s
state dicts have the package's layout (state per parameter: ``z`` and ``exp_avg_sq``, no
``step``; the counters in ``param_groups``) and load in either direction. They are counters, not
hyperparameters: the step reads them (``ScheduleFreeAdamWAlgorithm.advance`` computes the step's
key ``(t, lr_t, c_{t+1})`` from them, a pure function called once per group or per parameter
with the same result) and the front end writes the advanced values into every group once the
step has been applied whole (a rejected step changes none). A parameter that joins late, or
misses steps, is averaged with the group's weights, as in the package.

Symbols
-------
====================  ==============  =====================================  ===================
fastopt               paper           authors' package (schedulefree)        optax.contrib
====================  ==============  =====================================  ===================
``lr``                gamma           ``lr``                                 ``learning_rate``
``betas``             beta (beta1)    ``betas``                              ``b1``, ``b2``
``eps``               epsilon         ``eps``                                ``eps``
``weight_decay``      lambda          ``weight_decay``                       ``weight_decay``
``warmup_steps``      --              ``warmup_steps``                       ``warmup_steps``
``r``                 r               ``r``                                  --
``weight_lr_power``   --              ``weight_lr_power``                    ``weight_lr_power``
``z``                 z               ``z``                                  ``z``
``exp_avg_sq``        v               ``exp_avg_sq``                         (base optimizer's)
``k``                 t - 1           ``k``                                  ``step_count``
``weight_sum``        sum of weights  ``weight_sum``                         ``weight_sum``
``lr_max``            max lr so far   ``lr_max``                             ``max_lr``
====================  ==============  =====================================  ===================

Defaults and conventions
------------------------
The authors' [2]_: ``lr=0.0025``, ``betas=(0.9, 0.999)``, ``eps=1e-8``, ``weight_decay=0``,
``warmup_steps=0``, ``r=0``, ``weight_lr_power=2``. ``beta1`` must be above 0 here (the package
accepts 0 and then fails with ``ZeroDivisionError`` in ``eval()``: with ``beta1 = 0``, ``y = z``
and ``x`` cannot be recovered). ``maximize`` (not in the package) negates the gradient first, as
in every fastopt optimizer. torch.optim and Keras have no Schedule-Free optimizer.
optax.contrib's ``schedule_free_adamw`` [3]_ also keeps ``y`` as the parameters and ``z`` in its
state (``schedule_free_eval_params`` gives ``x``, (14)), and without warmup fastopt agrees with it
to ~1e-15 in float64 (tested); its warmup differs (``lr_t = lr * k / warmup_steps``, from 0 at the
first step of ``z``, while its average's weights use ``lr * (k + 1) / warmup_steps``, both
computed in float32, in optax 0.2.8), and it has no ``r``. ``convention="optax"`` sets optax's defaults, which are
the package's; optax's warmup is not reproduced. The rounding stays the package's (optax
recomputes ``x`` from ``y`` and ``z`` at every step, a few ulp away).

Not reproduced, from the authors' package: the gradient is left as it is (the package divides
``p.grad`` in place by the denominator (4) and adds the decay (5) to it); ``step()`` refuses to run
if *any* group is in eval mode (the package looks at the first group only); the package's
``foreach`` flag is accepted and stored by ``fastopt.torch`` and changes nothing. The NumPy class
``fastopt.ScheduleFreeAdamW`` starts in train mode; ``fastopt.torch.ScheduleFreeAdamW`` starts in
eval mode and needs ``train()`` before its first step, as the package. (Before the first step no
parameter has a ``z``, so the two are the same parameters.)

References
----------
.. [1] A. Defazio, X. A. Yang, H. Mehta, K. Mishchenko, A. Khaled, A. Cutkosky. "The Road Less
       Scheduled." NeurIPS 2024, arXiv:2405.15682 (Algorithm 1; the AlgoPerf 2024 winner).
.. [2] Meta, schedulefree 1.4.1, ``schedulefree.AdamWScheduleFree``
       (``schedulefree/adamw_schedulefree.py``) and ``AdamWScheduleFreeReference``.
.. [3] optax 0.2.8, ``optax.contrib.schedule_free_adamw`` (``optax/contrib/_schedule_free.py``).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from .._engine import Algorithm
from .._optimizer import Optimizer, hyperparameters
from .._threads import one_at_a_time
from .._validation import (
    MAX_STEP,
    check_adam_family,
    check_flag,
    check_nonnegative,
    check_real,
    check_state_array,
    flat_view,
)

__all__ = ["ScheduleFreeAdamW", "ScheduleFreeAdamWAlgorithm", "check_group_counters", "interpolate", "schedule"]

GROUP_COUNTERS = ("k", "train_mode", "weight_sum", "lr_max", "scheduled_lr")
"""The entries of a parameter group that are counters, not hyperparameters (the package's)."""

INITIAL_COUNTERS = {"k": 0, "weight_sum": 0.0, "lr_max": -1.0, "scheduled_lr": 0.0}


def _power(base: float, exponent: float) -> float:
    """``base ** exponent`` in float64, inf where it overflows (never raises for base >= 0)."""
    try:
        return math.pow(base, exponent)
    except OverflowError:
        return math.inf


def schedule(group: dict[str, Any]) -> tuple[int, float, float, float, float]:
    """``(t, lr_t, lr_max_t, W_t, c_{t+1})`` of the step after the group's counters ``k``,
    ``lr_max``, ``weight_sum``: (9)-(12) in float64, the authors' operations in their order. A
    pure function of validated values that does not raise (an overflow is inf; inf / inf NaN)."""
    k = int(group["k"])
    t = k + 1
    warmup_steps = float(group["warmup_steps"])
    sched = t / warmup_steps if k < warmup_steps else 1.0                                  # (9)
    lr = float(group["lr"]) * sched                                                       # (9)
    lr_max = max(lr, float(group["lr_max"]))                                              # (10)
    weight = _power(t, float(group["r"])) * _power(lr_max, float(group["weight_lr_power"]))  # (11)
    weight_sum = float(group["weight_sum"]) + weight                                      # (11)
    ckp1 = weight / weight_sum if weight_sum != 0 else 0.0                                # (12)
    return t, lr, lr_max, weight_sum, ckp1


def advanced_counters(group: dict[str, Any]) -> dict[str, Any]:
    """The group counters after one step (what the front ends write once the step is applied)."""
    t, lr, lr_max, weight_sum, _ = schedule(group)
    return {"k": t, "scheduled_lr": lr, "lr_max": lr_max, "weight_sum": weight_sum}


def check_group_counters(where: str, group: dict[str, Any]) -> None:
    """Raise ``TypeError``/``ValueError`` naming the entry (``param_groups[0]['k']``...) unless
    the group's counters are as the step keeps them: ``k`` an int in [0, 2**62 - 1), ``train_mode``
    a bool, ``weight_sum`` a finite number >= 0, ``lr_max`` and ``scheduled_lr`` finite numbers."""
    for name in GROUP_COUNTERS:
        if name not in group:
            raise ValueError(f"{where} is missing {name!r} (a Schedule-Free counter)")
    k = group["k"]
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, numbers.Integral) or not 0 <= k < MAX_STEP - 1:
        raise ValueError(f"{where}['k'] must be an int in [0, 2**62 - 1), got {type(k).__name__} {k!r}")
    check_flag(f"{where}['train_mode']", group["train_mode"])
    for name in ("weight_sum", "lr_max", "scheduled_lr"):
        value = group[name]
        check_real(f"{where}[{name!r}]", value)
        if not math.isfinite(value):
            raise ValueError(f"{where}[{name!r}] must be finite, got {value!r}")
    if not group["weight_sum"] >= 0:
        raise ValueError(f"{where}['weight_sum'] must be >= 0, got {group['weight_sum']!r}")


def interpolate(param: np.ndarray, z: np.ndarray, weight: float) -> None:
    """``param = lerp(param, z, weight)`` in place, torch's ``lerp_`` (both forms, chosen by
    ``|weight| < 0.5``), with ``weight`` and ``1 - weight`` computed in float64 and cast to the
    arrays' dtype: the switches (13) and (14). One NumPy expression for every backend."""
    cast = param.dtype.type
    with np.errstate(all="ignore"):
        if abs(weight) < 0.5:
            param[...] = param + cast(weight) * (z - param)                                # (13), (14)
        else:
            param[...] = z - (z - param) * cast(1.0 - weight)                              # (13), (14)


def switch_weight(beta1: float, train: bool) -> float:
    """The weight of (13) (``1 - beta1``: x -> y) or of (14) (``1 - 1 / beta1``: y -> x)."""
    beta1 = float(beta1)
    return 1.0 - beta1 if train else 1.0 - 1.0 / beta1


class ScheduleFreeAdamWAlgorithm(Algorithm):
    """Schedule-Free AdamW's rules, for ``fastopt.ScheduleFreeAdamW`` and
    ``fastopt.torch.ScheduleFreeAdamW``; the maths is in :mod:`fastopt.schedule_free_adamw`.

    It keeps no per-parameter counter: the step's key is computed from the group's counters
    (``k``, ``weight_sum``, ``lr_max``), which the front ends validate before a step and advance
    after it (see "Where the counters live" in the module docstring)."""

    kernel = "schedule_free_adamw"
    buffers = ("z", "exp_avg_sq")
    counters = ()  # the counters are the group's (k, weight_sum, lr_max), as in the package
    required = ("z", "exp_avg_sq")

    def check(self, group: dict[str, Any]) -> None:
        """torch.optim's checks for Adam, in torch's order (``lr``, ``eps``, ``betas``,
        ``weight_decay``), then ``beta1 > 0``, ``warmup_steps``, ``r``, ``weight_lr_power``
        (each >= 0 and finite) and ``maximize``."""
        check_adam_family(group)
        beta1 = group["betas"][0]
        if not beta1 > 0:
            raise ValueError(f"Invalid beta parameter at index 0: {beta1} (Schedule-Free needs beta1 > 0: "
                             "eval() recovers x = (y - (1 - beta1) z) / beta1)")
        for name in ("warmup_steps", "r", "weight_lr_power"):
            value = group[name]
            check_nonnegative(name, value, f"Invalid {name} value: {value}")
        check_flag("maximize", group["maximize"])

    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        return ("z", "exp_avg_sq")

    def advance(self, group: dict[str, Any], counters: dict[str, Any], created: tuple[str, ...]) -> Hashable:
        """The step's key ``(t, lr_t, c_{t+1})`` from the group's counters; nothing is advanced
        here (the front end writes the group's counters once the whole step is applied)."""
        t, lr, _, _, ckp1 = schedule(group)
        return t, lr, ckp1

    def group_scalars(self, group: dict[str, Any], dtype) -> tuple:
        """``maximize``, ``lambda`` of (5), the constants of (2) and ``epsilon`` of (3)."""
        cast = dtype.type
        beta2 = float(group["betas"][1])
        return (bool(group["maximize"]), cast(group["weight_decay"]), cast(beta2), cast(1.0 - beta2),
                cast(group["eps"]))

    def step_scalars(self, group: dict[str, Any], key: Hashable) -> tuple:
        """``1 - beta2^t`` (3), the form of (6), ``c_{t+1}``, ``1 - c_{t+1}`` (6), the step of
        ``y`` (7) and ``lr_t`` (8), in float64."""
        t, lr, ckp1 = key
        beta1, beta2 = float(group["betas"][0]), float(group["betas"][1])
        return (
            1.0 - beta2**t,                                                                # (3)
            abs(ckp1) < 0.5,                                                               # (6)
            ckp1,                                                                          # (6)
            1.0 - ckp1,                                                                    # (6)
            lr * (beta1 * (1.0 - ckp1) - 1.0),                                             # (7)
            lr,                                                                            # (8)
        )


class ScheduleFreeAdamW(Optimizer):
    """Schedule-Free AdamW (the authors' ``AdamWScheduleFree``); the maths is in
    :mod:`fastopt.schedule_free_adamw`.

    Parameters
    ----------
    params : list of ndarray or list of dict
        Arrays to optimize in place (float32/float64, C-contiguous, writeable), or parameter groups.
    lr : float, default 0.0025
        Learning rate ``lr`` (9), after warmup.
    betas : (float, float), default (0.9, 0.999)
        ``beta1`` (in (0, 1): the interpolation between ``z`` and ``x``, (7), (13), (14)) and
        ``beta2`` (in [0, 1): the decay of ``exp_avg_sq`` (2)).
    eps : float, default 1e-8
        Added to the bias-corrected root (3).
    weight_decay : float, default 0
        ``lambda`` (5): decoupled from the normalisation, taken at ``y``.
    warmup_steps : int, default 0
        Steps of linear warmup of ``lr`` (9).
    r : float, default 0
        The average's weights grow as ``t^r`` (11).
    weight_lr_power : float, default 2
        The average's weights grow as ``lr_max^weight_lr_power`` (11) (0: no lr weighting).
    maximize : bool, default False
    convention : {"optax"} or None, default None
        A preset: optax.contrib's defaults for every argument not given (the authors' too: optax's
        warmup is not reproduced).
    backend : {"auto", "reference", "numba", "cython"}, default "auto"

    The parameters hold ``y`` while training: call :meth:`eval` before evaluating or saving the
    weights (they then hold ``x``, the average) and :meth:`train` before training again. The
    optimizer starts in train mode; ``step`` in eval mode raises ``RuntimeError``.

    State per parameter: ``z`` (created from the parameter on its first step) and
    ``exp_avg_sq``, the authors' names. Each group also holds the authors' counters ``k``,
    ``train_mode``, ``weight_sum``, ``lr_max`` and ``scheduled_lr`` (the last ``lr_t``), saved and
    loaded with the hyperparameters by ``state_dict``/``load_state_dict``.
    """

    name = "schedule_free_adamw"
    algorithm = ScheduleFreeAdamWAlgorithm()
    group_counters = GROUP_COUNTERS
    conventions = {"optax": dict(lr=0.0025, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, r=0.0,
                                 weight_lr_power=2.0)}
    not_offered = {"torch": "torch.optim has no Schedule-Free optimizer (fastopt's defaults are the authors' package's)",
                   "keras": "Keras 3 has no Schedule-Free optimizer"}

    def __init__(
        self,
        params,
        lr: float = 0.0025,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        warmup_steps: int = 0,
        r: float = 0.0,
        weight_lr_power: float = 2.0,
        *,
        maximize: bool = False,
        convention: str | None = None,
        backend: str = "auto",
    ) -> None:
        defaults = hyperparameters(locals())
        defaults.update(k=0, train_mode=True, weight_sum=0.0, lr_max=-1.0, scheduled_lr=0.0)
        super().__init__(params, defaults, backend)

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        self.algorithm.check(group)
        check_group_counters("param_group", group)

    # The step: the mode and the group's counters checked first, advanced once it is applied ----
    @one_at_a_time
    def step(self, grads: Sequence[np.ndarray | None], *, copy_to: Sequence[np.ndarray | None] | None = None) -> None:
        """Update every parameter (``y``) and its ``z`` in place from its gradient (taken at
        ``y``), as :meth:`fastopt.Optimizer.step`. Raises ``RuntimeError`` in eval mode."""
        self._check_mode_and_counters()
        super().step(grads, copy_to=copy_to)
        for group in self.param_groups:  # applied whole: every group advances (also one without gradients)
            group.update(advanced_counters(group))

    def _check_mode_and_counters(self) -> None:
        for index, group in enumerate(self.param_groups):
            where = f"param_groups[{index}]"
            if not isinstance(group, dict):
                return  # the step's own checks say what is wrong
            check_group_counters(where, group)
            if not group["train_mode"]:
                raise RuntimeError(
                    f"{type(self).__name__}.step() called in eval mode ({where}['train_mode'] is False): "
                    "call optimizer.train() before training steps (the parameters then hold y) and "
                    "optimizer.eval() before evaluating (they then hold x, the average)"
                )

    def prepare(self, plan, item: tuple) -> tuple:
        flat_param, grad, buffers, state, created = super().prepare(plan, item)
        if "z" in created:  # z_0 is the parameter (the package's clone)
            buffers[plan.slots.index("z")][...] = flat_param
        return flat_param, grad, buffers, state, created

    # train() / eval() -------------------------------------------------------------------------
    @one_at_a_time
    def train(self) -> None:
        """Switch every group in eval mode to train mode: each parameter with a ``z`` becomes
        ``y = lerp(x, z, 1 - beta1)`` (13). A group already in train mode is left as it is."""
        self._switch(True)

    @one_at_a_time
    def eval(self) -> None:
        """Switch every group in train mode to eval mode: each parameter with a ``z`` becomes
        ``x = lerp(y, z, 1 - 1/beta1)`` (14), the average to evaluate or save."""
        self._switch(False)

    def _switch(self, train: bool) -> None:
        """Everything checked first (groups, betas, each ``z``), then every parameter switched."""
        self._check_groups_unchanged()
        work = []
        for group_index, group in enumerate(self.param_groups):
            where = f"param_groups[{group_index}]"
            mode = group.get("train_mode")
            check_flag(f"{where}['train_mode']", mode)
            if mode == train:
                continue
            self.algorithm.check(group)
            weight = switch_weight(group["betas"][0], train)
            start = self._group_starts[group_index]
            for index in range(start, start + len(group["params"])):
                entry = self.state.get(index)
                if type(entry) is dict and "z" in entry:
                    check_state_array(f"opt.state[{index}]['z']", entry["z"], self._params[index])
                    work.append((self._flat_params[index], flat_view(entry["z"]), weight))
            work.append(group)
        for item in work:
            if type(item) is dict:
                item["train_mode"] = train
            else:
                interpolate(*item)

