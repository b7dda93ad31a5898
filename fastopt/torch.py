"""Drop-in ``torch.optim`` optimizers that step CPU tensors through fastopt's kernels.

``fastopt.torch.SGD``, ``Adagrad``, ``RMSprop``, ``Adam`` and ``AdamW`` subclass
``torch.optim.Optimizer`` with torch's signatures, defaults, validation messages, parameter groups,
``closure``, ``zero_grad``, hooks, learning-rate schedulers and ``state_dict`` layout, so a state
dict saved from ``torch.optim.Adam`` loads here and the other way round::

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
The hyperparameters of each group are checked with torch's conditions and messages, translated
to fastopt's names (RMSprop's ``alpha`` is fastopt's ``rho``; Adam with
``decoupled_weight_decay=True`` is fastopt's AdamW) and handed to the fastopt optimizer class's
own ``_kernel_slots`` / ``_kernel_scalars``, which compute every derived scalar once in float64 and
cast it to the tensors' dtype. The kernel is ``fastopt._backends.get_kernel(name, backend)``, so
the result is the one ``fastopt.Adam`` computes on the same NumPy arrays, bit for bit, and agrees
with ``torch.optim`` (for-loop) to a few ulp.

Tensors are stepped **in place, without copies**: ``tensor.detach().numpy()`` shares the
tensor's memory, and the NumPy views of parameters and of the state are cached (a parameter's
cache entry is keyed by its ``data_ptr()``, so ``p.data = ...`` is noticed).

Many small tensors: one kernel call per group
---------------------------------------------
Calling a kernel costs about a microsecond, which is as long as the arithmetic on a
1,000-element tensor. So, by default (``pack_small_tensors=True``), the parameters of a group that
have fewer than ``SMALL_TENSOR_NUMEL`` elements are **moved, once, into one contiguous buffer per
group and dtype** (``p.data`` becomes a view of the buffer: same values, same ``Parameter``
objects, a different ``data_ptr()``), their state tensors are views of matching buffers, and a
step copies their gradients into one buffer (a single ``torch._foreach_copy_``) and updates all
of them with **one** kernel call. Element-wise optimizers give the same bits either way. The
consequences to know: a reference to a small parameter's *old* storage (an earlier
``p.detach()``, ``p.data`` or ``.numpy()``) no longer sees updates; take such views after the
first step, or pass ``pack_small_tensors=False``. Whatever else moves a parameter (``p.data =
...``, ``model.to(...)``, ZeroRedundancyOptimizer's bucket views) is detected at the next step;
parameters that someone else already laid out contiguously are used where they are.

What is rejected, before anything is updated (a rejected ``step`` changes nothing)
-------------------------------------------------------------------------------------
* non-CPU tensors (CUDA, MPS, meta, ...): fastopt's kernels run on the CPU's memory;
* dtypes other than float32 and float64 (float16, bfloat16, complex, integers);
* non-contiguous parameters (the kernels update memory in place and never copy a parameter);
* sparse gradients (no fastopt kernel takes them; torch's SGD and Adagrad do);
* ``capturable=True`` and ``differentiable=True`` (CUDA graphs and autograd through the step).
A non-contiguous *gradient* is fine: it is read through a contiguous copy. ``foreach`` and
``fused`` are accepted and stored (fastopt's path is used whatever they say).

State
-----
torch's key names and shapes (``step``, ``exp_avg``, ``exp_avg_sq``, ``max_exp_avg_sq``, ``sum``,
``square_avg``, ``momentum_buffer``, ``grad_avg``). ``step`` is a 0-d **float64** tensor: torch
uses float32, which stops counting at 2**24 steps; torch's for-loop path reads ``step`` with
``.item()``, so it loads and continues a fastopt state dict, and a float32 ``step`` loaded from
torch is widened to float64 here. Optional buffers are created when an option needs them, also
when it is switched on after the first step (torch raises ``KeyError`` there).
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Hashable
from typing import Any, ClassVar

from itertools import chain, repeat

import numpy as np
import torch

if not hasattr(torch, "optim"):  # this very file was imported as "torch": fastopt/ is on sys.path
    raise ImportError(
        "`import torch` found fastopt/torch.py instead of PyTorch: the fastopt/ folder itself is on "
        "sys.path (a script run from inside it?). Run from elsewhere, or use `python -m`."
    )

import fastopt
from fastopt import _backends
from fastopt._optimizer import _EMPTY, _silence_fp_warnings, _specialise
from fastopt._threads import threads_for
from fastopt._validation import check_flag, check_real

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "SMALL_TENSOR_NUMEL"]

SMALL_TENSOR_NUMEL = 16_384
"""Parameters with fewer elements than this are packed into one buffer per group and dtype.

Above it, a tensor's own kernel call costs little next to its arithmetic, and copying its
gradient into a shared buffer would cost more than the call it saves."""

_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
_STEP_DTYPE = torch.float64  # exact up to 2**53 steps; torch's float32 stalls at 2**24


# --------------------------------------------------------------------------------------------
# Checks on tensors (clear messages; run before anything is modified)
# --------------------------------------------------------------------------------------------
def _check_param(where: str, param: torch.Tensor) -> None:
    """A parameter must be a dense, contiguous float32/float64 tensor in CPU memory."""
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


def _check_grad(where: str, grad: torch.Tensor) -> None:
    if grad.layout is not torch.strided:
        raise RuntimeError(
            f"{where}.grad is {grad.layout}: fastopt.torch does not support sparse gradients"
        )


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


# --------------------------------------------------------------------------------------------
# A group of small parameters packed into one buffer
# --------------------------------------------------------------------------------------------
class _Pack:
    """Small parameters of one group and dtype, living in one contiguous buffer, stepped at once.

    ``params`` are the group's parameters, in group order; ``data`` is the buffer their ``.data``
    views (unless they were already contiguous, then it is a view spanning them); ``grad`` is the
    buffer their gradients are copied into; ``state[key]`` is a buffer whose per-parameter views
    are the optimizer state tensors ``optimizer.state[p][key]``; ``steps`` holds the ``step``
    counters (0-d views of it are ``state[p]["step"]``).
    """

    def __init__(self, optimizer: _FastoptOptimizer, params: list, group: dict, keys: tuple[str, ...]):
        self.params = params
        self.keys = keys
        dtype = params[0].dtype
        sizes = [p.numel() for p in params]
        total = sum(sizes)
        if not _laid_out_contiguously(params):
            flat = _aligned_zeros(total, dtype)
            for p, view in zip(params, flat.split(sizes)):
                view.copy_(p.detach().reshape(-1))
                p.data = view.view(p.shape)
            self.data = flat
        else:  # e.g. ZeroRedundancyOptimizer(parameters_as_bucket_view=True) did this already
            first = params[0].detach()
            self.data = first.new_empty(0).set_(first.untyped_storage(), first.storage_offset(), (total,))
        self.ptrs = [p.data_ptr() for p in params]
        self.shapes = [p.shape for p in params]
        self.data_np = _numpy(self.data)
        self.grad = _aligned_zeros(total, dtype)
        self.grad_np = _numpy(self.grad)
        self.grad_views = [v.view(s) for v, s in zip(self.grad.split(sizes), self.shapes)]

        # State: copy what exists (values kept), create what is missing, then point the
        # optimizer's state tensors at views of the buffers.
        self.state: dict[str, torch.Tensor] = {}
        self.state_np: dict[str, np.ndarray] = {}
        states = [optimizer.state[p] for p in params]
        for key in keys:
            buffer = _aligned_zeros(total, dtype)
            views = [v.view(s) for v, s in zip(buffer.split(sizes), self.shapes)]
            for p, st, view in zip(params, states, views):
                if key in st:
                    view.copy_(st[key].detach().reshape(p.shape))
                else:
                    view.fill_(optimizer._initial_value(key, group))
                st[key] = view
            self.state[key] = buffer
            self.state_np[key] = _numpy(buffer)
        self.steps = None
        if optimizer._has_step:
            self.steps = torch.tensor([float(st["step"]) if "step" in st else 0.0 for st in states], dtype=_STEP_DTYPE)
            self.steps_np = self.steps.numpy()
            for i, st in enumerate(states):
                st["step"] = self.steps[i]
        self.last_grads: list | None = None  # the gradient tensors of the previous step
        self.generation = -1  # the layout generation of the group it was built in (set by the caller)

    def steps_agree(self) -> bool:
        """Are all counters equal (one call needs one step number)? Set by hand, they may not be."""
        return self.steps is None or bool(self.steps_np.min() == self.steps_np.max())


_LAYOUT = operator.attrgetter("layout")


class _Layout:
    """A group's parameters as last checked: their addresses, and how each is stepped.

    ``kinds[i]`` is the dtype of the pack parameter ``i`` goes to, or ``None`` (stepped alone);
    ``packs`` maps a dtype to its members and ``singles`` lists the others."""

    def __init__(self, group: dict, params: list, ptrs: list | None, kinds: list, generation: int) -> None:
        self.group, self.params, self.ptrs, self.kinds, self.generation = group, list(params), ptrs, kinds, generation
        self.packs: dict[torch.dtype, list] = {}
        self.singles = []
        for p, kind in zip(params, kinds):
            if kind is None:
                self.singles.append(p)
            else:
                self.packs.setdefault(kind, []).append(p)
        for dtype, members in list(self.packs.items()):
            if len(members) == 1:  # nothing to gain from a pack of one
                self.singles.extend(self.packs.pop(dtype))


def _laid_out_contiguously(params: list) -> bool:
    """Do the parameters follow each other in one storage, in order, with no gaps?"""
    storage = params[0].untyped_storage().data_ptr()
    end = params[0].data_ptr()
    for p in params:
        if p.untyped_storage().data_ptr() != storage or p.data_ptr() != end:
            return False
        end += p.numel() * p.element_size()
    return True


def _aligned_zeros(numel: int, dtype: torch.dtype) -> torch.Tensor:
    """A 1-D zero tensor whose data starts on a 64-byte boundary (like fastopt's own state)."""
    itemsize = torch.empty(0, dtype=dtype).element_size()
    raw = torch.zeros(numel + 64 // itemsize, dtype=dtype)
    offset = (-raw.data_ptr() % 64) // itemsize
    return raw[offset : offset + numel]


# --------------------------------------------------------------------------------------------
# The shared base class
# --------------------------------------------------------------------------------------------
class _FastoptOptimizer(torch.optim.Optimizer):
    """What the five optimizers share; each subclass names its fastopt class and translations."""

    _hyperparameters: ClassVar[tuple[str, ...]]  # torch's names of what the arithmetic reads
    _has_step: ClassVar[bool] = True  # keeps a "step" counter (all but SGD)
    _flags = ("foreach", "fused", "capturable", "differentiable")

    def __init__(self, params, defaults: dict[str, Any], backend: str, pack_small_tensors: bool) -> None:
        check_flag("pack_small_tensors", pack_small_tensors)
        self.backend = _backends.resolve_backend(backend)
        self.pack_small_tensors = pack_small_tensors
        self._kernels: dict[str, dict] = {}  # fastopt name -> {np.dtype: kernel}
        self._parallel_kernels: dict[str, dict] = {}
        self._calculators: dict[type, fastopt.Optimizer] = {}
        self._validated: dict[int, tuple] = {}  # id(group) -> (snapshot, fastopt class, fastopt group)
        self._packs: dict[tuple, _Pack] = {}  # (id(group), dtype) -> pack
        self._numpy_cache: dict[int, tuple] = {}  # id(param) -> (data_ptr, param, state, NumPy views)
        self._layouts: dict[int, _Layout] = {}  # id(group) -> its parameters' checked layout
        self._snapshot: list = []  # every state dict and state value after the last step
        self._generation = 0  # numbers the layouts, so a pack knows whether its group moved
        self._state_touched = False
        self._check_hyperparameters(defaults)
        super().__init__(params, defaults)

    # Subclass interface ----------------------------------------------------------------------
    def _fastopt(self, group: dict[str, Any]) -> tuple[type, dict[str, Any]]:
        """Check ``group`` with torch's conditions and messages and return the fastopt class and
        the group in fastopt's names, whose ``_kernel_slots``/``_kernel_scalars`` drive the step."""
        raise NotImplementedError

    def _initial_value(self, key: str, group: dict[str, Any]) -> float:
        """The value a state buffer starts from (zero, except Adagrad's ``sum``)."""
        return 0.0

    def _scalar_key(self, fastopt_group: dict[str, Any], step: float, created: bool) -> Hashable:
        """The key ``_kernel_scalars`` takes: the step number (Adam, Adagrad), whether the
        momentum buffer is new (SGD: its first value is the gradient), or nothing (RMSprop)."""
        return int(step)

    @staticmethod
    def _required_keys(fastopt_group: dict[str, Any], slots: tuple) -> tuple[str, ...]:
        return tuple(key for key in slots if key is not None)

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
        whenever one of the group's hyperparameters changed (a scheduler's new ``lr``, ...)."""
        snapshot = tuple(group.get(key) for key in self._hyperparameters + self._flags)
        cached = self._validated.get(id(group))
        if cached is not None and cached[0] is group:
            try:
                if cached[1] == snapshot:
                    return cached[2]
            except (RuntimeError, TypeError, ValueError):  # a tensor compared with a tensor
                pass
        self._check_hyperparameters(group)
        cls, fastopt_group = self._fastopt(group)
        slots = self._calculator(cls)._kernel_slots(fastopt_group)
        result = (cls, fastopt_group, slots, self._required_keys(fastopt_group, slots))
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

    # The step ----------------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, closure=None):
        """One update of every parameter that has a gradient; returns ``closure()``'s loss.

        Everything (hyperparameters, tensors, gradients) is checked first; then small parameters
        are stepped one packed group at a time, the others one kernel call each.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        # Has anything replaced a state dict or a state tensor since the last step (a loaded state
        # dict, ZeroRedundancyOptimizer writing optimizer.state[p], a user)? Then every pack is
        # rebuilt from the state as it is now. A C-level pass over the values: no tensor hashing.
        snapshot = self._state_snapshot()
        state_unchanged = len(snapshot) == len(self._snapshot) and all(map(operator.is_, snapshot, self._snapshot))
        self._state_touched = not state_unchanged

        plan = []  # (cls, fastopt group, slots, keys, layout, pack dtype or None, params)
        for group_index, group in enumerate(self.param_groups):
            cls, fastopt_group, slots, keys = self._validated_group(group)
            layout = self._classify(group_index, group)
            params = group["params"]
            grads = [p.grad for p in params]
            if not any(map(operator.is_, grads, repeat(None))):
                if not all(map(operator.is_, map(_LAYOUT, grads), repeat(torch.strided))):
                    self._check_grads(group_index, params)
                for dtype, members in layout.packs.items():
                    plan.append((cls, fastopt_group, slots, keys, layout, dtype, members))
                plan.extend((cls, fastopt_group, slots, keys, layout, None, [p]) for p in layout.singles)
                continue
            # Some parameters have no gradient (skipped, as in torch): the packs hold who has one.
            self._check_grads(group_index, params)
            packed: dict[torch.dtype, list] = {}
            for p, grad, kind in zip(params, grads, layout.kinds):
                if grad is None:
                    continue
                if kind is None:
                    plan.append((cls, fastopt_group, slots, keys, layout, None, [p]))
                else:
                    packed.setdefault(kind, []).append(p)
            for dtype, members in packed.items():
                plan.append((cls, fastopt_group, slots, keys, layout, dtype if len(members) > 1 else None, members))

        # Everything is valid: from here on nothing raises.
        for cls, fastopt_group, slots, keys, layout, dtype, members in plan:
            if dtype is None:
                for p in members:
                    self._step_one(cls, fastopt_group, slots, keys, p)
            else:
                self._step_pack(cls, fastopt_group, slots, keys, layout, dtype, members, state_unchanged)
        if self._state_touched:  # a pack was built or a state tensor created
            self._snapshot = self._state_snapshot()
        return loss

    def _state_snapshot(self) -> list:
        """Every state dict and every value in them, in order (C-level iteration, no hashing)."""
        states = list(self.state.values())
        return [*states, *chain.from_iterable(map(dict.values, states))]

    @staticmethod
    def _check_grads(group_index: int, params: list) -> None:
        for index, p in enumerate(params):
            if p.grad is not None:
                _check_grad(f"param_groups[{group_index}]['params'][{index}]", p.grad)

    def _classify(self, group_index: int, group: dict[str, Any]) -> _Layout:
        """Check every parameter of a group and sort them into packs (small ones, by dtype) and
        singles; cached while the group holds the same tensors at the same addresses."""
        params = group["params"]
        try:
            ptrs = [p.data_ptr() for p in params]
        except RuntimeError:  # e.g. a sparse tensor has no data pointer: the checks say why
            ptrs = None
        layout = self._layouts.get(id(group))
        if (
            ptrs is not None
            and layout is not None
            and layout.group is group
            and layout.ptrs == ptrs
            and len(layout.params) == len(params)
            and all(map(operator.is_, layout.params, params))
        ):
            return layout
        for index, p in enumerate(params):
            _check_param(f"param_groups[{group_index}]['params'][{index}]", p)
        kinds = [p.dtype if self.pack_small_tensors and p.numel() < SMALL_TENSOR_NUMEL else None for p in params]
        layout = self._layouts[id(group)] = _Layout(group, params, ptrs, kinds, self._generation)
        self._generation += 1
        return layout

    def _begin(self, state: dict, p: torch.Tensor, keys: tuple, group) -> tuple[float, bool]:
        """Create missing buffers and advance the counter; returns (step, whether new buffers)."""
        created = False
        for key in keys:
            if key not in state:
                state[key] = torch.full_like(p, self._initial_value(key, group), memory_format=torch.contiguous_format)
                created = self._state_touched = True
        if not self._has_step:
            return 0.0, created
        step = state.get("step")
        if step is None or step.dtype != _STEP_DTYPE or step.dim() != 0:
            self._state_touched = True
            state["step"] = step = torch.tensor(0.0 if step is None else float(step), dtype=_STEP_DTYPE)
        value = step.item() + 1.0
        step.fill_(value)
        return value, created

    def _step_one(self, cls, fastopt_group, slots, keys, p) -> None:
        """Step one parameter on its own memory, through cached NumPy views."""
        state = self.state[p]
        step, created = self._begin(state, p, keys, fastopt_group)
        ptr = p.data_ptr()
        cached = self._numpy_cache.get(id(p))
        tensors = tuple(state[key] for key in keys)
        if cached is None or cached[0] != ptr or cached[1] is not p or not all(map(operator.is_, cached[2], tensors)):
            cached = (ptr, p, tensors, _numpy(p), tuple(_numpy(t) for t in tensors))
            self._numpy_cache[id(p)] = cached
        param_np, state_np = cached[3], dict(zip(keys, cached[4]))
        grad = p.grad
        if not grad.is_contiguous():
            grad = grad.contiguous()
        dtype = param_np.dtype
        calculator = self._calculator(cls)
        scalars = calculator._kernel_scalars(fastopt_group, self._scalar_key(fastopt_group, step, created), dtype)
        threads = threads_for(param_np.size)
        buffers = (state_np[key] if key is not None else _EMPTY[dtype] for key in slots)
        self._kernel(cls, dtype, threads)(param_np, _numpy(grad), *buffers, *scalars, threads)

    def _step_pack(self, cls, fastopt_group, slots, keys, layout, dtype, members, state_unchanged) -> None:
        """Step every small parameter of a group with one kernel call over the packed buffers.

        The pack is reused while nothing moved: the group's tensors kept their addresses since it
        was built (``layout.generation``), no state entry was replaced (``state_unchanged``), the
        options need the same buffers, and the same parameters have gradients."""
        key = (id(layout.group), dtype)
        pack = self._packs.get(key)
        created = False
        if not (
            pack is not None
            and state_unchanged
            and pack.generation == layout.generation
            and pack.keys == keys
            and len(pack.params) == len(members)
            and all(map(operator.is_, pack.params, members))
            and pack.steps_agree()
        ):
            # (Re)build the pack, if one call can step them all: every member must be at the same
            # step, and (SGD) all or none must be creating their momentum buffer now.
            states = [self.state[p] for p in members]
            new = [any(name not in state for name in keys) for state in states]
            steps = {float(state["step"]) if "step" in state else 0.0 for state in states} if self._has_step else {0.0}
            if len(steps) > 1 or (any(new) and not all(new)):
                for p in members:  # one call each this time; they are in step afterwards
                    self._step_one(cls, fastopt_group, slots, keys, p)
                return
            created = new[0]
            pack = self._packs[key] = _Pack(self, members, fastopt_group, keys)
            layout.ptrs = [p.data_ptr() for p in layout.params]  # the pack may have moved them
            pack.generation = layout.generation
            self._state_touched = True
        grads = [p.grad for p in members]
        if not all(map(operator.is_, grads, pack.grad_views)):
            torch._foreach_copy_(pack.grad_views, grads)  # gather the gradients: one C++ call
            if pack.last_grads is not None and all(map(operator.is_, grads, pack.last_grads)):
                # The same gradient tensors two steps running: they are being kept and zeroed in
                # place (zero_grad(set_to_none=False)). Make them views of the pack's gradient
                # buffer (same values), so backward accumulates there and no copy is needed.
                for p, view in zip(members, pack.grad_views):
                    p.grad = view
                grads = pack.grad_views
            pack.last_grads = grads
        step = 0.0
        if pack.steps is not None:
            pack.steps_np += 1.0
            step = float(pack.steps_np[0])
        np_dtype = pack.data_np.dtype
        scalars = self._calculator(cls)._kernel_scalars(fastopt_group, self._scalar_key(fastopt_group, step, created), np_dtype)
        threads = threads_for(pack.data_np.size)
        buffers = (pack.state_np[name] if name is not None else _EMPTY[np_dtype] for name in slots)
        self._kernel(cls, np_dtype, threads)(pack.data_np, pack.grad_np, *buffers, *scalars, threads)

    # Checkpoints -------------------------------------------------------------------------------
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict`` (ids mapped to parameters, floating state cast to each
        parameter's dtype), after checking the saved hyperparameters with torch's rules; a
        ``step`` saved by torch (float32) is widened to float64, and packed buffers are rebuilt
        from the loaded values at the next step."""
        for saved in state_dict["param_groups"]:
            self._check_hyperparameters({**self.defaults, **saved})
        super().load_state_dict(state_dict)
        for state in self.state.values():
            step = state.get("step")
            if isinstance(step, torch.Tensor) and step.dtype != _STEP_DTYPE:
                state["step"] = step.to(_STEP_DTYPE)
            elif isinstance(step, numbers.Real):
                state["step"] = torch.tensor(float(step), dtype=_STEP_DTYPE)
        self._forget_layouts()

    def _forget_layouts(self) -> None:
        self._packs, self._numpy_cache, self._validated, self._layouts = {}, {}, {}, {}
        self._snapshot: list = []
        self._generation = 0

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._forget_layouts()


# --------------------------------------------------------------------------------------------
# The five optimizers
# --------------------------------------------------------------------------------------------
class SGD(_FastoptOptimizer):
    """``torch.optim.SGD`` stepped by ``fastopt.SGD``'s kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-3``), plus keyword-only ``backend`` (fastopt's
    ``"auto" | "reference" | "numba" | "cython"``) and ``pack_small_tensors``.
    State: ``momentum_buffer`` (with momentum), as in torch.
    """

    _hyperparameters = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize")
    _has_step = False

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False, *,
                 maximize=False, foreach=None, differentiable=False, fused=None,
                 backend="auto", pack_small_tensors=True):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                        nesterov=nesterov, maximize=maximize, foreach=foreach,
                        differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, backend, pack_small_tensors)

    def _fastopt(self, group):
        translated = {key: _as_float(key, group[key]) for key in self._hyperparameters}
        translated.update(fastopt.SGD.flag_defaults)  # torch's arithmetic
        fastopt.SGD.check_hyperparameters(translated)
        return fastopt.SGD, translated

    def _scalar_key(self, fastopt_group, step, created):
        return created  # a new momentum buffer takes the gradient itself (torch's first step)


class Adagrad(_FastoptOptimizer):
    """``torch.optim.Adagrad`` stepped by ``fastopt.Adagrad``'s kernel; see :mod:`fastopt.torch`.

    Same signature and defaults as torch (``lr=1e-2``, ``eps=1e-10``), plus ``backend`` and
    ``pack_small_tensors``. As in torch, ``step`` and ``sum`` exist from the constructor on, and a
    group added later starts its ``sum`` from the constructor's ``initial_accumulator_value``.
    """

    _hyperparameters = ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps", "maximize")

    def __init__(self, params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0, eps=1e-10,
                 foreach=None, *, maximize=False, differentiable=False, fused=None,
                 backend="auto", pack_small_tensors=True):
        defaults = dict(lr=lr, lr_decay=lr_decay, eps=eps, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, foreach=foreach,
                        maximize=maximize, differentiable=differentiable, fused=fused)
        super().__init__(params, defaults, backend, pack_small_tensors)
        for group in self.param_groups:  # torch creates Adagrad's state eagerly
            for p in group["params"]:
                self.state[p]["step"] = torch.tensor(0.0, dtype=_STEP_DTYPE)
                self.state[p]["sum"] = torch.full_like(p, self._initial_value("sum", group), memory_format=torch.contiguous_format)

    def _fastopt(self, group):
        translated = {key: _as_float(key, group[key]) for key in self._hyperparameters}
        translated.update(fastopt.Adagrad.flag_defaults)  # torch's arithmetic
        fastopt.Adagrad.check_hyperparameters(translated)
        return fastopt.Adagrad, translated

    def _initial_value(self, key, group):
        return self.defaults["initial_accumulator_value"] if key == "sum" else 0.0


class RMSprop(_FastoptOptimizer):
    """``torch.optim.RMSprop`` stepped by ``fastopt.RMSprop``'s kernel; see :mod:`fastopt.torch`.

    torch's names and defaults: ``lr=1e-2`` and ``alpha=0.99`` (fastopt's ``rho``), and torch's
    validation, which accepts any ``alpha >= 0`` (``fastopt.RMSprop`` wants ``0 <= rho < 1``).
    Plus ``backend`` and ``pack_small_tensors``.
    """

    _hyperparameters = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize")

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False,
                 capturable=False, foreach=None, maximize=False, differentiable=False, *,
                 backend="auto", pack_small_tensors=True):
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

    def _scalar_key(self, fastopt_group, step, created):
        return None  # RMSprop's scalars do not depend on the step


class Adam(_FastoptOptimizer):
    """``torch.optim.Adam`` stepped by ``fastopt.Adam``'s kernel (``fastopt.AdamW``'s with
    ``decoupled_weight_decay=True``); see :mod:`fastopt.torch`.

    Same signature and defaults as torch, plus ``backend`` and ``pack_small_tensors``.
    """

    _hyperparameters = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize", "decoupled_weight_decay")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False, *,
                 foreach=None, maximize=False, capturable=False, differentiable=False, fused=None,
                 decoupled_weight_decay=False, backend="auto", pack_small_tensors=True):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad,
                        maximize=maximize, foreach=foreach, capturable=capturable,
                        differentiable=differentiable, fused=fused,
                        decoupled_weight_decay=decoupled_weight_decay)
        super().__init__(params, defaults, backend, pack_small_tensors)

    def _fastopt(self, group):
        betas = group["betas"]
        if isinstance(betas, (tuple, list)) and any(isinstance(b, torch.Tensor) for b in betas):
            betas = tuple(_as_float("betas", b) for b in betas)
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
                 backend="auto", pack_small_tensors=True):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach, maximize=maximize,
                         capturable=capturable, differentiable=differentiable, fused=fused,
                         decoupled_weight_decay=True, backend=backend,
                         pack_small_tensors=pack_small_tensors)

    def __setstate__(self, state):
        super().__setstate__(state)
        for group in self.param_groups:  # as torch: AdamW is always decoupled
            group["decoupled_weight_decay"] = True
