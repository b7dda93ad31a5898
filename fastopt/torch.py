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
The hyperparameters of each group are checked with torch's conditions and messages (again only
when one of them changed, value *or type*), translated to fastopt's names (RMSprop's ``alpha`` is
fastopt's ``rho``; Adam with ``decoupled_weight_decay=True`` is fastopt's AdamW) and handed to
the fastopt optimizer class's own ``_kernel_slots`` / ``_kernel_scalars``, which compute every
derived scalar once in float64 and cast it to the tensors' dtype. So the result is the one
``fastopt.Adam`` computes on the same NumPy arrays, bit for bit, and agrees with ``torch.optim``
(for-loop) to a few ulp.

The fast path: one C call per group
-----------------------------------
With the Cython backend (``backend="auto"`` where it is built) and a torch that publishes the
DLPack C exchange API (``torch.Tensor.__dlpack_c_exchange_api__``, torch 2.10 and later), a step
is one ``fastopt._multi.Batch.gather_tensors`` call and one ``<optimizer>_update_many`` kernel
call per parameter group. The gather reads each parameter's ``.grad`` and describes each
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
path of the other backends. (Earlier versions moved small parameters into one packed buffer per
group, changing their ``data_ptr()``; the gather made that unnecessary, so parameters stay where
the model put them. ``pack_small_tensors`` is accepted and ignored, with a DeprecationWarning.)

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
import warnings
from collections.abc import Hashable
from typing import Any, ClassVar

import numpy as np
import torch

if not hasattr(torch, "optim"):  # this very file was imported as "torch": fastopt/ is on sys.path
    raise ImportError(
        "`import torch` found fastopt/torch.py instead of PyTorch: the fastopt/ folder itself is on "
        "sys.path (a script run from inside it?). Run from elsewhere, or use `python -m`."
    )

import fastopt
from fastopt import _backends, _threads
from fastopt._memory import aligned_full
from fastopt._optimizer import _EMPTY, _silence_fp_warnings, _specialise
from fastopt._threads import threads_for
from fastopt._validation import check_flag, check_real

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "Adadelta", "Adamax", "NAdam", "RAdam", "Lion"]

_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
_BY_BITS = {32: np.dtype(np.float32), 64: np.dtype(np.float64)}
# For deriving a step's scalar key through a fastopt class's _begin_step (see _begin_fastopt_step):
# fastopt's type of each 0-d counter kept here (torch keeps the step as a float), a placeholder for
# a buffer that exists, and the parameter that class would size a missing buffer from.
_FASTOPT_COUNTER_TYPE = {"step": int, "mu_product": np.float32}
_EXISTING = object()
_NO_PARAM = np.empty(0)


def _fast_path_available() -> bool:
    """Is the multi-tensor gather usable here (Cython built, torch with the DLPack exchange API)?"""
    try:
        from fastopt import _multi
    except ImportError:
        return False
    if _multi.dlpack_exchange_api_registered():
        return True
    capsule = getattr(torch.Tensor, "__dlpack_c_exchange_api__", None)
    return capsule is not None and _multi.use_dlpack_exchange_api(capsule, torch.Tensor)


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


# --------------------------------------------------------------------------------------------
# The shared base class
# --------------------------------------------------------------------------------------------
class _FastoptOptimizer(torch.optim.Optimizer):
    """What the optimizers share; each subclass names its fastopt class and translations."""

    _hyperparameters: ClassVar[tuple[str, ...]]  # torch's names of what the arithmetic reads
    _fastopt_class: ClassVar[type]  # the fastopt optimizer whose kernel and scalars step it
    _counters: ClassVar[tuple[tuple[str, int], ...]] = (("step", 64),)  # 0-d state: (key, bits)
    _flags = ("foreach", "fused", "capturable", "differentiable")

    def __init__(self, params, defaults: dict[str, Any], backend: str, pack_small_tensors: object = None) -> None:
        if pack_small_tensors is not None:
            check_flag("pack_small_tensors", pack_small_tensors)
            warnings.warn(
                "pack_small_tensors has no effect: fastopt.torch steps every tensor where it is",
                DeprecationWarning,
                stacklevel=3,
            )
        self.backend = _backends.resolve_backend(backend)
        self._setup_caches()
        self._check_hyperparameters(defaults)
        super().__init__(params, defaults)

    def _setup_caches(self) -> None:
        self._kernels: dict[str, dict] = {}  # fastopt name -> {np.dtype: kernel}
        self._parallel_kernels: dict[str, dict] = {}
        self._many_kernels: dict[str, dict] = {}
        self._calculators: dict[type, fastopt.Optimizer] = {}
        self._fast = self.backend == "cython" and _fast_path_available()
        self._owned: dict[int, tuple] = {}  # id(tensor) -> (tensor, its memory, (start, end) of it)
        self._forget_caches()

    def _forget_caches(self) -> None:
        self._validated: dict[int, tuple] = {}  # id(group) -> (group, snapshot, result)
        self._numpy_cache: dict[int, tuple] = {}  # id(param) -> (param, tensors, pointers, views)
        self._group_states: dict[int, tuple] = {}  # id(group) -> (group, params, slots, states, owned, Batch)
        self._state_seen: tuple = (None, ())  # (self.state, its items) when _group_states was made

    # Subclass interface ----------------------------------------------------------------------
    def _fastopt(self, group: dict[str, Any]) -> tuple[type, dict[str, Any]]:
        """Check ``group`` with torch's conditions and messages and return the fastopt class and
        the group in fastopt's names, whose ``_kernel_slots``/``_kernel_scalars`` drive the step.
        Here: the same names (``_hyperparameters``), checked by the fastopt class."""
        translated = _translate(self._fastopt_class, group, self._hyperparameters)
        self._fastopt_class.check_hyperparameters(translated)
        return self._fastopt_class, translated

    def _initial_value(self, key: str, group: dict[str, Any]) -> float:
        """The value a state buffer starts from (zero, except Adagrad's ``sum``)."""
        return 0.0

    def _begin_fastopt_step(self, cls: type, fastopt_group: dict[str, Any], counters: tuple, present: tuple) -> tuple[Hashable, tuple]:
        """The key ``_kernel_scalars`` takes for this step, and the counters after it, from the
        counters before it (in ``_counters``' order) and the state buffers that already exist.

        The fastopt class's own ``_begin_step`` decides both, on a stand-in state: the counters in
        fastopt's types and a placeholder per existing buffer (a missing one is created in the
        stand-in, as on a first step). So no rule of an optimizer (SGD's first momentum step,
        NAdam's product of momentum factors, ...) is written here again."""
        stand_in = dict.fromkeys(present, _EXISTING)
        for (name, _), value in zip(self._counters, counters):
            stand_in[name] = _FASTOPT_COUNTER_TYPE[name](value)
        key = self._calculator(cls)._begin_step(_NO_PARAM, stand_in, fastopt_group)
        return key, tuple(float(stand_in[name]) for name, _ in self._counters)

    # Validation --------------------------------------------------------------------------------
    def _check_hyperparameters(self, group: dict[str, Any]) -> None:
        for flag in ("capturable", "differentiable"):
            if group.get(flag):
                raise ValueError(f"{flag}=True is not supported by fastopt.torch (CPU, no autograd through the step)")
        for flag in ("foreach", "fused"):
            if group.get(flag) is not None:
                check_flag(flag, group[flag])
        self._fastopt(group)

    def _validated_group(self, group: dict[str, Any]) -> tuple:
        """``(fastopt class, group in fastopt's names, kernel slots, state keys)``, re-checked
        whenever one of the group's hyperparameters changed in value or type (a scheduler's new
        ``lr``; ``maximize = 0``, which equals False but is refused as a flag)."""
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
        cls, fastopt_group = self._fastopt(group)
        slots = self._calculator(cls)._kernel_slots(fastopt_group)
        result = (cls, fastopt_group, slots, tuple(key for key in slots if key is not None))
        self._validated[id(group)] = (group, snapshot, result)
        return result

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

    # Kernels -----------------------------------------------------------------------------------
    def _calculator(self, cls: type) -> fastopt.Optimizer:
        """An instance of a fastopt class used only for ``_kernel_slots``/``_kernel_scalars``,
        which read nothing but their arguments (so it needs no parameters: no ``__init__``)."""
        calculator = self._calculators.get(cls)
        if calculator is None:
            calculator = self._calculators[cls] = object.__new__(cls)
        return calculator

    def _kernel(self, cls: type, dtype: np.dtype, threads: int):
        table = self._kernels if threads == 1 else self._parallel_kernels
        kernels = table.get(cls.name)
        if kernels is None:
            kernel = _backends.get_kernel(cls.name, self.backend, parallel=threads > 1)
            if self.backend == "reference":
                kernel = _silence_fp_warnings(kernel)
            kernels = table[cls.name] = _specialise(kernel)
        return kernels[dtype]

    def _many_kernel(self, cls: type, dtype: np.dtype):
        kernels = self._many_kernels.get(cls.name)
        if kernels is None:
            kernels = self._many_kernels[cls.name] = _specialise(_backends.get_kernel(cls.name, "cython", many=True))
        return kernels[dtype]

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
        plans = [self._validated_group(group) for group in self.param_groups]
        if not (self._fast and self._step_batched(plans)):
            self._step_careful(plans)
        return loss

    def _group_batch(self, group: dict[str, Any], params: list, slots: tuple) -> tuple:
        """``(state dicts, owned, Batch)`` of a group: each parameter's state dict (None before
        its first step), found without hashing a tensor per step (cached while ``self.state``
        holds the same items, checked in C, and the group the same parameters); per parameter and
        state key, the ``(tensor, ndarray)`` pair of a state tensor whose memory fastopt owns (see
        :meth:`_new_buffer`); and the group's Batch (reused from step to step: it remembers the
        group's memory layout)."""
        from fastopt import _multi

        seen_state, seen_items = self._state_seen
        if seen_state is not self.state or not _multi.same_dict_items(self.state, seen_items):
            self._group_states = {key: (*value[:3], None, None, value[5]) for key, value in self._group_states.items()}
            self._state_seen = (self.state, _multi.dict_items(self.state))
            self._prune_owned()
        cached = self._group_states.get(id(group))
        if cached is None or cached[0] is not group or not _multi.same_objects(params, cached[1]):
            cached = (group, tuple(params), slots, None, None, _multi.Batch())
        if cached[3] is None or cached[2] != slots:
            states = [self.state.get(p) for p in params]
            owned = []
            for state in states:
                for key in (*slots, *(key for key, _ in self._counters)):
                    value = state.get(key) if type(state) is dict and key is not None else None
                    entry = self._owned.get(id(value))
                    owned.append(entry[:2] if entry is not None and entry[0] is value else None)
            cached = self._group_states[id(group)] = (group, cached[1], slots, states, tuple(owned), cached[5])
        return cached[3], cached[4], cached[5]

    def _step_batched(self, plans: list) -> bool:
        """The fast path: one gather and one kernel call per group. Returns False, having
        changed nothing, when any group needs the careful path."""
        if not isinstance(self.state, dict):
            return False
        batches = []
        try:
            for group, (cls, fastopt_group, slots, keys) in zip(self.param_groups, plans):
                params = group["params"]
                if type(params) is not list:
                    return False
                if not params:
                    continue
                states, owned, batch = self._group_batch(group, params, slots)
                batches.append(batch)
                if batch.gather_tensors(params, states, slots, self._counters, owned) != -1:
                    return False
            work = []
            for batch, (cls, fastopt_group, slots, keys) in zip(batches, plans):
                values = batch.counter_values
                if values is None:  # no parameter of the group has a gradient
                    continue
                dtype = _BY_BITS[batch.bits]
                key, after = self._begin_fastopt_step(cls, fastopt_group, values, keys)
                if batch.bits == 32:
                    with np.errstate(over="ignore"):  # a float32 cast overflows to inf, as IEEE says
                        scalars = self._calculator(cls)._kernel_scalars(fastopt_group, key, dtype)
                else:
                    scalars = self._calculator(cls)._kernel_scalars(fastopt_group, key, dtype)
                work.append((batch, self._many_kernel(cls, dtype), scalars, after))
            # Every group is fit: advance the counters and compute (nothing below can fail).
            threads, min_size = _threads.get_num_threads(), _threads.min_size()
            for batch, kernel, scalars, after in work:
                batch.commit_counters(after)
                kernel(batch, *scalars, threads, min_size)
            return True
        finally:
            for batch in batches:  # let go of this step's gradients and tensors
                batch.release()

    def _step_careful(self, plans: list) -> None:
        """Tensor by tensor, through NumPy views: every check first (with its message), then
        every update, so a rejected step changes nothing."""
        work, written = [], []
        numbers_ = tuple(key for key, _ in self._counters)
        for group_index, (group, plan) in enumerate(zip(self.param_groups, plans)):
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
                    for name, extent in self._check_state(where, p, state, plan[3], numbers_):
                        written.append((*extent, len(written), name, where))
                work.append((plan, p, grad))
        _check_disjoint(written)
        # Everything is valid: from here on nothing raises.
        self._state_seen = (None, ())  # state tensors may be created: the fast path looks again
        scalars_by_key: dict[tuple, tuple] = {}
        for (cls, fastopt_group, slots, keys), p, grad in work:
            state = self.state[p]
            key = self._advance(state, p, keys, cls, fastopt_group)
            views = self._views(p, state, keys)
            dtype = views[0].dtype
            scalar_key = (id(fastopt_group), cls, key, dtype)
            scalars = scalars_by_key.get(scalar_key)
            if scalars is None:
                with np.errstate(over="ignore"):
                    scalars = scalars_by_key[scalar_key] = self._calculator(cls)._kernel_scalars(fastopt_group, key, dtype)
            if not grad.is_contiguous():
                grad = grad.contiguous()
            buffers = dict(zip(keys, views[1:]))
            threads = threads_for(views[0].size)
            self._kernel(cls, dtype, threads)(
                views[0], _numpy(grad), *(buffers[name] if name is not None else _EMPTY[dtype] for name in slots),
                *scalars, threads,
            )

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
        counters = {key: (np.float64 if bits == 64 else np.float32) for key, bits in self._counters}
        for key, value in list(state.items()):
            if key in counters:
                if isinstance(value, torch.Tensor) and value.numel() == 1 or isinstance(value, numbers.Real) and not isinstance(value, bool):
                    self._counter(state, key, counters[key], 0.0)
            elif (isinstance(value, torch.Tensor) and value.dtype in _DTYPES and value.device.type == "cpu"
                  and value.layout is torch.strided and self._owned_array(value) is None):
                copy = self._own(aligned_full(tuple(value.shape), _DTYPES[value.dtype], huge_pages=False))
                copy.copy_(value.detach())
                state[key] = copy

    def _advance(self, state: dict, p: torch.Tensor, keys: tuple, cls: type, fastopt_group: dict) -> Hashable:
        """The careful path's per-parameter start of a step: create the missing buffers, advance
        the counters, and return the scalar key."""
        present = tuple(key for key in keys if key in state)
        for key in keys:
            if key not in state:
                state[key] = self._new_buffer(p, self._initial_value(key, fastopt_group))
        # a counter not there yet starts where the fastopt class starts it (NAdam's product at 1)
        fresh = {} if all(name in state for name, _ in self._counters) else self._calculator(cls)._init_state(_NO_PARAM, fastopt_group)
        arrays = [
            self._counter(state, name, np.float64 if bits == 64 else np.float32, float(fresh.get(name, 0.0)))
            for name, bits in self._counters
        ]
        key, after = self._begin_fastopt_step(cls, fastopt_group, tuple(float(a) for a in arrays), present)
        for array, value in zip(arrays, after):
            array[()] = value
        return key

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
def _translate(cls: type, group: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """``group``'s values of ``keys`` (a 1-element tensor read as its number; ``betas`` last, by
    ``_betas``), plus the fastopt class's convention flags at their defaults: torch's arithmetic."""
    translated = {**cls.flag_defaults, **{key: _as_float(key, group[key]) for key in keys if key != "betas"}}
    if "betas" in keys:
        translated["betas"] = _betas(group)
    return translated


class SGD(_FastoptOptimizer):
    """``torch.optim.SGD`` stepped by ``fastopt.SGD``'s kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-3``), plus keyword-only ``backend`` (fastopt's
    ``"auto" | "reference" | "numba" | "cython"``).
    State: ``momentum_buffer`` (with momentum), as in torch.
    """

    _hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    _fastopt_class = fastopt.SGD
    _counters = ()

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None,
                 backend="auto", pack_small_tensors=None):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, backend, pack_small_tensors)


class Adagrad(_FastoptOptimizer):
    """``torch.optim.Adagrad`` stepped by ``fastopt.Adagrad``'s kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-2``, ``eps=1e-10``), plus ``backend``. As in
    torch, ``step`` and ``sum`` exist from the constructor on, and a group added later starts its
    ``sum`` from the constructor's ``initial_accumulator_value``.
    """

    _hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")
    _fastopt_class = fastopt.Adagrad

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None,
                 backend="auto", pack_small_tensors=None):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, backend, pack_small_tensors)
        for group in self.param_groups:  # torch creates Adagrad's state eagerly
            for p in group["params"]:
                self.state[p]["step"] = self._own(aligned_full((), np.float64, 0.0))
                self.state[p]["sum"] = self._new_buffer(p, self._initial_value("sum", group))


    def _initial_value(self, key, group):
        return self.defaults["initial_accumulator_value"] if key == "sum" else 0.0


class RMSprop(_FastoptOptimizer):
    """``torch.optim.RMSprop`` stepped by ``fastopt.RMSprop``'s kernel; see :mod:`fastopt.torch`.

    torch's names and defaults: ``lr=1e-2`` and ``alpha=0.99`` (fastopt's ``rho``), and torch's
    validation, which accepts any ``alpha >= 0`` (``fastopt.RMSprop`` wants ``0 <= rho < 1``).
    Plus ``backend``.
    """

    _hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False, *,
                 backend="auto", pack_small_tensors=None):
        defaults = dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                        weight_decay=weight_decay, capturable=capturable, foreach=foreach,
                        maximize=maximize, differentiable=differentiable)
        super().__init__(params, defaults, backend, pack_small_tensors)

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
                          **fastopt.RMSprop.flag_defaults)  # torch's arithmetic
        return fastopt.RMSprop, translated


def _betas(group: dict[str, Any]) -> object:
    betas = group["betas"]
    if isinstance(betas, (tuple, list)) and any(isinstance(b, torch.Tensor) for b in betas):
        betas = tuple(_as_float("betas", b) for b in betas)
    return betas


class Adam(_FastoptOptimizer):
    """``torch.optim.Adam`` stepped by ``fastopt.Adam``'s kernel (``fastopt.AdamW``'s with
    ``decoupled_weight_decay=True``); see :mod:`fastopt.torch`.

    Same signature and defaults as torch, plus ``backend``.
    """

    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False, backend="auto", pack_small_tensors=None):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults, backend, pack_small_tensors)

    def _fastopt(self, group):
        betas = _betas(group)
        translated = dict(lr=_as_float("lr", group["lr"]), betas=betas, eps=group["eps"],
                          weight_decay=_as_float("weight_decay", group["weight_decay"]),
                          amsgrad=group["amsgrad"], maximize=group["maximize"],
                          **fastopt.Adam.flag_defaults)  # torch's arithmetic; AdamW's kernel is always decoupled
        fastopt.Adam.check_hyperparameters(translated)
        if isinstance(betas, (tuple, list)) and not all(isinstance(b, float) for b in betas):
            raise ValueError("betas must be either both floats or both Tensors")
        check_flag("decoupled_weight_decay", group["decoupled_weight_decay"])
        return (fastopt.AdamW if group["decoupled_weight_decay"] else fastopt.Adam), translated


class AdamW(Adam):
    """``torch.optim.AdamW`` (Adam with ``decoupled_weight_decay=True``, ``weight_decay=1e-2``),
    stepped by ``fastopt.AdamW``'s kernel; see :mod:`fastopt.torch`."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *,
                 maximize=False, foreach=None, capturable=False, differentiable=False, fused=None,
                 backend="auto", pack_small_tensors=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True, backend=backend,
                         pack_small_tensors=pack_small_tensors)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # as torch: AdamW is always decoupled
            group["decoupled_weight_decay"] = True


class Adadelta(_FastoptOptimizer):
    """``torch.optim.Adadelta`` stepped by ``fastopt.Adadelta``'s kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1.0``, ``rho=0.9``, ``eps=1e-6``; ``rho=1`` is
    accepted, as in torch), plus ``backend``. State: ``step``, ``square_avg``, ``acc_delta``.
    """

    _hyperparameters = ("lr", "rho", "eps", "weight_decay", "maximize")
    _fastopt_class = fastopt.Adadelta

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0, foreach=None, *,
                 capturable=False, maximize=False, differentiable=False,
                 backend="auto", pack_small_tensors=None):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, maximize=maximize,
                        capturable=capturable, foreach=foreach, differentiable=differentiable)
        super().__init__(params, defaults, backend, pack_small_tensors)


class Adamax(_FastoptOptimizer):
    """``torch.optim.Adamax`` stepped by ``fastopt.Adamax``'s kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=2e-3``), plus ``backend``.
    State: ``step``, ``exp_avg``, ``exp_inf``.
    """

    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "maximize")
    _fastopt_class = fastopt.Adamax

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, foreach=None, *,
                 maximize=False, differentiable=False, capturable=False,
                 backend="auto", pack_small_tensors=None):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, capturable=capturable)
        super().__init__(params, defaults, backend, pack_small_tensors)


class NAdam(_FastoptOptimizer):
    """``torch.optim.NAdam`` stepped by ``fastopt.NAdam``'s kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=2e-3``, ``momentum_decay=4e-3``,
    ``decoupled_weight_decay``), plus ``backend``. State: ``step``, ``exp_avg``, ``exp_avg_sq``
    and ``mu_product``, a 0-d float32 tensor as in torch (torch's ``load_state_dict`` casts it to
    a float64 parameter's dtype; fastopt keeps it float32, loading either).
    """

    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "momentum_decay", "decoupled_weight_decay", "maximize")
    _fastopt_class = fastopt.NAdam
    _counters = (("step", 64), ("mu_product", 32))

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, momentum_decay=4e-3,
                 decoupled_weight_decay=False, *, foreach=None, maximize=False, capturable=False,
                 differentiable=False, backend="auto", pack_small_tensors=None):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, momentum_decay=momentum_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults, backend, pack_small_tensors)


class RAdam(_FastoptOptimizer):
    """``torch.optim.RAdam`` stepped by ``fastopt.RAdam``'s kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``decoupled_weight_decay``), plus ``backend``.
    State: ``step``, ``exp_avg``, ``exp_avg_sq``.
    """

    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize")
    _fastopt_class = fastopt.RAdam

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, decoupled_weight_decay=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False,
                 backend="auto", pack_small_tensors=None):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                        decoupled_weight_decay=decoupled_weight_decay, maximize=maximize, foreach=foreach,
                        capturable=capturable, differentiable=differentiable)
        super().__init__(params, defaults, backend, pack_small_tensors)



# --------------------------------------------------------------------------------------------
# lion-pytorch's Lion
# --------------------------------------------------------------------------------------------
class Lion(_FastoptOptimizer):
    """``lion_pytorch.Lion`` stepped by ``fastopt.Lion``'s kernel; see :mod:`fastopt.torch`.

    lion-pytorch's signature and defaults: ``lr=1e-4``, ``betas=(0.9, 0.99)``,
    ``weight_decay=0.0``, ``use_triton=False`` (True is refused: Triton kernels run on GPUs) and
    ``decoupled_weight_decay=False`` (True divides ``weight_decay`` by the constructor's ``lr``,
    as lion-pytorch does, so the decay per step follows the schedule but not the size of ``lr``).
    Plus keyword-only ``maximize`` and ``backend``. State: ``exp_avg`` only, as lion-pytorch (no
    step counter); its state dicts load here and the other way round.

    Validation is fastopt's, with torch.optim's messages: ``lr >= 0`` and betas in ``[0, 1)``,
    where lion-pytorch asserts ``lr > 0`` and betas in ``[0, 1]``.
    """

    _hyperparameters = ("lr", "betas", "weight_decay", "maximize")
    _fastopt_class = fastopt.Lion
    _counters = ()
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
        cls, translated = super()._fastopt(group)
        if self.decoupled_wd:
            if not self._init_lr > 0:
                raise ValueError("decoupled_weight_decay=True divides weight_decay by the initial lr, which must be > 0")
            translated["weight_decay"] = translated["weight_decay"] / self._init_lr
        return cls, translated

    def __setstate__(self, state):
        super().__setstate__(state)
        self.__dict__.setdefault("_init_lr", self.defaults["lr"])
        self.__dict__.setdefault("decoupled_wd", False)
