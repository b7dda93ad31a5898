"""What an optimizer computes besides its kernel's loop, as one stateless object.

Each optimizer folder defines one :class:`Algorithm` (``fastopt.adam.ADAM``...): which state it
keeps, which checks its hyperparameters pass, which state arrays its kernel takes, how its step
counters advance and which scalars the kernel receives. ``fastopt.Adam`` (NumPy arrays) and
``fastopt.torch.Adam`` (tensors) both step through the same object, so no rule of an optimizer is
written twice. An algorithm reads nothing but its arguments.

The kernel's scalars are computed here once per step, in float64, and cast to the arrays' dtype,
so that the three kernels do no scalar arithmetic of their own (and agree bit for bit):

* ``group_scalars(group, dtype)``: the leading scalars, from the hyperparameters alone (cached by
  the engine while the group is unchanged);
* ``step_scalars(group, key)``: the rest, from the step's key (the step number ``t`` of a bias
  correction), as float64 numbers; the engine casts them. An algorithm whose scalars do not change
  from step to step has none, and its ``advance`` returns the key ``None``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Hashable
from typing import Any, ClassVar

import numpy as np

from .._validation import MAX_STEP, check_real, check_step


class Algorithm:
    """The rules of one optimizer; subclasses fill these in (see the module docstring)."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "state_keys" not in cls.__dict__ and "buffers" in dir(cls):
            cls.state_keys = (*cls.counters, *cls.buffers)
        # whether some scalar changes from step to step (step_scalars is defined)
        cls.step_dependent = cls.step_scalars is not Algorithm.step_scalars
        cls._counts_steps = "step" in cls.counters

    kernel: ClassVar[str]
    """The folder whose three kernels step it: ``f"fastopt.{kernel}"``, ``f"{kernel}_update"``."""
    buffers: ClassVar[tuple[str, ...]]
    """Every state array it may keep, in the order a fresh state creates them."""
    counters: ClassVar[tuple[str, ...]] = ("step",)
    """Its scalar state entries (torch's names): the step counter, NAdam's ``mu_product``."""
    required: ClassVar[tuple[str, ...]]
    """The state entries every parameter holds once it has stepped (optional buffers are not)."""
    state_keys: ClassVar[tuple[str, ...]] = ()
    """Every state entry, in the order a fresh state holds them (torch's order); by default the
    counters, then the buffers."""
    eager: ClassVar[bool] = False
    """True if a parameter's state exists before its first step (Adagrad's, as torch's)."""
    whole_tensor: ClassVar[bool] = False
    """True if its kernel needs a whole parameter at once (a norm, a row mean: Adafactor's): each
    parameter is then one kernel call on one thread, on the careful path, with the arguments
    ``shape_arguments`` gives after its arrays, and its state arrays may have other shapes than
    the parameter's (``buffer_shape``)."""
    low_precision: ClassVar[bool] = True
    """False if it cannot step float16 and bfloat16 parameters (with float32 state, see
    :mod:`fastopt._rounding`): they are then refused when added."""
    sparse: ClassVar[bool] = False
    """True if its gradients are sparse rows (SparseAdam's): each step takes the careful path,
    which steps only the rows a gradient names (``fastopt/_engine/rows.py``)."""
    flag_defaults: ClassVar[dict[str, Any]] = {}
    """The flags that reproduce another framework's arithmetic (``convention=``), at the values
    that give torch's; a checkpoint saved before a flag existed loads with this value."""

    # -- hyperparameters -----------------------------------------------------------------------
    def check(self, group: dict[str, Any]) -> None:
        """Raise ``TypeError``/``ValueError`` (torch.optim's messages) for an invalid group."""
        raise NotImplementedError

    # -- state -----------------------------------------------------------------------------------
    def slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        """The state arrays the kernel takes after ``param, grad``, in its order; ``None`` for a
        slot the options leave unused (the kernel then gets an empty array and never reads it)."""
        raise NotImplementedError

    def buffer_shape(self, buffer: str, shape: tuple[int, ...]) -> tuple[int, ...] | None:
        """The shape of state array ``buffer`` for a parameter of ``shape``: the parameter's own,
        unless the algorithm keeps something smaller (Adafactor's row and column factors); None
        if a parameter of this shape has no such array (the kernel then gets an empty one)."""
        return shape

    def shape_arguments(self, shape: tuple[int, ...]) -> tuple:
        """What a ``whole_tensor`` kernel takes after its arrays about the parameter's shape."""
        return ()

    def check_shape(self, where: str, shape: tuple[int, ...]) -> None:
        """Raise ``ValueError`` naming ``where`` if the algorithm cannot step a parameter of
        ``shape`` (Muon: matrices only). Checked when a parameter is registered and before a step."""

    def workspace(self, shape: tuple[int, ...], dtype: np.dtype) -> tuple[np.ndarray, ...]:
        """Scratch arrays a ``whole_tensor`` kernel takes after the state arrays, made for each
        step of a parameter of ``shape`` (Muon's Newton-Schulz matrices); none by default."""
        return ()

    def fill(self, buffer: str, group: dict[str, Any]) -> float:
        """The value a new state array starts from."""
        return 0.0

    def initial_counters(self, group: dict[str, Any]) -> dict[str, Any]:
        """The counters of a fresh state (the step counter starts at 0)."""
        return {"step": 0} if "step" in self.counters else {}

    def advance(self, group: dict[str, Any], counters: dict[str, Any], created: tuple[str, ...]) -> Hashable:
        """Advance the counters in ``counters`` (in place) for one step and return the key of this
        step's scalars; ``created`` names the state arrays made for this step (SGD's first
        momentum step depends on it). By default the step counter goes up by one, and the key is
        the new step number ``t`` if the scalars depend on it (bias corrections), else None (the
        scalars are then computed once)."""
        if not self._counts_steps:
            return None
        counters["step"] += 1
        return counters["step"] if self.step_dependent else None

    def check_counter(self, where: str, name: str, value: object) -> None:
        """Raise ``ValueError`` unless ``value`` is a valid counter ``name`` as fastopt keeps it:
        the step counter a Python ``int`` in ``[0, 2**62)`` with room for one more step (the
        multi-tensor path holds it in a C ``Py_ssize_t``); any other a finite real number."""
        if name == "step":
            check_step(where, value)
            if value >= MAX_STEP - 1:
                raise ValueError(f"{where} = {value} is at the limit of 2**62 steps")
            return
        check_real(where, value)
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, got {value!r}")

    def load_counter(self, where: str, name: str, value: object) -> Any:
        """A counter from a saved state dict in fastopt's type (the step as an ``int``: torch
        saves a float32 tensor), or ``ValueError``."""
        if name == "step":
            if isinstance(value, np.ndarray) and value.ndim == 0:
                value = value.item()
            step = _loaded_step(value)
            if step is None:
                raise ValueError(f"{where} must be a non-negative integer, got {value!r}")
            return step
        raise NotImplementedError(f"{type(self).__name__} has no rule for loading {name!r}")

    # -- the kernel's scalars --------------------------------------------------------------------
    def group_scalars(self, group: dict[str, Any], dtype: np.dtype) -> tuple:
        """The kernel's leading scalars (flags as bools, numbers cast to ``dtype``)."""
        raise NotImplementedError

    def step_scalars(self, group: dict[str, Any], key: Hashable) -> tuple:
        """The kernel's remaining scalars at the step ``key``, as float64 numbers (and bools)."""
        return ()

    def scalars(self, group: dict[str, Any], key: Hashable, dtype: np.dtype) -> tuple:
        """Every scalar the kernel takes after its arrays, for the step ``key`` (uncached)."""
        return self.group_scalars(group, dtype) + cast_numbers(self.step_scalars(group, key), dtype.type)

    step_dependent: ClassVar[bool]
    """Whether some scalar changes from step to step (``step_scalars`` is defined)."""

    def counters_valid(self, counters: dict[str, Any]) -> bool:
        """Whether ``counters`` (name: value) are valid: the multi-tensor path's quick test,
        which the careful path's ``check_counter`` explains when it fails."""
        for name, value in counters.items():
            if name == "step":
                if type(value) is not int or not 0 <= value < MAX_STEP - 1:
                    return False
                continue
            try:
                self.check_counter(name, name, value)
            except (TypeError, ValueError):
                return False
        return True


def _loaded_step(value: Any) -> int | None:
    """A saved step counter as an int, or None if it is not a whole number in [0, 2**62 - 1).
    Compared as Python numbers: a NumPy float16 compared with 2**62 would overflow (and warn)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        return None
    if isinstance(value, numbers.Integral):
        value = int(value)
    else:
        try:
            value = float(value)
        except OverflowError:
            return None
        if not value.is_integer():  # also NaN and inf
            return None
        value = int(value)
    return value if 0 <= value < MAX_STEP - 1 else None


class Double(float):
    """A step scalar a kernel takes as a float64 number whatever the arrays' dtype (Adafactor's
    ``rho_t``, used in float64 arithmetic with the kernel's sums): ``cast_numbers`` leaves it a
    Python float."""


def cast_numbers(values: tuple, cast) -> tuple:
    """``values`` with every number cast (``np.float32`` ...), every flag left a bool and every
    :class:`Double` a Python float."""
    return tuple(value if type(value) is bool else float(value) if type(value) is Double else cast(value)
                 for value in values)


def moment_scalars(group: dict[str, Any], dtype: np.dtype) -> tuple:
    """``(beta1, 1 - beta1, beta2, 1 - beta2)`` cast to ``dtype``: the decay rates of the two
    moments of Adam, NAdam and RAdam and their complements, each computed in float64."""
    cast = dtype.type
    beta1, beta2 = group["betas"]
    return cast(beta1), cast(1.0 - beta1), cast(beta2), cast(1.0 - beta2)


def weight_decay_scalars(group: dict[str, Any], dtype: np.dtype) -> tuple:
    """``(weight_decay, decay_factor)`` for a kernel's weight-decay line (2): the L2 coefficient
    (0 when decoupled) and the factor ``1 - lr * weight_decay`` (1 unless decoupled), each computed
    in float64 and cast to ``dtype``. Decoupled decay is torch's ``decoupled_weight_decay`` (AdamW)
    and what Keras's ``weight_decay`` does in every optimizer."""
    weight_decay = group["weight_decay"]
    if group["decoupled_weight_decay"] and weight_decay != 0:
        return dtype.type(0.0), dtype.type(1.0 - group["lr"] * weight_decay)
    return dtype.type(weight_decay), dtype.type(1.0)
