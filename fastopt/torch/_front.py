"""The front end of fastopt's step engine on tensors: the base class of every optimizer in
:mod:`fastopt.torch`.

It owns what is particular to tensors: torch's parameter groups, gradients read from ``.grad``,
torch's state layout (0-d counter tensors, state tensors in memory fastopt owns), torch's names
and checks of the hyperparameters, ``load_state_dict`` and pickling. The step itself (plans,
scalars, the multi-tensor and careful paths) is the engine's (``fastopt._engine``), and the
arithmetic is each optimizer's algorithm, shared with the NumPy classes.
"""

from __future__ import annotations

import math
import numbers
import operator
import threading
from typing import Any, ClassVar

import numpy as np
import torch

from fastopt import _backends
from fastopt._threads import one_at_a_time
from fastopt._engine import EMPTY, Algorithm, Engine, Plan, kernels_for
from fastopt._engine.rows import SparseRows
from fastopt._memory import aligned_full
from fastopt._validation import check_flag

from ._tensors import (
    BY_BITS,
    COUNTER_BITS,
    COUNTER_TYPE,
    EMPTY_ARRAYS,
    STATE_DTYPES,
    real_view,
    state_array_dtype,
    as_float,
    check_disjoint,
    check_grad,
    check_param,
    fast_path_available,
    group_betas,
    memory_order,
    numpy_view,
    sparse_rows,
    tensor_extent,
    typed,
)

class _FastoptOptimizer(torch.optim.Optimizer):
    """What the optimizers share; each subclass names its algorithm and translations."""

    _algorithm: ClassVar[Algorithm]  # the arithmetic, shared with the NumPy class
    _hyperparameters: ClassVar[tuple[str, ...]]  # torch's names of what the arithmetic reads
    _flags = ("foreach", "fused", "capturable", "differentiable")

    def __init__(self, params, defaults: dict[str, Any], backend: str) -> None:
        self.backend = _backends.resolve_backend(backend)
        self._setup_caches()
        self._check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def _setup_caches(self) -> None:
        self._lock = threading.RLock()  # one step (or checkpoint) at a time: _threads.one_at_a_time
        self._engine = Engine(self.backend)
        self._engine.batched = self._engine.batched and fast_path_available()
        self._owned: dict[int, tuple] = {}  # id(tensor) -> (tensor, its memory, (start, end) of it)
        self._forget_caches()

    def _forget_caches(self) -> None:
        self._validated: dict[int, tuple] = {}  # id(group) -> (group, snapshot, plan)
        self._numpy_cache: dict[int, tuple] = {}  # id(param) -> (tensors, pointers, views)
        self._group_states: dict[int, tuple] = {}  # id(group) -> (group, params, slots, states, owned)
        self._state_seen: tuple = (None, ())  # (self.state, its items) when _group_states was made

    # Subclass interface ----------------------------------------------------------------------
    def _fastopt(self, group: dict[str, Any]) -> tuple[Algorithm, dict[str, Any]]:
        """Check ``group`` with torch's conditions and messages and return the algorithm and the
        group in fastopt's names that drive the step. Here: the same names (``_hyperparameters``)
        with the convention flags at torch's values, checked by the algorithm."""
        algorithm = self._algorithm
        translated = {**algorithm.flag_defaults}
        for key in self._hyperparameters:
            translated[key] = group_betas(group) if key == "betas" else as_float(key, group[key])
        algorithm.check(translated)
        return algorithm, translated

    def _initial_value(self, key: str, algorithm: Algorithm, group: dict[str, Any]) -> float:
        """The value a new state buffer starts from (the algorithm's, in fastopt's names)."""
        return algorithm.fill(key, group)

    # Validation --------------------------------------------------------------------------------
    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        for flag in ("capturable", "differentiable"):
            if group.get(flag):
                raise ValueError(f"{flag}=True is not supported by fastopt.torch (CPU, no autograd through the step)")
        for flag in ("foreach", "fused"):
            if group.get(flag) is not None:
                check_flag(flag, group[flag])
        self._fastopt(group)

    def _plan(self, group: dict[str, Any]) -> Plan:
        """The group's plan, made again whenever one of its hyperparameters changed in value or
        type (a scheduler's new ``lr``; ``maximize = 0``, which equals False but is refused as a
        flag)."""
        try:
            snapshot = tuple(typed(group.get(key)) for key in self._hyperparameters + self._flags)
        except (RuntimeError, TypeError, ValueError):
            snapshot = None
        cached = self._validated.get(id(group))
        if snapshot is not None and cached is not None and cached[0] is group:
            try:
                if cached[1] == snapshot:
                    return cached[2]
            except (RuntimeError, TypeError, ValueError):  # an exotic value that will not compare
                pass
        self._check_hyperparameters(group)
        algorithm, translated = self._fastopt(group)
        arrays = 2 + len(algorithm.slots(translated))
        plan = Plan(algorithm, translated, kernels_for(algorithm.kernel, self.backend, arrays))
        self._validated[id(group)] = (group, snapshot, plan)
        return plan

    @one_at_a_time
    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group`` (defaults filled in, duplicates refused), then fastopt's
        checks of the hyperparameters and of every tensor."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_hyperparameters(group)
            for index, param in enumerate(group["params"]):
                where = f"param_groups[{len(self.param_groups) - 1}]['params'][{index}]"
                check_param(where, param, building=True, elementwise=self._elementwise)
                self._check_sixteen_bit(where, param)
                self._algorithm.check_shape(where, tuple(param.shape))
        except Exception:
            self.param_groups.pop()
            raise

    def _sparse_gradient(self, where: str, grad: torch.Tensor, param: torch.Tensor, plan: Plan) -> object:
        """A sparse COO gradient, for an optimizer that takes one (SGD, Adagrad): the rows it names
        (:class:`fastopt._engine.rows.SparseRows`), or a dense tensor; here, torch's refusal."""
        raise RuntimeError(f"{where}.grad is {grad.layout}: {type(self).__name__} does not support sparse gradients")

    def _sparse_rows(self, where: str, grad: torch.Tensor, param: torch.Tensor) -> SparseRows:
        """The rows a sparse gradient names, each stepped by the dense kernel: torch's semantics
        for SGD without momentum or decay, and for Adagrad."""
        if param.is_complex() or not param.is_contiguous():
            raise ValueError(f"{where}: a sparse gradient steps the rows of a contiguous real parameter; "
                             f"this one is {'complex' if param.is_complex() else 'not contiguous'}")
        return sparse_rows(where, grad, param)

    @property
    def _elementwise(self) -> bool:
        """Whether a parameter may be dense in a permuted order (channels_last) or complex: an
        element-wise kernel steps it in memory order (a complex one as its real view), with its
        state in the same layout. A kernel that takes whole tensors (norms, factors, matrix
        products) or gathered rows needs real tensors in their logical order."""
        return not (self._algorithm.whole_tensor or self._algorithm.sparse)

    def _check_sixteen_bit(self, where: str, param: torch.Tensor) -> None:
        if STATE_DTYPES[param.dtype] is not param.dtype and not self._algorithm.low_precision:
            raise TypeError(f"{where} has dtype {param.dtype}; {type(self).__name__} steps float32 and float64 "
                            "tensors only (keep float32 master weights and step those)")

    # The step ----------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None, *, copy_to=None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss.

        Everything (hyperparameters, tensors, gradients, state) is checked before anything is
        updated: by the fast path's gather, or else by the careful path's checks. Calls from
        several threads run one at a time, each with its closure.

        ``copy_to`` (fastopt's; torch.optim has none): float32 parameters as master weights of a
        float16/bfloat16 model, one entry per parameter in ``param_groups`` order, ``None`` or
        a 16-bit tensor of its shape and layout, into which the new values are written, rounded
        to nearest even, in the same pass as the step (see :meth:`fastopt.Optimizer.step`).
        """
        lock = self._lock  # one step at a time; acquire/release cost half of a `with`
        lock.acquire()
        try:
            loss = None
            if closure is not None:
                with torch.enable_grad():
                    loss = closure()
            plans = [self._plan(group) for group in self.param_groups]
            if copy_to is not None:
                self._copies = self._check_copies(copy_to)
            self._engine.step(plans, self)
            return loss
        finally:
            self._copies = None
            lock.release()

    _copies: dict | None = None  # during a step with copy_to: id(param) -> its copy's flat array

    def _check_copies(self, copy_to: object) -> dict:
        """``copy_to`` checked in full (see :meth:`step`), before anything changes."""
        params = [p for group in self.param_groups for p in group["params"]]
        if not isinstance(copy_to, (list, tuple)):
            raise TypeError(f"copy_to must be a list or tuple with one tensor or None per parameter, got {type(copy_to).__name__}")
        if len(copy_to) != len(params):
            raise ValueError(f"copy_to has {len(copy_to)} entries for {len(params)} parameters")
        copies, written = {}, []
        for index, (copy, param) in enumerate(zip(copy_to, params)):
            where = f"copy_to[{index}]"
            if copy is None:
                continue
            if not isinstance(copy, torch.Tensor):
                raise TypeError(f"{where} must be a torch.Tensor or None, got {type(copy).__name__}")
            if copy.dtype not in (torch.float16, torch.bfloat16) or copy.device.type != "cpu" or copy.layout is not torch.strided:
                raise TypeError(f"{where} must be a float16 or bfloat16 CPU tensor, got {copy.dtype} on {copy.device}")
            if param.dtype != torch.float32:
                raise TypeError(f"{where}: its parameter has dtype {param.dtype}; master weights are float32")
            order = memory_order(param)
            if tuple(copy.shape) != tuple(param.shape) or order is None or not _in_layout(copy, order):
                raise ValueError(f"{where} must have its parameter's shape {tuple(param.shape)} and layout")
            written.append((*tensor_extent(copy), len(written), where, None))
            copies[id(param)] = numpy_view(copy, order)
        for index, param in enumerate(params):
            written.append((*tensor_extent(param), len(written), f"params[{index}]", None))
            if param.grad is not None and param.grad.layout is torch.strided:
                written.append((*tensor_extent(param.grad), len(written), f"params[{index}].grad", None))
        check_disjoint(written)
        return copies

    def copy_of(self, item: tuple) -> np.ndarray | None:
        """The engine's question: the flat array to write the stepped parameter's copy into."""
        copies = self._copies
        return copies.get(id(item[0])) if copies is not None else None

    # The engine's questions (see fastopt._engine.step) -----------------------------------------
    def gather(self, inputs: None, index: int, plan: Plan, batch) -> tuple | object | None:
        """Gather group ``index`` into ``batch`` (gradients read from ``.grad``): ``(dtype,
        counters)``, EMPTY if no parameter of it has a gradient, or None to decline."""
        if not isinstance(self.state, dict) or self._copies is not None:
            return None  # (master weights with their copies: per parameter)
        group = self.param_groups[index]
        params = group["params"]
        if type(params) is not list:
            return None
        if not params:
            return EMPTY
        states, owned = self._group_states_of(group, params, plan.slots)
        counters = self._counters(plan)
        if batch.gather_tensors(params, states, plan.slots, counters, owned) != -1:
            return None
        values = batch.counter_values
        if values is None:
            return EMPTY
        try:  # in fastopt's types (a step of inf or NaN: the careful path says what is wrong)
            typed = {name: COUNTER_TYPE[name](value) for (name, _), value in zip(counters, values)}
        except (OverflowError, ValueError):
            return None
        return BY_BITS[batch.bits], typed

    def commit(self, batch, plan: Plan, counters: dict[str, Any]) -> None:
        batch.commit_counters(tuple(float(value) for value in counters.values()))

    def check(self, inputs: None, plans: list[Plan]) -> list[tuple[Plan, tuple]]:
        """The careful path's checks, all before anything changes: every parameter, gradient and
        state entry, and that nothing the kernels write shares memory. Returns ``(plan, (param,
        grad))`` per parameter with a gradient."""
        work, written = [], []
        for group_index, (group, plan) in enumerate(zip(self.param_groups, plans)):
            counters = tuple(name for name, _ in self._counters(plan))
            for index, p in enumerate(group["params"]):
                where = f"param_groups[{group_index}]['params'][{index}]"
                if isinstance(p, torch.Tensor) and p.device.type == "meta" and p.grad is None:
                    continue  # not materialised yet, and not stepped (torch's step is a no-op on it)
                check_param(where, p, elementwise=self._elementwise)
                self._check_sixteen_bit(where, p)
                plan.algorithm.check_shape(where, tuple(p.shape))
                written.append((*tensor_extent(p), len(written), where, None))
                grad = p.grad
                if grad is None:
                    continue
                if plan.algorithm.sparse:  # the rows a sparse COO gradient names
                    grad = sparse_rows(where, grad, p)
                elif isinstance(grad, torch.Tensor) and grad.layout is torch.sparse_coo:
                    grad = self._sparse_gradient(where, grad, p, plan)
                if type(grad) is not SparseRows:
                    check_grad(where, grad, p)
                state = self.state.get(p)
                if state is not None:
                    for name, extent in self._check_state(where, p, state, plan.keys, counters):
                        written.append((*extent, len(written), name, where))
                work.append((plan, (p, grad)))
        check_disjoint(written)
        self._state_seen = (None, ())  # state tensors may be created: the fast path looks again
        return work

    def prepare(self, plan: Plan, item: tuple) -> tuple:
        p, grad = item
        state = self.state[p]
        algorithm = plan.algorithm
        shape = tuple(p.shape)
        created = tuple(key for key in plan.keys if key not in state and algorithm.buffer_shape(key, shape) is not None)
        for key in created:  # a first step, or an option switched on later
            state[key] = self._new_buffer(p, self._initial_value(key, algorithm, plan.group), algorithm.buffer_shape(key, shape))
        # a counter not there yet starts where the algorithm starts it (NAdam's product at 1)
        fresh = algorithm.initial_counters(plan.group)
        counters = {}
        for name, bits in self._counters(plan):
            array = self._counter(state, name, np.float64 if bits == 64 else np.float32, float(fresh.get(name, 0.0)))
            counters[name] = COUNTER_TYPE[name](array[()])
        keys = tuple(key for key in plan.keys if key in state)  # not those its shape has none of (Adafactor's)
        order = memory_order(p)  # () unless p is dense in a permuted order (channels_last)
        views = self._views(p, state, keys, order)
        empty = EMPTY_ARRAYS[state_array_dtype(p.dtype)]
        if type(grad) is not SparseRows:  # read in p's memory order (a temporary copy if its layout differs)
            grad = real_view(grad)
            grad = grad.permute(order) if order else grad
            grad = numpy_view(grad if grad.is_contiguous() else grad.contiguous())
        buffers = dict(zip(keys, views[1:]))
        return views[0], grad, tuple(buffers.get(name, empty) for name in plan.slots), counters, created

    def shape(self, item: tuple) -> tuple[int, ...]:
        return tuple(item[0].shape)

    def finish(self, plan: Plan, item: tuple, counters: dict[str, Any]) -> None:
        state = self.state[item[0]]
        for name, value in counters.items():
            self._owned_array(state[name])[()] = value

    @staticmethod
    def _counters(plan: Plan) -> tuple[tuple[str, int], ...]:
        """The algorithm's counters as torch keeps them: ``(key, bits)`` of each 0-d tensor."""
        return tuple((name, COUNTER_BITS[name]) for name in plan.algorithm.counters)

    def _group_states_of(self, group: dict[str, Any], params: list, slots: tuple) -> tuple:
        """``(state dicts, owned)`` of a group: each parameter's state dict (None before its first
        step), found without hashing a tensor per step (cached while ``self.state`` holds the
        same items, checked in C, and the group the same parameters); and per parameter and state
        key, the ``(tensor, ndarray)`` pair of a state tensor whose memory fastopt owns (see
        :meth:`_new_buffer`), which the gather then reads without calling torch."""
        from fastopt._native import identity

        seen_state, seen_items = self._state_seen
        if seen_state is not self.state or not identity.same_dict_items(self.state, seen_items):
            self._group_states = {}
            self._state_seen = (self.state, identity.dict_items(self.state))
            self._prune_owned()
        cached = self._group_states.get(id(group))
        if cached is None or cached[0] is not group or cached[2] != slots or not identity.same_objects(params, cached[1]):
            states = [self.state.get(p) for p in params]
            counters = self._algorithm.counters
            owned = []
            for state in states:
                for key in (*slots, *counters):
                    value = state.get(key) if type(state) is dict and key is not None else None
                    entry = self._owned.get(id(value))
                    owned.append(entry[:2] if entry is not None and entry[0] is value else None)
            cached = self._group_states[id(group)] = (group, tuple(params), slots, states, tuple(owned))
        return cached[3], cached[4]

    def _views(self, p: torch.Tensor, state: dict, keys: tuple, order: tuple[int, ...] = ()) -> tuple:
        """Flat NumPy views of a parameter and its state buffers in the parameter's memory order
        (for a buffer fastopt owns, its own array), cached while the same tensors sit at the same
        addresses (a view costs a microsecond or two to make)."""
        tensors = (p, *(state[key] for key in keys))
        arrays = (None, *map(self._owned_array, tensors[1:]))
        pointers = tuple(t.data_ptr() if a is None else 0 for t, a in zip(tensors, arrays))
        cached = self._numpy_cache.get(id(p))
        if (
            cached is None
            or len(cached[0]) != len(tensors)
            or not all(map(operator.is_, cached[0], tensors))
            or cached[1] != pointers
            or cached[2][0].size != p.numel()
        ):
            views = tuple(numpy_view(t, order) if a is None else a.reshape(-1) for t, a in zip(tensors, arrays))
            cached = (tensors, pointers, views)
            self._numpy_cache[id(p)] = cached
        return cached[2]

    # State tensors in memory fastopt owns ------------------------------------------------------
    def _own(self, array: np.ndarray, like: torch.Tensor | None = None) -> torch.Tensor:
        """A tensor over ``array`` (``torch.from_numpy``), registered as fastopt's: the fast path
        then checks and uses the array itself, with no call into torch, and the array keeps the
        memory alive whatever is done to the tensor. With ``like`` (a parameter dense in a
        permuted order, and ``array`` its size), the tensor has ``like``'s strides: the array
        holds its elements in the parameter's memory order, as the kernels pair them."""
        tensor = torch.from_numpy(array)
        if like is not None:  # complex: the real view's layout, then seen as complex
            real = real_view(like)
            tensor = tensor.reshape(-1).as_strided(real.shape, real.stride())
            if like.is_complex():
                tensor = torch.view_as_complex(tensor)
        start = tensor.data_ptr()
        self._owned[id(tensor)] = (tensor, array, (start, start + array.nbytes))
        return tensor

    def _owned_array(self, tensor: object) -> np.ndarray | None:
        entry = self._owned.get(id(tensor))
        return entry[1] if entry is not None and entry[0] is tensor else None

    def _check_state(self, where: str, param: torch.Tensor, state: object, keys: tuple[str, ...], numbers_: tuple[str, ...]) -> list:
        """The state a step will use: buffers that exist must fit the parameter (a missing one
        is created by the step), and counters (``step``, NAdam's ``mu_product``) must be
        numbers. Returns ``(name, (start, end))`` of every buffer's memory, for the overlap
        check. A tensor fastopt owns is checked through its array (no call into torch)."""
        prefix = f"optimizer.state[{where}]"
        if not isinstance(state, dict):
            raise TypeError(f"{prefix} must be a dict, got {type(state).__name__}")
        buffers = []
        state_dtype = STATE_DTYPES[param.dtype]  # float32 for a float16 or bfloat16 parameter
        dtype = state_array_dtype(param.dtype)
        parts = 2 if param.is_complex() else 1  # fastopt's array of a complex state: its real view
        what = "its parameter's dtype and size" if state_dtype is param.dtype else "float32 (its parameter's is 16-bit) and its parameter's size"
        order = memory_order(param) if not param.is_contiguous() else ()
        for key in keys:
            shape = self._algorithm.buffer_shape(key, tuple(param.shape))
            if key not in state or shape is None:
                continue  # created by the step, or not used for a parameter of this shape
            numel = math.prod(shape)
            value = state[key]
            name = f"{prefix}[{key!r}]"
            entry = self._owned.get(id(value))
            if entry is not None and entry[0] is value:
                array = entry[1]
                if array.size != numel * parts or array.dtype != dtype:
                    raise ValueError(
                        f"{name} must be a contiguous CPU tensor of {what} "
                        f"({state_dtype}, {numel} elements), got {value.dtype} with {array.size // parts} elements"
                    )
                buffers.append((name, entry[2]))
                continue
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
            if (
                value.device.type != "cpu"
                or value.layout is not torch.strided
                or value.dtype != state_dtype
                or value.numel() != numel
                or not _in_layout(real_view(value), order if shape == tuple(param.shape) else ())
            ):
                raise ValueError(
                    f"{name} must be a contiguous CPU tensor of {what} "
                    f"({state_dtype}, {numel} elements), got {value.dtype} with "
                    f"{value.numel()} elements on {value.device}"
                )
            buffers.append((name, tensor_extent(value)))
        for key in numbers_:
            if key not in state:
                continue
            value = state[key]
            array = self._owned_array(value)
            if array is not None:
                value = float(array) if array.size == 1 else value
            if isinstance(value, torch.Tensor):
                if value.numel() != 1 or value.is_complex() or value.device.type != "cpu":
                    raise ValueError(f"{prefix}[{key!r}] must be a number or a one-element CPU tensor, got {value!r}")
                value = value.item()
            if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
                raise ValueError(f"{prefix}[{key!r}] must be a finite non-negative number, got {value!r}")
        return buffers

    def _new_buffer(self, p: torch.Tensor, value: float, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        """A state buffer for ``p``: its dtype (float32 for a 16-bit one) and shape (or the
        algorithm's ``shape`` for it), 64-byte aligned, filled with ``value``."""
        dtype = state_array_dtype(p.dtype)
        shape = tuple(p.shape) if shape is None else shape
        with np.errstate(over="ignore"):  # a fill value beyond float32's range becomes inf
            # 64-byte aligned but not on huge pages beside torch's tensors: see fastopt/_memory.py
            if shape == tuple(p.shape) and (p.is_complex() or not p.is_contiguous()):  # in p's layout
                # a complex one: value in both parts, "as two independent real numbers" (torch)
                return self._own(aligned_full((real_view(p).numel(),), dtype, value, huge_pages=False), like=p)
            return self._own(aligned_full(shape, dtype, value, huge_pages=False))

    def _counter(self, state: dict, key: str, dtype: type, initial: float) -> np.ndarray:
        """The 0-d array of the counter ``state[key]`` (fastopt's own, of ``dtype``), made from the
        value found there (a number or a tensor, e.g. torch's float32 step) if needed."""
        value = state.get(key)
        array = self._owned_array(value)
        if array is None or array.dtype != dtype or array.ndim != 0:
            number = initial if value is None else float(value)
            array = aligned_full((), dtype, number)
            state[key] = self._own(array)
        return array

    def _prune_owned(self) -> None:
        """Forget the owned tensors no state dict holds any more."""
        live = {id(value) for state in self.state.values() if type(state) is dict for value in state.values()}
        self._owned = {key: entry for key, entry in self._owned.items() if key in live}

    def _adopt(self, param: object, state: dict) -> None:
        """Copy a loaded state's tensors into memory fastopt owns (the counters normalised: a
        float64 ``step``, NAdam's float32 ``mu_product``; a 16-bit parameter's state in float32,
        widened if torch.optim saved it in the parameter's dtype)."""
        counters = {key: (np.float64 if bits == 64 else np.float32) for key, bits in COUNTER_BITS.items()}
        sixteen = isinstance(param, torch.Tensor) and STATE_DTYPES.get(param.dtype, param.dtype) is not param.dtype
        for key, value in list(state.items()):
            if type(value) is _KeepFloat32:
                state[key] = value = value.tensor
            if key in counters:
                if isinstance(value, torch.Tensor) and value.numel() == 1 or isinstance(value, numbers.Real) and not isinstance(value, bool):
                    self._counter(state, key, counters[key], 0.0)
            elif (isinstance(value, torch.Tensor) and value.dtype in STATE_DTYPES and value.device.type == "cpu"
                  and value.layout is torch.strided and (self._owned_array(value) is None or sixteen)):
                if isinstance(param, torch.Tensor) and param.dtype in STATE_DTYPES:  # in its parameter's dtype and layout
                    copy = self._new_buffer(param, 0.0, tuple(value.shape))
                else:
                    copy = self._own(aligned_full(tuple(value.shape), state_array_dtype(value.dtype), huge_pages=False))
                copy.copy_(value.detach())  # exact: float16 and bfloat16 values are float32 values
                state[key] = copy

    # Checkpoints -------------------------------------------------------------------------------
    @one_at_a_time
    def state_dict(self) -> dict[str, Any]:
        """torch's ``state_dict``, taken between steps (never half-way through one)."""
        return super().state_dict()

    @one_at_a_time
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict`` (ids mapped to parameters, floating state cast to each
        parameter's dtype), after checking the saved hyperparameters with torch's rules; a
        hyperparameter the saved groups lack takes this optimizer's default, and the loaded
        tensors are copied into memory fastopt owns (a ``step`` saved by torch, float32, becomes
        float64)."""
        for saved in state_dict["param_groups"]:
            self._check_hyperparameters({**self.defaults, **saved})
        super().load_state_dict(self._float32_state_kept(state_dict))
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        self._owned = {}
        for param, state in self.state.items():
            if type(state) is dict:
                self._adopt(param, state)
        self._forget_caches()

    def _float32_state_kept(self, state_dict: dict[str, Any]) -> dict[str, Any]:
        """``state_dict`` with the float32 state tensors of 16-bit parameters wrapped, so that
        torch's ``load_state_dict``, which casts floating state to its parameter's dtype, leaves
        them float32 (:meth:`_adopt` unwraps them)."""
        saved_groups, state = state_dict.get("param_groups"), state_dict.get("state")
        if not isinstance(saved_groups, list) or not isinstance(state, dict) or len(saved_groups) != len(self.param_groups):
            return state_dict  # torch's own checks say what is wrong
        kept = dict(state)
        for saved, group in zip(saved_groups, self.param_groups):
            for saved_id, param in zip(saved.get("params", ()), group["params"]):
                entry = kept.get(saved_id)
                if STATE_DTYPES.get(param.dtype, param.dtype) is param.dtype or not isinstance(entry, dict):
                    continue
                kept[saved_id] = {key: _KeepFloat32(value) if isinstance(value, torch.Tensor) and key not in COUNTER_BITS
                                  and value.dtype == torch.float32 else value for key, value in entry.items()}
        return {**state_dict, "state": kept}

    def __getstate__(self) -> dict[str, Any]:
        """torch's (defaults, state, groups), plus the backend and the class's own settings."""
        state = super().__getstate__()
        state.update({key: self.__dict__[key] for key in self._pickled if key in self.__dict__})
        return state

    _pickled: ClassVar[tuple[str, ...]] = ("backend",)

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        if "backend" not in self.__dict__:  # pickled by an older version: torch's three keys only
            self.backend = _backends.resolve_backend("auto")
        self._setup_caches()
        for param, entry in self.state.items():
            if type(entry) is dict:
                self._adopt(param, entry)


class _KeepFloat32:
    """A float32 state tensor of a 16-bit parameter, passed through torch's ``load_state_dict``
    untouched (it casts tensors, and iterables of them, to the parameter's dtype)."""

    __slots__ = ("tensor",)

    def __init__(self, tensor: torch.Tensor) -> None:
        self.tensor = tensor


def _in_layout(tensor: torch.Tensor, order: tuple[int, ...]) -> bool:
    """Whether ``tensor`` is dense in the memory order ``order`` (contiguous for ())."""
    return (tensor.permute(order) if order else tensor).is_contiguous()
