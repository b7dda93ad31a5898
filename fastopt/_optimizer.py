"""``fastopt.Optimizer``: the front end on NumPy arrays (the base class of ``fastopt.Adam`` ...).

Design (what each layer checks, and what it assumes):

* This class owns what is particular to NumPy arrays: parameter groups of arrays registered once
  (each checked, none sharing memory with another), ``step(grads)`` with one gradient per
  parameter, ``opt.state`` keyed by the parameter's index, and the checks and messages of all of
  them. It checks all of a step's inputs **before** it changes anything, so a rejected call leaves
  the parameters and the state exactly as they were. ``state_dict`` and ``load_state_dict`` are in
  :mod:`fastopt._checkpoint`.
* The step itself (plans, scalars, the fast multi-tensor path and the careful path) is the
  engine's (:mod:`fastopt._engine`), shared with :mod:`fastopt.torch`; so is each optimizer's
  arithmetic, its :class:`~fastopt._engine.Algorithm` (``fastopt.adam.AdamAlgorithm`` ...).
* The kernels (``reference.py``, ``_numba.py``, ``_cython.pyx``) assume valid input: they update
  flat, contiguous arrays in place and allocate nothing; each checks only that every array it
  touches has ``param``'s length.
"""

from __future__ import annotations

import bisect
import functools
import inspect
import operator
import threading
import types
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import numpy as np

from . import _backends
from ._threads import one_at_a_time
from ._checkpoint import Checkpoints
from ._engine import EMPTY, Algorithm, Engine, Plan, kernels_for
from ._engine.rows import check_sparse_grad
from ._memory import aligned_full
from ._rounding import is_low_precision, state_dtype
from ._validation import check_grad, check_param, check_state_array, flat_view, memory_extent


def _typed(value: Any) -> Any:
    """A value with its type (and its items' types), for "unchanged since validated" tests:
    ``1 + 0j == 1.0`` and ``True == 1``, but neither passes the check that ``1.0`` passed."""
    if type(value) is tuple or type(value) is list:
        return type(value), tuple(map(_typed, value))
    return type(value), value


# A plain function (ADOPT's clip_lambda) counts as immutable: like the snapshot, which compares
# it by identity, holding the same function object means holding the same hyperparameter.
_IMMUTABLE_TYPES = (float, int, bool, str, type(None), np.floating, np.integer, np.bool_, types.FunctionType)


def _immutable(value: Any) -> bool:
    """Whether ``value`` cannot change in place (a number, string, None, or a tuple of those):
    then holding the same object means holding the same value."""
    if type(value) is tuple:
        return all(map(_immutable, value))
    return isinstance(value, _IMMUTABLE_TYPES)


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


_NOT_HYPERPARAMETERS = frozenset(("self", "params", "convention", "backend", "__class__"))


def hyperparameters(arguments: dict[str, Any]) -> dict[str, Any]:
    """A constructor's hyperparameters from its ``locals()``: every argument but ``params``,
    ``convention`` and ``backend``, in the signature's order (they become ``defaults``)."""
    return {key: value for key, value in arguments.items() if key not in _NOT_HYPERPARAMETERS}


# Fills a kernel's slot for a buffer the options leave unused (the kernel never touches it).
_EMPTY = {np.dtype(np.float32): np.empty(0, np.float32), np.dtype(np.float64): np.empty(0, np.float64)}


class Optimizer(Checkpoints):
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

    algorithm: ClassVar[Algorithm]  # the optimizer's arithmetic, shared with fastopt.torch
    name: ClassVar[str]  # the optimizer's folder, e.g. "adam" (its maths and this class)
    # From the algorithm (set for each subclass): the folder of the kernel that steps it (AdamW's
    # is Adam's), the state it keeps, and the torch values of its convention flags.
    kernel: ClassVar[str]
    state_keys: ClassVar[tuple[str, ...]]
    required_state_keys: ClassVar[tuple[str, ...]]
    step_key: ClassVar[str | None]
    flag_defaults: ClassVar[dict[str, Any]] = {}
    # Group entries that are counters, not hyperparameters (Schedule-Free's ``k``...): saved and
    # loaded with the group, but not part of the snapshot that decides whether it is revalidated.
    group_counters: ClassVar[tuple[str, ...]] = ()
    # Presets of ``convention=``: framework -> the constructor arguments it sets (that framework's
    # defaults and the flags that reproduce its arithmetic). Explicit arguments win over a preset.
    conventions: ClassVar[dict[str, dict[str, Any]]] = {}
    # Why a framework has no preset for this optimizer (shown in the error).
    not_offered: ClassVar[dict[str, str]] = {}
    convention: str | None = None  # the preset the optimizer was built with, if any

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _with_convention(cls.__init__)
        algorithm = cls.__dict__.get("algorithm")
        if algorithm is not None:
            cls.kernel = algorithm.kernel
            cls.state_keys = algorithm.state_keys
            cls.required_state_keys = algorithm.required
            cls.step_key = "step" if "step" in algorithm.counters else None
            cls.flag_defaults = dict(algorithm.flag_defaults)

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

    def check_hyperparameters(self, group: dict[str, Any]) -> None:
        """Raise ``TypeError``/``ValueError`` (torch.optim's messages) for invalid values."""
        self.algorithm.check(group)

    def __init__(self, params: Iterable, defaults: dict[str, Any], backend: str = "auto") -> None:
        self.check_hyperparameters(defaults)
        self._lock = threading.RLock()  # one step (or checkpoint) at a time: _threads.one_at_a_time
        self.defaults = dict(defaults)
        self.backend = _backends.resolve_backend(backend)
        self._engine = Engine(self.backend)
        self._hyperparameter_keys = tuple(key for key in self.defaults if key not in self.group_counters)
        self._plans: list[Plan] = []  # per group, as last validated
        self._validated: list[tuple] = []  # per group: its hyperparameters' typed snapshot then
        # per group: the hyperparameter objects then (None if one of them is mutable), which the
        # step compares by identity, in C, before anything else
        self._validated_objects: list[tuple | None] = []
        self._checked_states: dict[int, tuple] = {}  # state entries as last checked, per index
        self._flat_state_cache: dict[int, tuple] = {}
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}
        self._params: list[np.ndarray] = []  # every parameter, in group order
        self._flat_params: list[np.ndarray] = []  # 1-D views of the same memory
        self._group_members: list[list[np.ndarray]] = []  # what each group held when registered
        self._group_starts: list[int] = []  # index of each group's first parameter
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

    def _new_buffer(self, key: str, param: np.ndarray, group: dict[str, Any]) -> np.ndarray:
        """State buffer ``key`` for ``param``: its dtype (float32 for a 16-bit one), the algorithm's shape for it (the
        parameter's, but Adafactor's factors), 64-byte aligned, filled with its first value."""
        shape = self.algorithm.buffer_shape(key, param.shape)
        with np.errstate(over="ignore"):  # a fill value beyond float32's range becomes inf
            return aligned_full(shape, state_dtype(param.dtype), self.algorithm.fill(key, group))

    def _new_state(self, param: np.ndarray, group: dict[str, Any]) -> dict[str, Any]:
        """A parameter's state before its first step: its counters, and its kernel's buffers."""
        algorithm = self.algorithm
        counters, slots = algorithm.initial_counters(group), algorithm.slots(group)
        state = {}
        for key in algorithm.state_keys:
            if key in counters:
                state[key] = counters[key]
            elif key in slots and algorithm.buffer_shape(key, param.shape) is not None:
                state[key] = self._new_buffer(key, param, group)
        return state

    # ----------------------------------------------------------------------------------------
    # Parameter groups
    # ----------------------------------------------------------------------------------------
    @one_at_a_time
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
            if not self.algorithm.low_precision and state_dtype(param.dtype) is not param.dtype:
                raise TypeError(
                    f"params[{index}] has dtype {param.dtype}; {type(self).__name__} steps float32 and "
                    "float64 arrays only (keep float32 master weights and step those)"
                )
            self.algorithm.check_shape(f"params[{index}]", param.shape)
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
        self._validated.append(tuple(_typed(group[key]) for key in self._hyperparameter_keys))
        self._remember_validated(len(self.param_groups) - 1, group)
        self._group_members.append(list(members))
        self._group_starts.append(first_index)
        self._extents = extents
        for offset, param in enumerate(members):
            self._params.append(param)
            self._flat_params.append(flat_view(param))
            if self.algorithm.eager:
                self.state[first_index + offset] = self._new_state(param, group)

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
                snapshot = tuple(_typed(group[key]) for key in keys)
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
        """Record a group's hyperparameters as valid: a new plan (and new cached scalars)."""
        values = tuple(group[key] for key in self._hyperparameter_keys)
        algorithm = self.algorithm
        plan = Plan(algorithm, group, kernels_for(algorithm.kernel, self.backend, 2 + len(algorithm.slots(group))))
        objects = values if _immutable(values) else None
        if group_index == len(self._plans):
            self._plans.append(plan)
            self._validated_objects.append(objects)
        else:
            self._plans[group_index] = plan
            self._validated_objects[group_index] = objects

    # ----------------------------------------------------------------------------------------
    # The step
    # ----------------------------------------------------------------------------------------
    def step(self, grads: Sequence[np.ndarray | None], *, copy_to: Sequence[np.ndarray | None] | None = None) -> None:
        """Update every parameter in place from its gradient.

        ``grads`` holds one entry per parameter, in group order (the order of ``state``'s
        indices). A ``None`` entry leaves that parameter and its state untouched. All inputs are
        checked before anything is modified. Calls from several threads run one at a time.

        ``copy_to``: float32 parameters as **master weights** of a float16 or bfloat16 model.
        One entry per parameter, ``None`` or a float16/bfloat16 array of its shape (C-contiguous,
        writeable, its own memory), into which the new values are written, rounded to nearest
        even, in the same pass as the step (each block rounded while it is still in cache:
        DeepSpeed's CPUAdam ``step_plus_copy``). A parameter without a gradient is not stepped
        and its copy is not written. Checkpoints hold the float32 master weights and state.
        """
        if type(grads) is not list and type(grads) is not tuple and (isinstance(grads, np.ndarray) or not isinstance(grads, Sequence)):
            raise TypeError(
                "grads must be a sequence (list or tuple) with one array or None per parameter, "
                f"got {type(grads).__name__}"
            )
        lock = self._lock  # one step at a time; acquire/release cost half of a `with`
        lock.acquire()
        try:
            # groups and hyperparameters as last validated (identity, checked in C), or the full checks
            as_validated = self._engine.batched and _groups_as_validated(
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
            if copy_to is not None:
                self._copies = self._check_copies(copy_to, grads)
            self._engine.step(self._plans, self, grads)
        finally:
            self._copies = None
            lock.release()

    _copies: list | None = None  # during a step with copy_to: each parameter's flat copy, or None

    def _check_copies(self, copy_to: object, grads: Sequence) -> list:
        """``copy_to`` checked in full (see :meth:`step`): the flat copies, or an error naming the
        entry; nothing has changed yet."""
        if type(copy_to) not in (list, tuple):
            raise TypeError(f"copy_to must be a list or tuple with one array or None per parameter, got {type(copy_to).__name__}")
        if len(copy_to) != len(self._params):
            raise ValueError(f"copy_to has {len(copy_to)} entries for {len(self._params)} parameters")
        copies, extents = [], []
        for index, (copy, param) in enumerate(zip(copy_to, self._params)):
            where = f"copy_to[{index}]"
            if copy is None:
                copies.append(None)
                continue
            if not isinstance(copy, np.ndarray) or isinstance(copy, np.ma.MaskedArray):
                raise TypeError(f"{where} must be a numpy.ndarray or None, got {type(copy).__name__}")
            if not is_low_precision(copy.dtype):
                raise TypeError(f"{where} has dtype {copy.dtype}; a copy is float16 or bfloat16")
            if param.dtype != np.float32:
                raise TypeError(f"{where}: params[{index}] has dtype {param.dtype}; master weights are float32")
            if copy.shape != param.shape:
                raise ValueError(f"{where} has shape {copy.shape} but params[{index}] has shape {param.shape}")
            if not (copy.flags.c_contiguous and copy.flags.writeable):
                raise ValueError(f"{where} must be a C-contiguous, writeable array (it is written in place)")
            if copy.size:
                extents.append((*memory_extent(copy), where))
            copies.append(flat_view(copy))
        others = [(start, end, f"params[{i}]") for start, end, i in self._extents]
        others += [(start, end, f"opt.state[{i}][{key!r}]") for start, end, i, key in self._state_extents()]
        others += [(*memory_extent(g), f"grads[{i}]") for i, g in enumerate(grads)
                   if isinstance(g, np.ndarray) and g.size and g.flags.c_contiguous]
        for start, end, where in extents:
            for other_start, other_end, other in others + [e for e in extents if e[2] != where]:
                if start < other_end and other_start < end:
                    raise ValueError(f"{where} shares memory with {other}")
        return copies

    def copy_of(self, item: tuple) -> np.ndarray | None:
        """The engine's question: the flat array to write the stepped parameter's copy into."""
        copies = self._copies
        return copies[item[0]] if copies is not None else None

    # The engine's questions (see fastopt._engine.step) -----------------------------------------
    def gather(self, grads: Sequence, index: int, plan: Plan, batch) -> tuple | object | None:
        """Gather group ``index`` into ``batch`` for the fast path: ``(dtype, counters)``, EMPTY
        if no parameter of it has a gradient, or None to decline."""
        if self._copies is not None:
            return None  # master weights with their copies: per parameter
        members = self.param_groups[index]["params"]
        start = self._group_starts[index]
        end = start + len(members)
        group_grads = grads[start:end] if type(grads) is list else list(grads[start:end])
        if not members:
            return EMPTY
        states = list(map(self.state.get, range(start, end)))
        dtype = members[0].dtype
        if dtype not in _EMPTY:
            return None  # float16 and bfloat16 parameters: per parameter, a block at a time
        counters = self.algorithm.counters
        if batch.gather(members, group_grads, states, plan.slots, counters, dtype.num) != -1:
            return None
        values = batch.counter_dict
        if values is None:
            return EMPTY
        if not self.algorithm.counters_valid(values):  # (every row holds the same: one test)
            return None  # the careful path names the entry
        return dtype, values

    def commit(self, batch, plan: Plan, counters: dict[str, Any]) -> None:
        batch.commit_counters(counters)

    def check(self, grads: Sequence, plans: list[Plan]) -> list[tuple[Plan, tuple]]:
        """The careful path's checks, every one before anything changes: each gradient, then each
        state entry the step will use. Returns ``(plan, (index, flat grad))`` per parameter with
        a gradient."""
        flat_grads = []
        for index, (grad, param) in enumerate(zip(grads, self._params)):
            if self.algorithm.sparse:  # (indices, values): the rows of the parameter it names
                flat_grads.append(check_sparse_grad(index, grad, param))
                continue
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
        work = []
        for group_index, plan in enumerate(plans):
            start = self._group_starts[group_index]
            for index in range(start, start + len(self._group_members[group_index])):
                if flat_grads[index] is not None:
                    self.algorithm.check_shape(f"params[{index}]", self._params[index].shape)
                    self._check_state(index, plan)
                    work.append((plan, (index, flat_grads[index])))
        return work

    def prepare(self, plan: Plan, item: tuple) -> tuple:
        index, grad = item
        param = self._params[index]
        state = self.state.get(index)
        if state is None:  # a first step
            state = self._new_state(param, plan.group)
            created = plan.keys
        else:  # an option switched on later creates its buffer (torch raises KeyError there)
            created = tuple(key for key in self.algorithm.buffers if key in plan.keys and key not in state
                            and self.algorithm.buffer_shape(key, param.shape) is not None)
            for key in created:
                state[key] = self._new_buffer(key, param, plan.group)
        # the state dict holds the counters itself: the algorithm advances them in place
        return self._flat_params[index], grad, self._flat_state(index, state, plan.slots), state, created

    def shape(self, item: tuple) -> tuple[int, ...]:
        return self._params[item[0]].shape

    def finish(self, plan: Plan, item: tuple, state: dict[str, Any]) -> None:
        if state:  # like torch, a parameter without state (plain SGD) has no entry
            self.state[item[0]] = state

    # State checks ------------------------------------------------------------------------------
    def _check_state(self, index: int, plan: Plan) -> None:
        """Check the state entry a step of parameter ``index`` will use.

        ``opt.state`` is public and may be edited between steps; an edited entry must give a
        clear error, not an out-of-bounds write in a compiled kernel or half an applied step.
        The buffers the kernel will take (its slots, for the group's current options) and the
        keys every entry must hold are checked in full when the entry changed since its last
        check (identity of the dict and of those arrays); the counters, which change every step,
        are checked every time. Keys the step does not use are left alone.
        """
        entry = self.state.get(index)
        if entry is None:
            return
        slots = plan.keys
        cached = self._checked_states.get(index)
        if (
            cached is None
            or cached[0] is not entry
            or cached[1] != slots
            or not all(map(operator.is_, map(entry.get, slots), cached[2]))
        ):
            self._check_param_state(index, entry, slots)
        for name in self.algorithm.counters:
            if type(entry) is not dict or name not in entry:
                self._check_param_state(index, entry, slots)  # names what is missing
                raise ValueError(f"opt.state[{index}] is missing [{name!r}]")
            self.algorithm.check_counter(f"opt.state[{index}][{name!r}]", name, entry[name])

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
            shape = self.algorithm.buffer_shape(key, param.shape)
            if key not in entry or shape is None:
                continue  # an optional buffer not created yet (the step creates it), or unused
            value = entry[key]
            check_state_array(f"{where}[{key!r}]", value, param, shape)
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
        dtype = state_dtype(self._params[index].dtype)
        # a slot this parameter does not use (None, or a buffer its shape has none of) is empty
        slots_used = tuple(key if key in state else None for key in slots)
        arrays = tuple((key, state[key]) for key in slots_used if key is not None)
        flat = tuple(state[key].reshape(-1) if key is not None else _EMPTY[dtype] for key in slots_used)
        self._flat_state_cache[index] = (slots, arrays, flat)
        return flat

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


def _groups_as_validated(param_groups, members, keys, objects) -> bool:
    """``fastopt._native.identity.groups_as_validated`` (imported on first use: it is compiled)."""
    global _groups_as_validated
    from ._native.identity import groups_as_validated

    _groups_as_validated = groups_as_validated
    return groups_as_validated(param_groups, members, keys, objects)
