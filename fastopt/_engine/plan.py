"""A parameter group as last validated, and the scalars its steps need.

A front end (``fastopt.Optimizer`` on NumPy arrays, ``fastopt.torch`` on tensors) checks a group's
hyperparameters once, then builds a :class:`Plan` from them, and keeps it while they stay the
same (by identity or by typed value; a change of value *or type* builds a new plan, so
``maximize = 0`` after ``False`` is checked again). The plan knows the algorithm, the kernel's
state slots and its kernels, and caches the kernel's scalars: the hyperparameters' part once per
dtype, the step's part once per step key.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from .algorithm import Algorithm, cast_numbers
from .kernels import Kernels

FLOAT64 = np.dtype(np.float64)

CAST_SAFE_MAGNITUDE = 1e15
"""Hyperparameters no larger than this keep every derived kernel scalar far inside float32's range
(3.4e38): each is at most a product of two hyperparameters, or one divided by a bias correction
(>= 2**-53), so below about 1e31. The float32 casts then cannot overflow, and a step skips the
``np.errstate`` that would otherwise silence the overflow warning (about a microsecond)."""

_PLAIN_TYPES = (float, int, bool, str, type(None))


def _numbers(group: dict[str, Any]):
    """Every number or flag among a group's hyperparameters (pairs such as ``betas`` opened)."""
    for key, value in group.items():
        if key == "params":
            continue
        yield from (value if type(value) in (tuple, list) else (value,))


def cast_safe(group: dict[str, Any]) -> bool:
    """Whether every number among the group's (validated) hyperparameters is at most
    CAST_SAFE_MAGNITUDE; anything unexpected counts as unsafe (the step then uses errstate)."""
    for item in _numbers(group):
        if isinstance(item, (bool, np.bool_, str, type(None))):
            continue
        try:  # as a Python float: comparing a float16 with 1e15 would overflow float16
            if not abs(float(item)) <= CAST_SAFE_MAGNITUDE:
                return False
        except (TypeError, ValueError, OverflowError):
            return False
    return True


def plain(group: dict[str, Any]) -> bool:
    """Whether every hyperparameter is exactly a Python float, int, bool, str or None (or a pair
    of those). The float64 scalars computed from such values are Python floats, ints and bools,
    which a Cython typed argument converts to a C double exactly (ints below 2**53)."""
    return all(type(item) in _PLAIN_TYPES for item in _numbers(group))


class Plan:
    """One validated group: ``algorithm``, ``group`` (its hyperparameters in fastopt's names),
    the kernel's ``slots`` (``keys``: the used ones) and ``kernels``."""

    __slots__ = ("algorithm", "group", "slots", "keys", "kernels", "_cast_safe", "_as_floats", "_leading", "_last",
                 "_step_scalars")

    def __init__(self, algorithm: Algorithm, group: dict[str, Any], kernels: Kernels) -> None:
        self.algorithm = algorithm
        self.group = group
        self.slots = algorithm.slots(group)
        self.keys = tuple(slot for slot in self.slots if slot is not None)
        self.kernels = kernels
        self._cast_safe = cast_safe(group)
        # The step's scalars may go to a Cython kernel as Python floats: its typed C arguments
        # round a double to the arrays' dtype exactly as ``dtype.type`` would (the same C
        # conversion), and a NumPy scalar costs about 0.2 µs to make. Only when every
        # hyperparameter is a plain Python number (a NumPy scalar, a longdouble or a Fraction
        # could round once more on its way through a double) and cast-safe (no value overflows or
        # is an integer beyond 2**53).
        self._as_floats = kernels.takes_doubles and self._cast_safe and plain(group)
        self._leading: dict[np.dtype, tuple] = {}  # group_scalars per dtype
        self._last: dict[np.dtype, tuple] = {}  # dtype -> (key, scalars) of the last step
        self._step_scalars = algorithm.step_scalars if algorithm.step_dependent else None

    def scalars(self, key: Hashable, dtype: np.dtype) -> tuple:
        """The kernel's scalars for the step ``key`` in ``dtype``, reused while the key is the same
        (an algorithm whose scalars do not change from step to step computes them once)."""
        last = self._last.get(dtype)
        if last is not None and type(last[0]) is type(key) and last[0] == key:
            return last[1]
        leading = self._leading.get(dtype)
        if self._as_floats and leading is not None:  # the common case, in short
            scalars = leading + self._step_scalars(self.group, key)
        elif self._cast_safe:
            scalars = self._compute(key, dtype, self._as_floats)
        elif dtype is FLOAT64:
            scalars = self._compute(key, dtype, False)
        else:
            with np.errstate(over="ignore"):  # a float32 cast overflows to inf, as IEEE says
                scalars = self._compute(key, dtype, False)
        self._last[dtype] = (key, scalars)
        return scalars

    def _compute(self, key: Hashable, dtype: np.dtype, as_floats: bool) -> tuple:
        if self._step_scalars is None:
            return self.algorithm.scalars(self.group, key, dtype)
        leading = self._leading.get(dtype)
        if leading is None:
            leading = self._leading[dtype] = self.algorithm.group_scalars(self.group, dtype)
        step = self._step_scalars(self.group, key)
        return leading + (step if as_floats else cast_numbers(step, dtype.type))
