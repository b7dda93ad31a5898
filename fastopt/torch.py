"""Drop-in ``torch.optim`` optimizers that step CPU tensors through fastopt's kernels.

``fastopt.torch.SGD``, ``Adagrad``, ``RMSprop``, ``Adam``, ``AdamW``, ``Adadelta``, ``Adamax``,
``NAdam`` and ``RAdam`` subclass ``torch.optim.Optimizer`` with torch's signatures, defaults,
validation messages, parameter groups, ``closure``, ``zero_grad``, hooks, learning-rate
schedulers and ``state_dict`` layout, so a state dict saved from ``torch.optim.Adam`` loads here
and the other way round; ``fastopt.torch.Lion`` does the same with lion-pytorch's ``Lion``::

    import fastopt.torch
    opt = fastopt.torch.Adam(model.parameters(), lr=1e-3)    # where torch.optim.Adam was
    for x, y in batches:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

``import fastopt`` never imports torch; this module does (``pip install "fastopt[torch]"``).
It is a module, not a package, and its ``import torch`` gets the real torch: Python 3 imports are
absolute, so the only way to shadow torch with this file would be to put the ``fastopt/`` folder
itself on ``sys.path`` (running a script from inside it); that is detected and explained below.

How a step runs (nothing here does arithmetic of its own)
---------------------------------------------------------
This module is a front end of fastopt's step engine (``fastopt._engine``), as
``fastopt.Optimizer`` is for NumPy arrays. The hyperparameters of each group are checked with
torch's conditions and messages (again only when one of them changed, value *or type*),
translated to fastopt's names (RMSprop's ``alpha`` is fastopt's ``rho``; Adam with
``decoupled_weight_decay=True`` is fastopt's AdamW) and stepped by the same
``Algorithm`` as the NumPy class (``fastopt.adam.AdamAlgorithm`` ...),
which computes every derived scalar once in float64 and casts it to the tensors' dtype. So the
result is the one ``fastopt.Adam`` computes on the same NumPy arrays, bit for bit, and agrees
with ``torch.optim`` (for-loop) to a few ulp.

The fast path: one C call per group
-----------------------------------
With the Cython or Numba backend (``backend="auto"`` picks Cython where it is built) and a torch
that publishes the DLPack C exchange API (``torch.Tensor.__dlpack_c_exchange_api__``, torch 2.10
and later), a step is one ``fastopt._native.batch.Batch.gather_tensors`` call and one multi-tensor
kernel call per parameter group. The gather reads each parameter's ``.grad`` and describes each
parameter and gradient with one C call (data pointer, device, dtype, shape, strides: no NumPy
view, no Python method call), checks everything (CPU, float32/float64 like the group, contiguous,
sizes, no overlap between anything the kernel writes), and the kernel then steps every tensor
**in place, where it is**: gradients are read where autograd left them, whether they are kept
between steps (``zero_grad(set_to_none=False)``) or new each step (the default), and no tensor is
copied, moved or re-viewed. Parameters and gradients are checked again at every step, so
``p.data = ...``, ``model.to(...)`` or ZeroRedundancyOptimizer's bucket views are simply followed.

The state tensors fastopt.torch creates (and those a loaded state dict brings, which it copies)
are ``torch.from_numpy`` views of 64-byte aligned NumPy arrays it owns; the gather recognises
them by identity and checks their arrays with NumPy's C API, without calling torch. A state
tensor you assign (``optimizer.state[p]["exp_avg"] = t``) is used where it is and described at
every step like a gradient. In-place changes of a state tensor's values (``copy_``, ``mul_``,
``fill_``) are seen; swapping the storage of a tensor fastopt created (``t.data = ...``,
``t.set_(...)``) is not: the step keeps reading and writing fastopt's memory (which the swap
cannot free). Assign a new tensor instead.

Anything the gather will not vouch for (a first step, which creates the state; a non-contiguous
gradient; parameters at different step counts; an invalid tensor, to be reported) makes the whole
step take the careful path instead, tensor by tensor through cached NumPy views, which is also the
path of the reference backend (and of Numba's for a group with a tensor large enough to be split
across threads).

What is rejected, before anything is updated (a rejected ``step`` changes nothing)
-------------------------------------------------------------------------------------
* non-CPU tensors (CUDA, MPS, meta, ...): fastopt's kernels run on the CPU's memory;
* dtypes other than float32 and float64 (float16, bfloat16, complex, integers);
* non-contiguous parameters (the kernels update memory in place and never copy a parameter);
* sparse gradients (no fastopt kernel takes them; torch's SGD and Adagrad do);
* state tensors that do not fit their parameter (dtype, size, layout, shared memory);
* ``capturable=True`` and ``differentiable=True`` (CUDA graphs and autograd through the step).

A non-contiguous *gradient* is fine: it is read through a contiguous copy. ``foreach`` and
``fused`` are accepted and stored (fastopt's path is used whatever they say).

State
-----
torch's key names and shapes (``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, ``sum``,
``square_avg``, ``momentum_buffer``, ``grad_avg``, ``acc_delta``, ``exp_inf``, ``mu_product``).
``step`` is a 0-d **float64** tensor: torch uses float32, which stops counting at 2**24 steps;
torch's for-loop path reads ``step`` with ``.item()``, so it loads and continues a fastopt state
dict, and a float32 ``step`` loaded from torch is widened to float64 here. NAdam's
``mu_product`` is a 0-d float32 tensor, as in torch. Optional buffers are created when an option
needs them, also when it is switched on after the first step (torch raises ``KeyError`` there).
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, ClassVar

import numpy as np
import torch

if not hasattr(torch, "optim"):  # this very file was imported as "torch": fastopt/ is on sys.path
    raise ImportError(
        "`import torch` found fastopt/torch.py instead of PyTorch: the fastopt/ folder itself is on "
        "sys.path (a script run from inside it?). Run from elsewhere, or use `python -m`."
    )

import fastopt
from fastopt import _backends
from fastopt._engine import EMPTY, Algorithm, Engine, Plan, kernels_for
from fastopt._memory import aligned_full
from fastopt._validation import check_flag, check_real

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "Adamax", "NAdam", "RAdam", "Lion"]

_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
_BY_BITS = {32: np.dtype(np.float32), 64: np.dtype(np.float64)}
# torch's layout of the counters: the step a float64 0-d tensor (torch's float32 stops counting
# at 2**24), NAdam's mu_product a float32 one, as torch; and fastopt's type of each, for the
# algorithm (its step is an int)
_COUNTER_BITS = {"step": 64, "mu_product": 32}
_COUNTER_TYPE = {"step": int, "mu_product": np.float32}
_EMPTY = {dtype: np.empty(0, dtype) for dtype in _DTYPES.values()}


def _fast_path_available() -> bool:
    """Is the multi-tensor gather usable here (Cython built, torch with the DLPack exchange API)?"""
    try:
        from fastopt._native import dlpack
    except ImportError:
        return False
    if dlpack.dlpack_exchange_api_registered():
        return True
    capsule = getattr(torch.Tensor, "__dlpack_c_exchange_api__", None)
    return capsule is not None and dlpack.use_dlpack_exchange_api(capsule, torch.Tensor)


# --------------------------------------------------------------------------------------------
# Checks on tensors (clear messages; run before anything is modified)
# --------------------------------------------------------------------------------------------
def _check_param(where: str, param: object) -> None:
    """A parameter must be a dense, contiguous float32/float64 tensor in CPU memory."""
    if not isinstance(param, torch.Tensor):
        raise TypeError(f"{where} must be a torch.Tensor, got {type(param).__name__}")
    if param.device.type != "cpu":
        raise ValueError(
            f"{where} is on device {param.device}; fastopt.torch steps CPU tensors only "
            "(use torch.optim on other devices)"
        )
    if param.layout is not torch.strided:
        raise ValueError(f"{where} has layout {param.layout}; fastopt.torch steps dense tensors only")
    if param.dtype not in _DTYPES:
        raise TypeError(
            f"{where} has dtype {param.dtype}; fastopt.torch steps float32 and float64 tensors "
            "(float16, bfloat16 and complex parameters are not supported)"
        )
    if not param.is_contiguous():
        raise ValueError(
            f"{where} is not contiguous; fastopt updates parameters in place and never copies "
            "them: make it contiguous before building the optimizer "
            "(p.data = p.data.contiguous())"
        )


def _check_grad(where: str, grad: object, param: torch.Tensor) -> None:
    if not isinstance(grad, torch.Tensor):
        raise TypeError(f"{where}.grad must be a torch.Tensor or None, got {type(grad).__name__}")
    if grad.layout is not torch.strided:
        raise RuntimeError(
            f"{where}.grad is {grad.layout}: fastopt.torch does not support sparse gradients"
        )
    if grad.device.type != "cpu":
        raise ValueError(f"{where}.grad is on device {grad.device}; fastopt.torch steps CPU tensors only")
    if grad.dtype != param.dtype or grad.numel() != param.numel():
        raise ValueError(
            f"{where}.grad has dtype {grad.dtype} and {grad.numel()} elements, but its parameter "
            f"has dtype {param.dtype} and {param.numel()} elements"
        )
    if grad.is_contiguous():
        start, end = _extent(grad)
        p_start, p_end = _extent(param)
        if start < end and p_start < p_end and start < p_end and p_start < end:
            raise ValueError(f"{where}.grad shares memory with its parameter")


def _extent(tensor: torch.Tensor) -> tuple[int, int]:
    start = tensor.data_ptr()
    return start, start + tensor.numel() * tensor.element_size()


def _check_disjoint(entries: list) -> None:
    """``entries``: ``(start, end, order, name, owner)`` of every parameter and state buffer, in
    the order they were met (``owner``: the name of the buffer's parameter). No two may share
    memory: the kernels write them in place, element by element."""
    extents = sorted(entry for entry in entries if entry[0] < entry[1])
    for before, after in zip(extents, extents[1:]):
        if after[0] < before[1]:
            first, second = sorted((before, after), key=lambda e: e[2])
            other = "its parameter" if first[3] == second[4] else first[3]
            raise ValueError(f"{second[3]} shares memory with {other}; every parameter and state tensor must own its memory")


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A flat NumPy view of a contiguous CPU tensor (shares its memory; never a copy)."""
    return tensor.detach().numpy().reshape(-1)


def _as_float(where: str, value: object) -> object:
    """torch accepts a 1-element tensor for ``lr`` (and ``weight_decay``): use its value."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {where} must be 1-element")
        return value.item()
    return value


def _typed(value: Any) -> Any:
    """A value with its type, for "unchanged since validated" tests: ``0 == False`` and
    ``1 + 0j == 1.0``, but neither passes the check that ``False`` or ``1.0`` passed. A tensor
    (``lr`` may be one) is compared by its values, which may change in place."""
    kind = type(value)
    if kind is float or kind is bool or kind is int or value is None:
        return kind, value
    if kind is tuple or kind is list:
        return kind, tuple(map(_typed, value))
    if isinstance(value, torch.Tensor):
        return kind, id(value), value.dtype, tuple(value.shape), value.detach().cpu().tolist()
    return kind, value


def _betas(group: dict[str, Any]) -> object:
    betas = group["betas"]
    if isinstance(betas, (tuple, list)) and any(isinstance(b, torch.Tensor) for b in betas):
        betas = tuple(_as_float("betas", b) for b in betas)
    return betas


# --------------------------------------------------------------------------------------------
# The shared base class: a front end of fastopt's step engine
# --------------------------------------------------------------------------------------------
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
        self._engine = Engine(self.backend)
        self._engine.batched = self._engine.batched and _fast_path_available()
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
            translated[key] = _betas(group) if key == "betas" else _as_float(key, group[key])
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
            snapshot = tuple(_typed(group.get(key)) for key in self._hyperparameters + self._flags)
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

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """torch's ``add_param_group`` (defaults filled in, duplicates refused), then fastopt's
        checks of the hyperparameters and of every tensor."""
        super().add_param_group(param_group)
        group = self.param_groups[-1]
        try:
            self._check_hyperparameters(group)
            for index, param in enumerate(group["params"]):
                _check_param(f"param_groups[{len(self.param_groups) - 1}]['params'][{index}]", param)
        except Exception:
            self.param_groups.pop()
            raise

    # The step ----------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss.

        Everything (hyperparameters, tensors, gradients, state) is checked before anything is
        updated: by the fast path's gather, or else by the careful path's checks.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        plans = [self._plan(group) for group in self.param_groups]
        self._engine.step(plans, self)
        return loss

    # The engine's questions (see fastopt._engine.step) -----------------------------------------
    def gather(self, inputs: None, index: int, plan: Plan, batch) -> tuple | object | None:
        """Gather group ``index`` into ``batch`` (gradients read from ``.grad``): ``(dtype,
        counters)``, EMPTY if no parameter of it has a gradient, or None to decline."""
        if not isinstance(self.state, dict):
            return None
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
            typed = {name: _COUNTER_TYPE[name](value) for (name, _), value in zip(counters, values)}
        except (OverflowError, ValueError):
            return None
        return _BY_BITS[batch.bits], typed

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
                _check_param(where, p)
                written.append((*_extent(p), len(written), where, None))
                grad = p.grad
                if grad is None:
                    continue
                _check_grad(where, grad, p)
                state = self.state.get(p)
                if state is not None:
                    for name, extent in self._check_state(where, p, state, plan.keys, counters):
                        written.append((*extent, len(written), name, where))
                work.append((plan, (p, grad)))
        _check_disjoint(written)
        self._state_seen = (None, ())  # state tensors may be created: the fast path looks again
        return work

    def prepare(self, plan: Plan, item: tuple) -> tuple:
        p, grad = item
        state = self.state[p]
        algorithm = plan.algorithm
        created = tuple(key for key in plan.keys if key not in state)
        for key in created:  # a first step, or an option switched on later
            state[key] = self._new_buffer(p, self._initial_value(key, algorithm, plan.group))
        # a counter not there yet starts where the algorithm starts it (NAdam's product at 1)
        fresh = algorithm.initial_counters(plan.group)
        counters = {}
        for name, bits in self._counters(plan):
            array = self._counter(state, name, np.float64 if bits == 64 else np.float32, float(fresh.get(name, 0.0)))
            counters[name] = _COUNTER_TYPE[name](array[()])
        views = self._views(p, state, plan.keys)
        dtype = views[0].dtype
        if not grad.is_contiguous():
            grad = grad.contiguous()
        buffers = dict(zip(plan.keys, views[1:]))
        return views[0], _numpy(grad), tuple(buffers[name] if name is not None else _EMPTY[dtype] for name in plan.slots), counters, created

    def finish(self, plan: Plan, item: tuple, counters: dict[str, Any]) -> None:
        state = self.state[item[0]]
        for name, value in counters.items():
            self._owned_array(state[name])[()] = value

    @staticmethod
    def _counters(plan: Plan) -> tuple[tuple[str, int], ...]:
        """The algorithm's counters as torch keeps them: ``(key, bits)`` of each 0-d tensor."""
        return tuple((name, _COUNTER_BITS[name]) for name in plan.algorithm.counters)

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

    def _views(self, p: torch.Tensor, state: dict, keys: tuple) -> tuple:
        """Flat NumPy views of a parameter and its state buffers (for a buffer fastopt owns, its
        own array), cached while the same tensors sit at the same addresses (a view costs a
        microsecond or two to make)."""
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
            views = tuple(_numpy(t) if a is None else a.reshape(-1) for t, a in zip(tensors, arrays))
            cached = (tensors, pointers, views)
            self._numpy_cache[id(p)] = cached
        return cached[2]

    # State tensors in memory fastopt owns ------------------------------------------------------
    def _own(self, array: np.ndarray) -> torch.Tensor:
        """A tensor over ``array`` (``torch.from_numpy``), registered as fastopt's: the fast path
        then checks and uses the array itself, with no call into torch, and the array keeps the
        memory alive whatever is done to the tensor."""
        tensor = torch.from_numpy(array)
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
        numel, dtype = param.numel(), _DTYPES[param.dtype]
        for key in keys:
            if key not in state:
                continue
            value = state[key]
            name = f"{prefix}[{key!r}]"
            entry = self._owned.get(id(value))
            if entry is not None and entry[0] is value:
                array = entry[1]
                if array.size != numel or array.dtype != dtype:
                    raise ValueError(
                        f"{name} must be a contiguous CPU tensor of its parameter's dtype and size "
                        f"({param.dtype}, {numel} elements), got {value.dtype} with {array.size} elements"
                    )
                buffers.append((name, entry[2]))
                continue
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
            if (
                value.device.type != "cpu"
                or value.layout is not torch.strided
                or value.dtype != param.dtype
                or value.numel() != numel
                or not value.is_contiguous()
            ):
                raise ValueError(
                    f"{name} must be a contiguous CPU tensor of its parameter's dtype and size "
                    f"({param.dtype}, {numel} elements), got {value.dtype} with "
                    f"{value.numel()} elements on {value.device}"
                )
            buffers.append((name, _extent(value)))
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

    def _new_buffer(self, p: torch.Tensor, value: float) -> torch.Tensor:
        """A state buffer for ``p``: its shape and dtype, 64-byte aligned, filled with ``value``."""
        with np.errstate(over="ignore"):  # a fill value beyond float32's range becomes inf
            # 64-byte aligned but not on huge pages beside torch's tensors: see fastopt/_memory.py
            return self._own(aligned_full(tuple(p.shape), _DTYPES[p.dtype], value, huge_pages=False))

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

    def _adopt(self, state: dict) -> None:
        """Copy a loaded state's tensors into memory fastopt owns (the counters normalised: a
        float64 ``step``, NAdam's float32 ``mu_product``)."""
        counters = {key: (np.float64 if bits == 64 else np.float32) for key, bits in _COUNTER_BITS.items()}
        for key, value in list(state.items()):
            if key in counters:
                if isinstance(value, torch.Tensor) and value.numel() == 1 or isinstance(value, numbers.Real) and not isinstance(value, bool):
                    self._counter(state, key, counters[key], 0.0)
            elif (isinstance(value, torch.Tensor) and value.dtype in _DTYPES and value.device.type == "cpu"
                  and value.layout is torch.strided and self._owned_array(value) is None):
                copy = self._own(aligned_full(tuple(value.shape), _DTYPES[value.dtype], huge_pages=False))
                copy.copy_(value.detach())
                state[key] = copy

    # Checkpoints -------------------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict`` (ids mapped to parameters, floating state cast to each
        parameter's dtype), after checking the saved hyperparameters with torch's rules; a
        hyperparameter the saved groups lack takes this optimizer's default, and the loaded
        tensors are copied into memory fastopt owns (a ``step`` saved by torch, float32, becomes
        float64)."""
        for saved in state_dict["param_groups"]:
            self._check_hyperparameters({**self.defaults, **saved})
        super().load_state_dict(state_dict)
        for group in self.param_groups:
            for key, value in self.defaults.items():
                group.setdefault(key, value)
        self._owned = {}
        for state in self.state.values():
            if type(state) is dict:
                self._adopt(state)
        self._forget_caches()

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
        for entry in self.state.values():
            if type(entry) is dict:
                self._adopt(entry)


# --------------------------------------------------------------------------------------------
# The optimizers of torch.optim
# --------------------------------------------------------------------------------------------
def _defaults(arguments: dict[str, Any]) -> dict[str, Any]:
    """A constructor's hyperparameters from its ``locals()`` (every argument but ``params`` and
    ``backend``), in the signature's order: torch's ``defaults``."""
    return {key: value for key, value in arguments.items() if key not in ("self", "params", "backend", "__class__")}


class SGD(_FastoptOptimizer):
    """``torch.optim.SGD`` stepped by fastopt's SGD kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-3``), plus keyword-only ``backend`` (fastopt's
    ``"auto" | "reference" | "numba" | "cython"``).
    State: ``momentum_buffer`` (with momentum), as in torch.
    """

    _algorithm = fastopt.SGD.algorithm
    _hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class Adagrad(_FastoptOptimizer):
    """``torch.optim.Adagrad`` stepped by fastopt's Adagrad kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-2``, ``eps=1e-10``), plus ``backend``. As in
    torch, ``step`` and ``sum`` exist from the constructor on, and a group added later starts its
    ``sum`` from the constructor's ``initial_accumulator_value``.
    """

    _algorithm = fastopt.Adagrad.algorithm
    _hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)
        for group in self.param_groups:  # torch creates Adagrad's state eagerly
            for p in group["params"]:
                self.state[p]["step"] = self._own(aligned_full((), np.float64, 0.0))
                self.state[p]["sum"] = self._new_buffer(p, self.defaults["initial_accumulator_value"])

    def _initial_value(self, key, algorithm, group):
        return self.defaults["initial_accumulator_value"]  # torch's rule, for a group added later


class RMSprop(_FastoptOptimizer):
    """``torch.optim.RMSprop`` stepped by fastopt's RMSprop kernel; see :mod:`fastopt.torch`.

    torch's names and defaults: ``lr=1e-2`` and ``alpha=0.99`` (fastopt's ``rho``), and torch's
    validation, which accepts any ``alpha >= 0`` (``fastopt.RMSprop`` wants ``0 <= rho < 1``).
    Plus ``backend``.
    """

    _algorithm = fastopt.RMSprop.algorithm
    _hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False, *, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)

    def _fastopt(self, group):
        from fastopt._validation import check_eps, check_lr, check_momentum, check_weight_decay

        lr = _as_float("lr", group["lr"])
        check_lr(lr)  # torch's order: lr, eps, momentum, weight_decay, alpha
        check_eps(group["eps"])
        check_momentum(group["momentum"])
        check_weight_decay(group["weight_decay"])
        check_real("alpha", group["alpha"])
        if not 0.0 <= group["alpha"]:
            raise ValueError(f"Invalid alpha value: {group['alpha']}")
        check_flag("centered", group["centered"])
        check_flag("maximize", group["maximize"])
        translated = dict(lr=lr, rho=group["alpha"], eps=group["eps"], weight_decay=group["weight_decay"],
                          momentum=group["momentum"], centered=group["centered"], maximize=group["maximize"],
                          **self._algorithm.flag_defaults)  # torch's arithmetic
        return self._algorithm, translated


class Adam(_FastoptOptimizer):
    """``torch.optim.Adam`` stepped by fastopt's Adam kernel (with its decoupled decay when
    ``decoupled_weight_decay=True``, which is torch's AdamW); see :mod:`fastopt.torch`.

    Same signature and defaults as torch, plus ``backend``.
    """

    _algorithm = fastopt.Adam.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)

    def _fastopt(self, group):
        betas = _betas(group)
        translated = dict(lr=_as_float("lr", group["lr"]), betas=betas, eps=group["eps"],
                          weight_decay=_as_float("weight_decay", group["weight_decay"]),
                          amsgrad=group["amsgrad"], maximize=group["maximize"],
                          **self._algorithm.flag_defaults)  # torch's arithmetic
        self._algorithm.check(translated)
        if isinstance(betas, (tuple, list)) and not all(isinstance(b, float) for b in betas):
            raise ValueError("betas must be either both floats or both Tensors")
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])
        translated["decoupled_weight_decay"] = bool(group["decoupled_weight_decay"])
        return self._algorithm, translated


class AdamW(Adam):
    """``torch.optim.AdamW`` (Adam with ``decoupled_weight_decay=True``, ``weight_decay=1e-2``),
    stepped by fastopt's Adam kernel with its decoupled decay; see :mod:`fastopt.torch`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
                 backend="auto"):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True, backend=backend)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # as torch: AdamW is always decoupled
            group["decoupled_weight_decay"] = True


class Adadelta(_FastoptOptimizer):
    """``torch.optim.Adadelta`` stepped by fastopt's Adadelta kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1.0``, ``rho=0.9``, ``eps=1e-6``; ``rho=1`` is
    accepted, as in torch), plus ``backend``. State: ``step``, ``square_avg``, ``acc_delta``.
    """

    _algorithm = fastopt.Adadelta.algorithm
    _hyperparameters = ("lr", "rho", "eps", "weight_decay", "maximize")

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class Adamax(_FastoptOptimizer):
    """``torch.optim.Adamax`` stepped by fastopt's Adamax kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=2e-3``), plus ``backend``.
    State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    _algorithm = fastopt.Adamax.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "maximize")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class NAdam(_FastoptOptimizer):
    """``torch.optim.NAdam`` stepped by fastopt's NAdam kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=2e-3``, ``momentum_decay=4e-3``,
    ``decoupled_weight_decay``), plus ``backend``. State: ``step``, ``exp_avg``, ``exp_avg_sq``
    and ``mu_product``, a 0-d float32 tensor as in torch (torch's ``load_state_dict`` casts it to
    a float64 parameter's dtype; fastopt keeps it float32, loading either).
    """

    _algorithm = fastopt.NAdam.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize")

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


class RAdam(_FastoptOptimizer):
    """``torch.optim.RAdam`` stepped by fastopt's RAdam kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``decoupled_weight_decay``), plus ``backend``.
    State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    _algorithm = fastopt.RAdam.algorithm
    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, backend="auto"):
        super().__init__(params, _defaults(locals()), backend)


# --------------------------------------------------------------------------------------------
# lion-pytorch's Lion
# --------------------------------------------------------------------------------------------
class Lion(_FastoptOptimizer):
    """``lion_pytorch.Lion`` stepped by fastopt's Lion kernel; see :mod:`fastopt.torch`.

    lion-pytorch's signature and defaults: ``lr=1e-4``, ``betas=(0.9, 0.99)``,
    ``weight_decay=0.0``, ``use_triton=False`` (True is refused: Triton kernels run on GPUs) and
    ``decoupled_weight_decay=False`` (True divides ``weight_decay`` by the constructor's ``lr``,
    as lion-pytorch does, so the decay per step follows the schedule but not the size of ``lr``).
    Plus keyword-only ``maximize`` and ``backend``. State: ``exp_avg`` only, as lion-pytorch (no
    step counter); its state dicts load here and the other way round.

    Validation is fastopt's, with torch.optim's messages: ``lr >= 0`` and betas in ``[0, 1)``,
    where lion-pytorch asserts ``lr > 0`` and betas in ``[0, 1]``.
    """

    _algorithm = fastopt.Lion.algorithm
    _hyperparameters = ("lr", "betas", "weight_decay", "maximize")
    _pickled = ("backend", "_init_lr", "decoupled_wd")

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0, use_triton=False,
                 decoupled_weight_decay=False, *, maximize=False, backend="auto"):
        check_flag("use_triton", use_triton)
        if use_triton:
            raise ValueError("use_triton=True is not supported by fastopt.torch (Triton kernels run on GPUs)")
        check_flag("decoupled_weight_decay", decoupled_weight_decay)
        self._init_lr = _as_float("lr", lr)  # lion-pytorch's names for these two
        self.decoupled_wd = decoupled_weight_decay
        defaults = dict(lr=lr, betas=betas, weight_decay=weight_decay, maximize=maximize)
        super().__init__(params, defaults, backend)

    def _fastopt(self, group):
        algorithm, translated = super()._fastopt(group)
        if self.decoupled_wd:
            if not self._init_lr > 0:
                raise ValueError("decoupled_weight_decay=True divides weight_decay by the initial lr, which must be > 0")
            translated["weight_decay"] = translated["weight_decay"] / self._init_lr
        return algorithm, translated

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("_init_lr", self.defaults["lr"])
        self.__dict__.setdefault("decoupled_wd", False)
