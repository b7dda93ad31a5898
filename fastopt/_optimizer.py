"""The public layer shared by every optimizer: parameter groups, validation, state, state_dict.

Design (what each layer checks, and what it assumes):

* ``Optimizer`` (this file) checks everything: hyperparameters (torch.optim's conditions and
  messages), every parameter and gradient array, and the structure of loaded state dicts. It
  checks all of a step's inputs **before** it changes anything, so a rejected call leaves the
  parameters and the state exactly as they were.
* Each optimizer class (``fastopt/adam/__init__.py`` ...) computes the per-step scalars (bias
  corrections, step sizes, ``1 - beta``) once, in float64, casts them to the array's dtype, and
  hands them to its kernel.
* The kernels (``reference.py``, ``_numba.py``, ``_cython.pyx``) assume valid input: they update
  flat, contiguous arrays in place, allocate nothing and check nothing.
"""

from __future__ import annotations

import bisect
import functools
import inspect
import math
import numbers
import operator
from collections.abc import Hashable, Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from . import _backends
from ._memory import aligned_copy, aligned_full
from . import _threads
from ._threads import threads_for
from ._validation import (
    MAX_STEP,
    check_grad,
    check_real,
    check_param,
    check_state_array,
    check_step,
    flat_view,
    memory_extent,
)

def _silence_fp_warnings(kernel):
    """Run a NumPy reference kernel without RuntimeWarnings for overflow, 0/0 and the like.

    The compiled twins follow IEEE arithmetic silently (inf and NaN propagate, as in torch); the
    reference computes the same bits and should not be noisier than them.
    """

    @functools.wraps(kernel)
    def quiet_kernel(*args):
        with np.errstate(all="ignore"):
            kernel(*args)

    return quiet_kernel


def _specialise(kernel) -> dict[np.dtype, Any]:
    """The kernel to call per dtype. A Cython fused function is indexed by its C type once here,
    which skips the dispatch on every call (about a microsecond per call on small arrays)."""
    signatures = getattr(kernel, "__signatures__", None)
    if signatures is not None and {"float", "double"} <= set(signatures):
        return {np.dtype(np.float32): kernel["float"], np.dtype(np.float64): kernel["double"]}
    return {np.dtype(np.float32): kernel, np.dtype(np.float64): kernel}


def _typed(value: Any) -> Any:
    """A value with its type (and its items' types), for "unchanged since validated" tests:
    ``1 + 0j == 1.0`` and ``True == 1``, but neither passes the check that ``1.0`` passed."""
    if type(value) is tuple or type(value) is list:
        return type(value), tuple(map(_typed, value))
    return type(value), value


def _snapshot(group: dict[str, Any], keys) -> tuple:
    return tuple(_typed(group[key]) for key in keys)


_IMMUTABLE_TYPES = (float, int, bool, str, type(None), np.floating, np.integer, np.bool_)


def _immutable(value: Any) -> bool:
    """Whether ``value`` cannot change in place (a number, string, None, or a tuple of those):
    then holding the same object means holding the same value."""
    if type(value) is tuple:
        return all(map(_immutable, value))
    return isinstance(value, _IMMUTABLE_TYPES)


CAST_SAFE_MAGNITUDE = 1e15
"""Hyperparameters no larger than this keep every derived kernel scalar far inside float32's range
(3.4e38): each is at most a product of two hyperparameters, or one divided by a bias correction
(>= 2**-53), so below about 1e31. The float32 casts then cannot overflow, and a step skips the
``np.errstate`` that would otherwise silence the overflow warning (about a microsecond)."""


def _cast_safe(group: dict[str, Any], keys) -> bool:
    """Whether every number among the group's (validated) hyperparameters is at most
    CAST_SAFE_MAGNITUDE; anything unexpected counts as unsafe (the step then uses errstate)."""
    for key in keys:
        value = group[key]
        for item in value if type(value) in (tuple, list) else (value,):
            if isinstance(item, (bool, np.bool_, str, type(None))):
                continue
            try:  # as a Python float: comparing a float16 with 1e15 would overflow float16
                if not abs(float(item)) <= CAST_SAFE_MAGNITUDE:
                    return False
            except (TypeError, ValueError, OverflowError):
                return False
    return True


def _loaded_step(value: Any) -> int | None:
    """A saved step counter as an int (torch saves a float32 tensor), or None if it is not a
    whole number in [0, 2**62 - 1). Compared as Python numbers: a NumPy float16 compared with
    2**62 would overflow (and warn)."""
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


CONVENTIONS = ("torch", "keras", "optax")
"""The frameworks whose arithmetic a ``convention=`` preset reproduces (see each class's
``conventions`` and ``python -m fastopt conventions``)."""


def _with_convention(init):
    """Wrap a subclass's ``__init__`` so that ``convention="keras"`` (say) supplies that framework's
    values for every argument the caller did not pass; explicit arguments always win."""
    signature = inspect.signature(init)
    if "convention" not in signature.parameters:
        return init

    @functools.wraps(init)
    def __init__(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        convention = bound.arguments.get("convention")
        if convention is not None:
            for key, value in type(self).preset(convention).items():
                bound.arguments.setdefault(key, value)
        self.convention = convention
        init(*bound.args, **bound.kwargs)

    return __init__


def weight_decay_scalars(group: dict[str, Any], dtype: np.dtype) -> tuple:
    """``(weight_decay, decay_factor)`` for a kernel's weight-decay line: the L2 coefficient (0 when
    decoupled) and the factor ``1 - lr * weight_decay`` (1 unless decoupled), each computed in
    float64 and cast to ``dtype``. Decoupled decay is torch's ``decoupled_weight_decay`` (AdamW)
    and what Keras's ``weight_decay`` does in every optimizer."""
    weight_decay = group["weight_decay"]
    if group["decoupled_weight_decay"] and weight_decay != 0:
        return dtype.type(0.0), dtype.type(1.0 - group["lr"] * weight_decay)
    return dtype.type(weight_decay), dtype.type(1.0)


_FLOAT64 = np.dtype(np.float64)


_PLAIN_TYPES = (float, int, bool, str, type(None))


def _plain(group: dict[str, Any], keys) -> bool:
    """Whether every hyperparameter is exactly a Python float, int, bool, str or None (or a tuple
    or list of those). The float64 scalars computed from such values are Python floats, ints and
    bools, which a Cython typed argument converts to a C double exactly (ints below 2**53)."""
    for key in keys:
        value = group[key]
        for item in value if type(value) in (tuple, list) else (value,):
            if type(item) not in _PLAIN_TYPES:
                return False
    return True


def _cast_numbers(values: tuple, cast) -> tuple:
    """``values`` with every number cast (``np.float32`` ...) and every flag left a bool."""
    return tuple(value if type(value) is bool else cast(value) for value in values)

# Fills a kernel's slot for a buffer the options leave unused (the kernel never touches it).
_EMPTY = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}


class Optimizer:
    """Base class; see the subclasses (``fastopt.SGD`` ...) for the algorithms.

    Parameters
    ----------
    params : list of ndarray, or list of dict
        The arrays to optimize (float32 or float64, C-contiguous, writeable, any shape), or
        parameter groups ``{"params": [...], <hyperparameter overrides>}`` as in torch.optim.
    defaults : dict
        The constructor's hyperparameters, used for keys a group does not set.
    backend : {"auto", "reference", "numba", "cython"}
        Which implementation of the kernel runs; ``"auto"`` picks the fastest available.

    Attributes
    ----------
    param_groups : list of dict
        One dict per group, holding ``"params"`` and every hyperparameter. Changing a value (for
        example ``group["lr"]``) takes effect at the next ``step``; it is validated there.
    state : dict
        Per-parameter state, keyed by the parameter's index (its position in group order, the
        same index ``step``'s ``grads`` and ``state_dict`` use), under torch.optim's key names.
    backend : str
        The backend actually in use (``"auto"`` resolved).
    """

    name: ClassVar[str]  # the optimizer's folder, e.g. "adam" (its maths and this class)
    kernel: ClassVar[str]  # the folder of the kernel that steps it, f"{kernel}_update": its own by
    # default; AdamW's is Adam's (decoupled weight decay is one of Adam's flags)
    state_keys: ClassVar[tuple[str, ...]]  # every state key this optimizer may hold
    required_state_keys: ClassVar[tuple[str, ...]]  # keys every parameter's state must hold
    eager_state: ClassVar[bool] = False  # create state in the constructor (Adagrad) or lazily
    # Presets of ``convention=``: framework -> the constructor arguments it sets (that framework's
    # defaults and the flags that reproduce its arithmetic). Explicit arguments win over a preset.
    conventions: ClassVar[dict[str, dict[str, Any]]] = {}
    # Why a framework has no preset for this optimizer (shown in the error).
    not_offered: ClassVar[dict[str, str]] = {}
    # The arithmetic flags and their torch values: a checkpoint saved before a flag existed loads
    # with the torch value, which is what it computed.
    flag_defaults: ClassVar[dict[str, Any]] = {}
    convention: str | None = None  # the preset the optimizer was built with, if any

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__ and "kernel" not in cls.__dict__:
            cls.kernel = cls.name
        if "__init__" in cls.__dict__:
            cls.__init__ = _with_convention(cls.__init__)

    @classmethod
    def preset(cls, convention: str) -> dict[str, Any]:
        """The constructor arguments ``convention`` sets for this optimizer (a copy).

        Raises ``ValueError`` for an unknown framework, or one whose same-named optimizer fastopt
        does not reproduce (the message says why).
        """
        if not isinstance(convention, str) or convention not in CONVENTIONS:
            raise ValueError(f"convention must be one of {', '.join(map(repr, CONVENTIONS))} or None, got {convention!r}")
        if convention not in cls.conventions:
            offered = ", ".join(map(repr, cls.conventions)) or "none"
            raise ValueError(
                f"{cls.__name__} has no {convention!r} convention: {cls.not_offered.get(convention, 'not offered')}. "
                f"Offered: {offered}"
            )
        return dict(cls.conventions[convention])

    def __init__(self, params: Iterable, defaults: dict[str, Any], backend: str = "auto") -> None:
        self.check_hyperparameters(defaults)
        self.defaults = dict(defaults)
        self.backend = _backends.resolve_backend(backend)
        kernel = _backends.get_kernel(self.kernel, self.backend)
        if self.backend == "reference":
            kernel = _silence_fp_warnings(kernel)
        self._kernels = _specialise(kernel)
        self._parallel_kernels: dict | None = None
        # The multi-tensor path: the Cython backend steps a whole group per call.
        self._many_kernels, self._batch_type, self._groups_as_validated = None, None, None
        if self.backend == "cython":
            self._many_kernels = _specialise(_backends.get_kernel(self.kernel, self.backend, many=True))
            from ._native.batch import Batch
            from ._native.identity import groups_as_validated

            self._batch_type, self._groups_as_validated = Batch, groups_as_validated
        self._hyperparameter_keys = tuple(self.defaults)
        # Cython kernels take their scalars as typed C arguments, which round a float64 to float32
        # by the same conversion as np.float32(x); Numba would compile a float64 variant instead.
        self._typed_arguments_cast = self.backend == "cython"
        # _group_scalars + _step_scalars, or _kernel_scalars overridden whole (see _kernel_scalars)
        self._scalars_split = type(self)._kernel_scalars is Optimizer._kernel_scalars
        self._validated: list[tuple | None] = []  # hyperparameters as last validated, per group
        # Per group: the hyperparameter objects last validated (None if one of them is mutable), and
        # whether their magnitudes make float32 casts safe; the kernel scalars last computed.
        self._validated_objects: list[tuple | None] = []
        self._cast_safe: list[bool] = []
        self._step_scalars_as_floats: list[bool] = []
        self._group_layout: list[tuple] = []
        self._scalar_cache: dict[tuple, tuple] = {}
        self._group_scalar_cache: dict[tuple, tuple] = {}
        self._flat_state_cache: dict[int, tuple] = {}
        self._checked_states: dict[int, tuple] = {}  # state entries as last checked, per index
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        self._params: list[np.ndarray] = []  # every parameter, in group order
        self._flat_params: list[np.ndarray] = []  # 1-D views of the same memory
        self._group_members: list[list[np.ndarray]] = []  # what each group held when registered
        self._extents: list[tuple[int, int, int]] = []  # sorted (start, end, index) of param memory

        if isinstance(params, np.ndarray):
            raise TypeError(
                "params must be a list of arrays or of dicts (parameter groups), "
                "not a single numpy.ndarray: wrap it as [array]"
            )
        if isinstance(params, (dict, str, bytes)) or not isinstance(params, Iterable):
            raise TypeError(
                "params must be a list of arrays or of dicts (parameter groups), "
                f"got {type(params).__name__}"
            )
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ----------------------------------------------------------------------------------------
    # Subclass interface
    # ----------------------------------------------------------------------------------------
    @staticmethod
    def check_hyperparameters(group: dict[str, Any]) -> None:
        """Raise ``TypeError``/``ValueError`` (torch.optim's messages) for invalid values."""
        raise NotImplementedError

    def _init_state(self, param: np.ndarray, group: dict[str, Any]) -> dict[str, Any]:
        """The state of a parameter before its first step (created then, or in the constructor
        when ``eager_state`` is set)."""
        return {}

    def _begin_step(self, param: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> Hashable:
        """Advance one parameter's state for this step (step counter, buffers an option needs)
        and return the key of the step's scalars (e.g. the step number ``t``)."""
        raise NotImplementedError

    def _kernel_slots(self, group: dict[str, Any]) -> tuple[str | None, ...]:
        """The state arrays the kernel takes after ``param, grad``, by key, in its order; ``None``
        for a slot the options leave unused (it receives an empty array)."""
        raise NotImplementedError

    step_key: ClassVar[str | None] = "step"  # the state's step counter, if the optimizer keeps one

    def _check_scalar_state(self, where: str, value: object) -> None:
        """Raise ``TypeError``/``ValueError`` unless a scalar state entry (besides the step
        counter; NAdam's ``mu_product``) is a finite real number. Subclasses add its range."""
        check_real(where, value)
        if not math.isfinite(value):
            raise ValueError(f"{where} must be finite, got {value!r}")

    def _kernel_scalars(self, group: dict[str, Any], key: Hashable, dtype: np.dtype) -> tuple:
        """The kernel's remaining arguments: flags, and every derived scalar computed once in
        float64 and cast to ``dtype`` (so the kernels do no scalar arithmetic of their own).

        An optimizer whose scalars change with the step (Adam's bias corrections) splits them:
        ``_group_scalars`` (the leading ones, from the hyperparameters alone: computed once per
        validated group) then ``_step_scalars`` (the rest, from the step's key). Others override
        this method whole; ``step()`` then reuses the result while the key stays the same."""
        return self._group_scalars(group, dtype) + _cast_numbers(self._step_scalars(group, key), dtype.type)

    def _group_scalars(self, group: dict[str, Any], dtype: np.dtype) -> tuple:
        """The leading kernel scalars, which depend on the hyperparameters only (see
        ``_kernel_scalars``)."""
        raise NotImplementedError

    def _step_scalars(self, group: dict[str, Any], key: Hashable) -> tuple:
        """The kernel scalars after ``_group_scalars``, which depend on the step's key: numbers
        computed in float64, which the caller casts to the arrays' dtype (and flags, as bools)."""
        raise NotImplementedError

    # Helpers for subclasses -------------------------------------------------------------------
    @staticmethod
    def _zeros_like(param: np.ndarray, fill_value: float = 0.0) -> np.ndarray:
        """State buffer for ``param``: same shape and dtype, 64-byte aligned."""
        with np.errstate(over="ignore"):  # a fill value beyond float32's range becomes inf
            return aligned_full(param.shape, param.dtype, fill_value)

    # ----------------------------------------------------------------------------------------
    # Parameter groups
    # ----------------------------------------------------------------------------------------
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (with optional hyperparameter overrides), as in torch.optim."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        members = param_group["params"]
        if isinstance(members, np.ndarray):
            members = [members]
        elif isinstance(members, (set, frozenset)):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of arrays in sets will change between runs. Please use a list instead."
            )
        elif isinstance(members, (dict, str, bytes)) or not isinstance(members, Iterable):
            raise TypeError(
                f"param_group['params'] must be a list of arrays, got {type(members).__name__}"
            )
        members = list(members)
        unknown = set(param_group) - {"params"} - set(self.defaults)
        if unknown:
            raise ValueError(
                f"param_group has unknown hyperparameter(s) {sorted(unknown)}; "
                f"{type(self).__name__} takes {sorted(self.defaults)}"
            )

        # Validate everything first ...
        first_index = len(self._params)
        extents = list(self._extents)
        state_extents = self._state_extents()
        for offset, param in enumerate(members):
            index = first_index + offset
            check_param(f"params[{index}]", param)
            if param.nbytes:
                start, end = memory_extent(param)
                position = bisect.bisect_left(extents, (start, end, index))
                for neighbour in extents[max(position - 1, 0) : position + 1]:
                    if neighbour[0] < end and start < neighbour[1]:
                        same = neighbour[1] - neighbour[0] == end - start and neighbour[0] == start
                        relation = "is the same array as" if same else "shares memory with"
                        raise ValueError(
                            f"params[{index}] {relation} params[{neighbour[2]}]; "
                            "every parameter must own its memory"
                        )
                extents.insert(position, (start, end, index))
                position = bisect.bisect_left(state_extents, (start, end))
                for neighbour in state_extents[max(position - 1, 0) : position + 1]:
                    if neighbour[0] < end and start < neighbour[1]:
                        raise ValueError(
                            f"params[{index}] shares memory with the optimizer's state "
                            f"{neighbour[3]!r} of params[{neighbour[2]}]; every parameter must own its memory"
                        )
            elif any(param is other for other in members[:offset]) or any(param is p for p in self._params):
                raise ValueError(f"params[{index}] is the same array as an earlier parameter")
        group = {"params": members, **{key: param_group.get(key, value) for key, value in self.defaults.items()}}
        self.check_hyperparameters(group)

        # ... then register.
        self.param_groups.append(group)
        self._validated.append(_snapshot(group, self.defaults))
        self._remember_validated(len(self.param_groups) - 1, group)
        self._group_members.append(list(members))
        self._extents = extents
        for offset, param in enumerate(members):
            self._params.append(param)
            self._flat_params.append(flat_view(param))
            if self.eager_state:
                self.state[first_index + offset] = self._init_state(param, group)

    def _state_extents(self) -> list[tuple[int, int, int, str]]:
        """Sorted ``(start, end, index, key)`` of every non-empty state buffer's memory."""
        extents = []
        if isinstance(self.state, dict):
            for index, entry in self.state.items():
                if isinstance(entry, dict):
                    for key, value in entry.items():
                        if isinstance(value, np.ndarray) and value.nbytes and value.flags.c_contiguous:
                            extents.append((*memory_extent(value), index, key))
        extents.sort()
        return extents

    def _check_groups_unchanged(self) -> None:
        if len(self.param_groups) != len(self._group_members):
            raise ValueError(
                "param_groups changed length after construction; use add_param_group() to add a group"
            )
        for group_index, (group, members) in enumerate(zip(self.param_groups, self._group_members)):
            current = group["params"]
            if len(current) != len(members) or not all(map(operator.is_, current, members)):
                raise ValueError(
                    f"param_groups[{group_index}]['params'] changed after it was added; "
                    "build a new optimizer (or use add_param_group) to optimize other arrays"
                )

    # ----------------------------------------------------------------------------------------
    # The step
    # ----------------------------------------------------------------------------------------
    def step(self, grads: Sequence[np.ndarray | None]) -> None:
        """Update every parameter in place from its gradient.

        ``grads`` holds one entry per parameter, in group order (the order of ``state``'s
        indices). A ``None`` entry leaves that parameter and its state untouched. All inputs are
        checked before anything is modified.
        """
        if type(grads) is not list and type(grads) is not tuple and (isinstance(grads, np.ndarray) or not isinstance(grads, Sequence)):
            raise TypeError(
                "grads must be a sequence (list or tuple) with one array or None per parameter, "
                f"got {type(grads).__name__}"
            )
        # groups and hyperparameters as last validated (identity, checked in C), or the full checks
        as_validated = self._groups_as_validated is not None and self._groups_as_validated(
            self.param_groups, self._group_members, self._hyperparameter_keys, self._validated_objects
        )
        if not as_validated:
            self._check_groups_unchanged()
        if len(grads) != len(self._params):
            raise ValueError(
                f"step() expected {len(self._params)} gradients (one per parameter, in "
                f"param_groups order), got {len(grads)}"
            )
        if not as_validated:
            self._check_all_hyperparameters()
        if type(self.state) is not dict:
            raise TypeError(f"opt.state must be a dict, got {type(self.state).__name__}")
        if self._many_kernels is not None and self._step_batched(grads):
            return
        flat_grads = []
        for index, (grad, param) in enumerate(zip(grads, self._params)):
            # The common case in one line of cheap tests; anything else gets the full check and
            # its error message.
            if (
                type(grad) is np.ndarray
                and grad.dtype is param.dtype
                and grad.shape == param.shape
                and grad.flags.c_contiguous
                and not (grad.size and np.may_share_memory(grad, param))
            ):
                flat_grads.append(grad.reshape(-1))
            else:
                flat_grads.append(check_grad(index, grad, param))
        self._check_states(flat_grads)

        # Everything is valid: from here on nothing raises, so a step is applied whole or not at all.
        index = 0
        for group_index, group in enumerate(self.param_groups):
            slots = self._group_layout[group_index][0]
            for _ in range(len(group["params"])):
                grad = flat_grads[index]
                if grad is not None:
                    param = self._params[index]
                    state = self.state.get(index)
                    if state is None:
                        state = self._init_state(param, group)
                    key = self._begin_step(param, state, group)
                    scalars = self._scalars(group_index, group, key, param.dtype)
                    flat_param = self._flat_params[index]
                    threads = threads_for(flat_param.size)
                    kernel = self._kernels[param.dtype] if threads == 1 else self._parallel_kernel(param.dtype)
                    kernel(flat_param, grad, *self._flat_state(index, state, slots), *scalars, threads)
                    if state:  # like torch, a parameter without state (plain SGD) has no entry
                        self.state[index] = state
                index += 1

    def _step_batched(self, grads: Sequence[np.ndarray | None]) -> bool:
        """The multi-tensor path (Cython backend): one kernel call per group, all arrays checked
        in C by ``Batch.gather``. Returns False, having changed nothing, when any array needs the
        careful path (a first step, a new buffer, a non-contiguous gradient, an error to report)."""
        batches = []
        start = 0
        for group_index, group in enumerate(self.param_groups):
            members = group["params"]
            end = start + len(members)
            if members:
                states = list(map(self.state.get, range(start, end)))
                # a private list (gather takes lists; the caller's may be a tuple or be changed later)
                group_grads = grads[start:end] if type(grads) is list else list(grads[start:end])
                if group_grads[0] is not None:
                    first = 0
                else:
                    first = next((k for k, grad in enumerate(group_grads) if grad is not None), None)
                    if first is None:  # no gradient in this group: nothing to step
                        start = end
                        continue
                previous_step = -1
                if self.step_key is not None:
                    if type(states[first]) is not dict:
                        return False
                    previous_step = states[first].get(self.step_key, -1)
                    if type(previous_step) is not int or not 0 <= previous_step < MAX_STEP - 1:
                        return False  # the careful path reports it (gather takes a C Py_ssize_t)
                representative = states[first] if type(states[first]) is dict else {}
                slots, _, scalar_keys = self._group_layout[group_index]
                if scalar_keys and not self._scalar_states_shared(representative, states, group_grads, scalar_keys):
                    return False
                dtype = members[0].dtype
                batch = self._batch_type()
                if batch.gather(members, group_grads, states, slots, self.step_key, previous_step, dtype.num) != -1:
                    return False
                # Every parameter of the batch is at the same step with the same scalar state, and
                # every buffer exists: one _begin_step, on a copy, gives the key (and the new
                # scalar entries) they all share.
                advanced = dict(representative)
                key = self._begin_step(members[first], advanced, group)
                stepped = [state for state, grad in zip(states, group_grads) if grad is not None] if scalar_keys else []
                scalar_state = {k: advanced[k] for k in scalar_keys} if scalar_keys else None
                batches.append((group_index, group, batch, dtype, key, stepped, scalar_state))
            start = end
        # Every group is fit: advance the state and compute (nothing below can fail).
        for group_index, group, batch, dtype, key, stepped, scalar_state in batches:
            scalars = self._scalars(group_index, group, key, dtype)
            batch.commit_steps()
            for state in stepped:
                state.update(scalar_state)
            self._many_kernels[dtype](batch, *scalars, _threads._num_threads, _threads._min_size)
        return True

    def _scalar_states_shared(self, representative: dict, states: list, grads: list, keys: tuple[str, ...]) -> bool:
        """Whether every parameter with a gradient holds the same valid scalar state entries
        (``keys``) as ``representative``, so one set of kernel scalars serves them all."""
        try:
            shared = tuple(representative[key] for key in keys)
            for key, value in zip(keys, shared):
                self._check_scalar_state(key, value)
        except (KeyError, TypeError, ValueError):
            return False  # the careful path names the entry
        for state, grad in zip(states, grads):
            if grad is not None:
                if type(state) is not dict:
                    return False
                for key, value in zip(keys, shared):
                    mine = state.get(key)
                    if type(mine) is not type(value) or mine != value:
                        return False
        return True

    def _parallel_kernel(self, dtype: np.dtype):
        """The kernel that runs a call on several threads (made on first use)."""
        if self._parallel_kernels is None:
            kernel = _backends.get_kernel(self.kernel, self.backend, parallel=True)
            if self.backend == "reference":
                kernel = _silence_fp_warnings(kernel)
            self._parallel_kernels = _specialise(kernel)
        return self._parallel_kernels[dtype]

    def _check_all_hyperparameters(self) -> None:
        """Validate every group whose hyperparameters changed since they were last validated.

        Unchanged means the same objects as then (all immutable), or else equal values of the
        same types (``maximize=0`` after ``False`` is checked again)."""
        keys = self._hyperparameter_keys
        for group_index, group in enumerate(self.param_groups):
            objects = self._validated_objects[group_index]
            if objects is not None:
                try:
                    if all(map(operator.is_, map(group.__getitem__, keys), objects)):
                        continue
                except KeyError:
                    pass  # reported below
            try:
                snapshot = _snapshot(group, keys)
                unchanged = snapshot == self._validated[group_index]
            except (KeyError, ValueError, TypeError):  # a missing key, or an array compared
                snapshot, unchanged = None, False
            if not unchanged:
                missing = set(self.defaults) - set(group)
                if missing:
                    raise ValueError(f"param_groups[{group_index}] is missing {sorted(missing)}")
                self.check_hyperparameters(group)
                self._validated[group_index] = snapshot
            self._remember_validated(group_index, group)

    def _remember_validated(self, group_index: int, group: dict[str, Any]) -> None:
        """Record a group's hyperparameters as valid (and forget the scalars made from older ones)."""
        values = tuple(group[key] for key in self._hyperparameter_keys)
        objects = values if _immutable(values) else None
        safe = _cast_safe(group, self._hyperparameter_keys)
        # the step's scalars may go to a Cython kernel as Python floats (see _split_scalars)
        as_floats = self._typed_arguments_cast and safe and _plain(group, self._hyperparameter_keys)
        # the state arrays the kernel takes (with None for an unused slot, and without), and the
        # scalar state entries: they follow the options, so they are kept with them
        slots = self._kernel_slots(group)
        layout = (slots, tuple(key for key in slots if key is not None), self._scalar_state_keys(group))
        if group_index == len(self._validated_objects):
            self._validated_objects.append(objects)
            self._cast_safe.append(safe)
            self._step_scalars_as_floats.append(as_floats)
            self._group_layout.append(layout)
        else:
            self._validated_objects[group_index] = objects
            self._cast_safe[group_index] = safe
            self._step_scalars_as_floats[group_index] = as_floats
            self._group_layout[group_index] = layout
        self._scalar_cache.clear()
        self._group_scalar_cache.clear()

    def _scalars(self, group_index: int, group: dict[str, Any], key: Hashable, dtype: np.dtype) -> tuple:
        """``_kernel_scalars(group, key, dtype)``, reused while the key and the hyperparameters
        stay the same (optimizers whose scalars do not depend on the step compute them once)."""
        cached = self._scalar_cache.get((group_index, dtype))
        if cached is not None and type(cached[0]) is type(key) and cached[0] == key:
            return cached[1]
        if self._cast_safe[group_index]:
            scalars = self._split_scalars(group_index, group, key, dtype, self._step_scalars_as_floats[group_index])
        elif dtype is _FLOAT64:
            scalars = self._split_scalars(group_index, group, key, dtype, False)
        else:
            with np.errstate(over="ignore"):  # a float32 cast overflows to inf, as IEEE says
                scalars = self._split_scalars(group_index, group, key, dtype, False)
        self._scalar_cache[(group_index, dtype)] = (key, scalars)
        return scalars

    def _split_scalars(self, group_index: int, group: dict[str, Any], key: Hashable, dtype: np.dtype,
                       kernel_casts: bool) -> tuple:
        """``_kernel_scalars``, with the group's part computed once per validated group.

        With ``kernel_casts`` the step's part is handed over as computed, Python floats (ints,
        flags): the Cython kernels' typed C arguments round a double to the dtype exactly as
        ``dtype.type`` would (the same C conversion), and a NumPy scalar costs about 0.2 µs to
        make. Used only for the Cython backend, when every hyperparameter is a plain Python number
        (``_plain``: a NumPy scalar, a longdouble or a Fraction could round once more on its way
        through a double) and cast-safe (so no value overflows or is an integer beyond 2**53)."""
        if not self._scalars_split:
            return self._kernel_scalars(group, key, dtype)
        leading = self._group_scalar_cache.get((group_index, dtype))
        if leading is None:
            leading = self._group_scalar_cache[(group_index, dtype)] = self._group_scalars(group, dtype)
        if kernel_casts:
            return leading + self._step_scalars(group, key)
        return leading + _cast_numbers(self._step_scalars(group, key), dtype.type)

    def _check_states(self, flat_grads: list) -> None:
        """Check every state entry this step will use, before anything is updated.

        ``opt.state`` is public and may be edited between steps; an edited entry must give a
        clear error, not an out-of-bounds write in a compiled kernel or half an applied step.
        The buffers the kernel will take (its slots, for the group's current options) and the
        keys every entry must hold are checked in full when the entry changed since its last
        check (identity of the dict and of those arrays); the step counter, which changes every
        step, is checked every time. Keys the step does not use are left alone.
        """
        state = self.state  # a dict: step() checked
        checked, step_key = self._checked_states, self.step_key
        start = 0
        for group_index, group in enumerate(self.param_groups):
            end = start + len(group["params"])
            _, slots, scalar_keys = self._group_layout[group_index]
            for index in range(start, end):
                if flat_grads[index] is None:
                    continue
                entry = state.get(index)
                if entry is None:
                    continue
                cached = checked.get(index)
                if (
                    cached is None
                    or cached[0] is not entry
                    or cached[1] != slots
                    or not all(map(operator.is_, map(entry.get, slots), cached[2]))
                ):
                    self._check_param_state(index, entry, slots)
                for key in scalar_keys:  # read by _begin_step: present, in range
                    if type(entry) is not dict or key not in entry:
                        self._check_param_state(index, entry, slots)
                        raise ValueError(f"opt.state[{index}] is missing [{key!r}]")
                    self._check_scalar_state(f"opt.state[{index}][{key!r}]", entry[key])
                if step_key is not None:
                    step = entry.get(step_key)
                    if type(step) is not int or not 0 <= step < MAX_STEP - 1:
                        self._check_param_state(index, entry, slots)  # names a missing key
                        check_step(f"opt.state[{index}][{step_key!r}]", step)
                        raise ValueError(f"opt.state[{index}][{step_key!r}] = {step} is at the limit of 2**62 steps")
            start = end

    def _scalar_state_keys(self, group: dict[str, Any]) -> tuple[str, ...]:
        """The state keys that hold a number rather than an array, besides the step counter
        (NAdam's ``mu_product``): read from a fresh state, once per optimizer."""
        keys = self.__dict__.get("_scalar_keys")
        if keys is None:
            fresh = self._init_state(np.zeros(()), group)
            keys = tuple(key for key, value in fresh.items() if key != self.step_key and not isinstance(value, np.ndarray))
            self._scalar_keys = keys
        return keys

    def _check_param_state(self, index: int, entry: object, slots: tuple[str, ...]) -> None:
        where = f"opt.state[{index}]"
        if type(entry) is not dict:
            raise TypeError(f"{where} must be a dict, got {type(entry).__name__}")
        missing = set(self.required_state_keys) - set(entry)
        if missing:
            raise ValueError(f"{where} is missing {sorted(missing)}")
        param = self._params[index]
        arrays: list[tuple[str, np.ndarray]] = []
        for key in slots:
            if key not in entry:
                continue  # an optional buffer not created yet: the step creates it
            value = entry[key]
            check_state_array(f"{where}[{key!r}]", value, param)
            if value.size:
                for other_key, other in arrays:
                    if np.may_share_memory(value, other):
                        raise ValueError(f"{where}[{key!r}] shares memory with {where}[{other_key!r}]")
                start, end = memory_extent(value)
                position = bisect.bisect_left(self._extents, (start, end, -1))
                for neighbour in self._extents[max(position - 1, 0) : position + 1]:
                    if neighbour[0] < end and start < neighbour[1]:
                        raise ValueError(f"{where}[{key!r}] shares memory with params[{neighbour[2]}]")
            arrays.append((key, value))
        self._checked_states[index] = (entry, slots, tuple(entry.get(key) for key in slots))

    def _flat_state(self, index: int, state: dict[str, Any], slots: tuple) -> tuple[np.ndarray, ...]:
        """1-D views of the state arrays in ``slots``, cached; the cache is used only while the
        state still holds the very same arrays (so replacing an array in ``state`` is safe)."""
        cached = self._flat_state_cache.get(index)
        if cached is not None and cached[0] == slots and all(state.get(k) is a for k, a in cached[1]):
            return cached[2]
        dtype = self._params[index].dtype
        arrays = tuple((key, state[key]) for key in slots if key is not None)
        flat = tuple(state[key].reshape(-1) if key is not None else _EMPTY[dtype] for key in slots)
        self._flat_state_cache[index] = (slots, arrays, flat)
        return flat

    # ----------------------------------------------------------------------------------------
    # Checkpoints (torch.optim's layout)
    # ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """``{"state": {index: {key: value}}, "param_groups": [{..., "params": [index, ...]}]}``.

        Arrays are copies: the result does not change when training continues. It can be saved
        with ``pickle`` (or ``np.savez`` after flattening) and loaded with ``load_state_dict``.
        """
        groups = []
        index = 0
        for group in self.param_groups:
            packed = {key: value for key, value in group.items() if key != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            index += len(group["params"])
            groups.append(packed)
        state = {
            i: {key: (value.copy() if isinstance(value, np.ndarray) else value) for key, value in s.items()}
            for i, s in self.state.items()
        }
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore hyperparameters and state saved by ``state_dict`` (arrays are copied in).

        The saved dict must come from the same optimizer class over parameters of the same
        shapes and dtypes, in the same groups; anything else raises and changes nothing.
        """
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("state_dict must be a dict with exactly the keys 'state' and 'param_groups'")
        saved_groups, saved_state = state_dict["param_groups"], state_dict["state"]
        if not isinstance(saved_groups, list) or not isinstance(saved_state, dict):
            raise TypeError("state_dict['param_groups'] must be a list and state_dict['state'] a dict")
        self._check_groups_unchanged()
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")

        new_groups, id_to_index = [], {}
        index = 0
        for group_index, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            where = f"state_dict['param_groups'][{group_index}]"
            if not isinstance(saved, dict) or not isinstance(saved.get("params"), list):
                raise TypeError(f"{where} must be a dict with a 'params' list")
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group ({where} has {len(saved['params'])} parameters, "
                    f"the optimizer's group has {len(group['params'])})"
                )
            keys = set(saved) - {"params"}
            # a flag missing from an older checkpoint takes its torch value (what that run computed)
            missing, unknown = set(self.defaults) - keys - set(self.flag_defaults), keys - set(self.defaults)
            if missing or unknown:
                raise ValueError(
                    f"{where} does not hold {type(self).__name__}'s hyperparameters "
                    f"(missing {sorted(missing)}, unknown {sorted(unknown)}); "
                    "was it saved from another optimizer?"
                )
            new_group = {
                "params": group["params"],
                **{key: saved[key] if key in saved else self.flag_defaults[key] for key in self.defaults},
            }
            if isinstance(new_group.get("betas"), list):
                new_group["betas"] = tuple(new_group["betas"])
            self.check_hyperparameters(new_group)
            for saved_id in saved["params"]:
                if not isinstance(saved_id, numbers.Integral) or saved_id in id_to_index:
                    raise ValueError(f"{where}['params'] must hold distinct integer indices")
                id_to_index[saved_id] = index
                index += 1
            new_groups.append(new_group)

        new_state: dict[int, dict[str, Any]] = {}
        for saved_id, entry in saved_state.items():
            if saved_id not in id_to_index:
                raise ValueError(f"state_dict['state'] has an entry for unknown parameter id {saved_id!r}")
            i = id_to_index[saved_id]
            new_state[i] = self._load_param_state(f"state_dict['state'][{saved_id!r}]", entry, self._params[i])

        for group, new_group in zip(self.param_groups, new_groups):
            group.update(new_group)
        self.state = new_state
        self._flat_state_cache.clear()

    def _load_param_state(self, where: str, entry: object, param: np.ndarray) -> dict[str, Any]:
        if not isinstance(entry, dict):
            raise TypeError(f"{where} must be a dict")
        missing = set(self.required_state_keys) - set(entry)
        unknown = set(entry) - set(self.state_keys)
        if missing or unknown:
            raise ValueError(
                f"{where} does not hold {type(self).__name__} state (missing {sorted(missing)}, "
                f"unknown {sorted(unknown)}); was it saved from another optimizer?"
            )
        loaded: dict[str, Any] = {}
        for key, value in entry.items():
            if key == "step":
                if isinstance(value, np.ndarray) and value.ndim == 0:
                    value = value.item()
                step = _loaded_step(value)
                if step is None:
                    raise ValueError(f"{where}['step'] must be a non-negative integer, got {value!r}")
                loaded[key] = step
                continue
            if not isinstance(value, np.ndarray):
                raise TypeError(f"{where}[{key!r}] must be a numpy.ndarray, got {type(value).__name__}")
            if value.shape != param.shape or value.dtype != param.dtype:
                raise ValueError(
                    f"{where}[{key!r}] has shape {value.shape} and dtype {value.dtype}, but its "
                    f"parameter has shape {param.shape} and dtype {param.dtype}"
                )
            loaded[key] = aligned_copy(value)
        return loaded

    # ----------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        convention = f", convention={self.convention!r}" if self.convention else ""
        lines = [f"{type(self).__name__} (backend={self.backend!r}{convention})"]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        return "\n".join(lines)
