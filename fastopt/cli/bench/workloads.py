"""What the benchmark runs: the arrays, each kernel's arguments, the bytes each algorithm must
move, the in-place update ceiling, and the torch.optim equivalents.

Everything here builds *callables* (one call = one optimizer step, or one ceiling pass); the
timing lives in :mod:`fastopt.cli.bench.timing`. Three rules keep the numbers honest:

* **Random, non-zero data.** Zeros let the second moments decay into subnormal numbers, which
  are very slow on x86; every array is filled from a seeded generator, which also touches every
  page before anything is timed.
* **Aligned buffers.** The benchmark's parameters and gradients are 64-byte aligned, like the
  state fastopt allocates, the buffers of :func:`fastopt.flatten` and torch's own tensors.
* **The kernel gets exactly what the public layer would pass**: flat arrays and scalars cast to
  the arrays' dtype (``np.float32(x)``: a Python float would make Numba compile float64
  arithmetic), ordered by the parameter names of the kernel in ``<optimizer>/reference.py``.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from fastopt import MATRIX_OPTIMIZERS
from fastopt import OPTIMIZERS as _ANY_SHAPE

OPTIMIZERS = {**_ANY_SHAPE, **MATRIX_OPTIMIZERS}
"""Every class the bench can time (Muon's matrices included)."""
from fastopt._backends import get_kernel
from fastopt._memory import aligned_full
from fastopt._rounding import BFLOAT16, is_low_precision, state_dtype, storage_code

# --------------------------------------------------------------------------------------------
# The hyperparameters benchmarked
# --------------------------------------------------------------------------------------------
OPTIONS: dict[str, dict] = {
    "SGD": dict(momentum=0.9),  # plain SGD (momentum 0) would only stream p and g
    "ASGD": dict(t0=0.0),  # averaging on: at torch's t0 = 1e6 the average is only written, never read
}
"""Overrides of each class's defaults; everything else is the constructor's default."""


def hyperparameters(name: str) -> dict:
    """The full set of hyperparameters benchmarked for optimizer ``name`` (defaults + OPTIONS)."""
    signature = inspect.signature(OPTIMIZERS[name])
    # the convention flags stay at their torch values (torch.optim takes none of them)
    skipped = {"params", "backend", "convention", *OPTIMIZERS[name].flag_defaults}
    values = {
        key: parameter.default
        for key, parameter in signature.parameters.items()
        if key not in skipped and parameter.default is not inspect.Parameter.empty
    }
    values.update(OPTIONS.get(name, {}))
    return values


# --------------------------------------------------------------------------------------------
# Memory traffic: what each algorithm must read and write per element
# --------------------------------------------------------------------------------------------
def _optimizer_for(name: str, hp: dict):
    """An optimizer of class ``name`` with hyperparameters ``hp``, to ask for its kernel layout."""
    return OPTIMIZERS[name]([np.zeros((1, 1) if name in MATRIX_OPTIMIZERS else 1)], backend="reference", **hp)


def state_arrays(name: str, hp: dict) -> tuple[str, ...]:
    """The state arrays (torch's names) that one step reads and writes, for these options: the
    kernel slots the optimizer class itself fills."""
    optimizer = _optimizer_for(name, hp)
    return tuple(slot for slot in optimizer.algorithm.slots(optimizer.param_groups[0]) if slot is not None)


@dataclass(frozen=True)
class Traffic:
    """The arrays a step must read and write; ``bytes_per_element`` is what effective GB/s counts.

    An element-wise optimizer cannot do with less: every input is read once and every output
    written once. (Weight decay reads ``param``, which is read anyway; SGD's first step does not
    read its momentum buffer, but every later one does, and that is the step measured.)
    """

    reads: tuple[str, ...]
    writes: tuple[str, ...]
    itemsize: int
    state_itemsize: int | None = None  # the state's, if not the parameter's (float32 for 16-bit parameters)

    @property
    def arrays(self) -> int:
        return len(self.reads) + len(self.writes)

    def _size(self, array: str) -> int:
        own = array in ("param", "grad", "a", "b") or self.state_itemsize is None
        return self.itemsize if own else self.state_itemsize

    @property
    def bytes_per_element(self) -> int:
        return sum(map(self._size, self.reads + self.writes))

    def describe(self) -> str:
        text = f"reads {', '.join(self.reads)}; writes {', '.join(self.writes)}"
        if self.state_itemsize is not None:
            text += f" ({self.itemsize}-byte parameter and gradient, {self.state_itemsize}-byte state: {self.bytes_per_element} bytes)"
        return text


def optimizer_traffic(name: str, hp: dict, dtype) -> Traffic:
    algorithm = OPTIMIZERS[name].algorithm
    state = state_arrays(name, hp)
    if algorithm.whole_tensor:  # the state arrays of param's size (LAMB's moments); Adafactor's factors are negligible
        shape = (64, 64)  # any matrix: a state array of param's shape has it
        state = tuple(slot for slot in state if algorithm.buffer_shape(slot, shape) == shape)
    dtype = np.dtype(dtype)
    state_itemsize = state_dtype(dtype).itemsize if is_low_precision(dtype) else None
    return Traffic(("param", "grad", *state), ("param", *state), dtype.itemsize, state_itemsize)


def matrix_shape(n: int) -> tuple[int, int]:
    """The squarest ``rows x cols`` matrix of ``n`` elements, cols >= rows (64 x 64 for 4,096;
    2,048 x 2,048 for 4,194,304): the shape an optimizer with matrix statistics (Adafactor's
    factors) is benchmarked on."""
    rows = max(divisor for divisor in range(1, int(n**0.5) + 1) if n % divisor == 0)
    return rows, n // rows


def ceiling_traffic(dtype) -> Traffic:
    """``a[i] += s * b[i]``: read a, read b, write a."""
    return Traffic(("a", "b"), ("a",), np.dtype(dtype).itemsize)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def random_array(rng: np.random.Generator, n: int, dtype, low: float | None = None, high: float | None = None) -> np.ndarray:
    """An aligned 1-D array of ``n`` random values: standard normal, or uniform in [low, high)."""
    out = aligned_full((n,), dtype)
    if low is None:
        out[...] = rng.standard_normal(n, dtype=np.float64 if out.dtype == np.float64 else np.float32)
    else:
        out[...] = rng.uniform(low, high, n)
    return out


def random_state(name: str, hp: dict, n: int, dtype, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plausible mid-training state: moments of the right sign and scale, nothing subnormal."""
    state = {}
    for key in state_arrays(name, hp):
        if key in ("sum", "square_avg", "exp_avg_sq", "max_exp_avg_sq", "exp_inf", "acc_delta"):
            state[key] = random_array(rng, n, dtype, 0.5, 1.5)  # second moments are positive
        else:  # momentum_buffer, grad_avg, exp_avg
            state[key] = random_array(rng, n, dtype)
            state[key] *= state[key].dtype.type(0.1)
    return state


# --------------------------------------------------------------------------------------------
# Kernel arguments
# --------------------------------------------------------------------------------------------
STEP = 10
"""The step number ``t`` whose scalars the kernels get (any t > 1 runs the same instructions)."""


def scalar_key_at_step(optimizer, group: dict, step: int):
    """The key of the kernel scalars at step ``step``, from the optimizer's own algorithm: fresh
    counters advanced ``step`` times (for NAdam the key carries the product of its momentum
    schedule, so it is computed, not made up)."""
    algorithm = optimizer.algorithm
    counters = algorithm.initial_counters(group)
    key = None
    for _ in range(step):
        key = algorithm.advance(group, counters, ())
    return key


def kernel_keywords(name: str, hp: dict, param: np.ndarray, grad: np.ndarray, state: dict, num_threads: int = 1) -> dict:
    """The kernel's arguments by name, derived by the optimizer class itself at step ``STEP``.

    The algorithm's ``slots`` and ``scalars`` give exactly what ``opt.step`` passes (scalars
    computed in float64 and cast to the arrays' dtype; unused buffers are empty arrays); the names
    come from the reference kernel's signature.
    """
    optimizer = _optimizer_for(name, hp)
    group = optimizer.param_groups[0]
    unused = np.empty(0, param.dtype)
    arrays = [state.get(slot, unused) if slot is not None else unused for slot in optimizer.algorithm.slots(group)]
    key = scalar_key_at_step(optimizer, group, STEP)
    scalars = optimizer.algorithm.scalars(group, key, param.dtype)
    names = list(inspect.signature(reference_kernel(name)).parameters)
    return dict(zip(names, (param, grad, *arrays, *scalars, int(num_threads)), strict=True))


def reference_kernel(name: str):
    """The NumPy reference kernel of optimizer class ``name``."""
    return get_kernel(OPTIMIZERS[name].kernel, "reference")


def kernel_name(name: str) -> str:
    """The kernel folder of optimizer class ``name`` (``"Adam"`` -> ``"adam"``, ``"AdamW"`` -> ``"adam"``)."""
    return OPTIMIZERS[name].kernel


def positional(name: str, keywords: dict) -> tuple:
    """Order ``keywords`` as the reference kernel's parameters (the kernels take positions only).

    Raises ``RuntimeError`` if the names no longer match ``reference.py``, so the benchmark
    cannot silently drift from the kernels' signature.
    """
    reference = get_kernel(kernel_name(name), "reference")
    names = list(inspect.signature(reference).parameters)
    keywords = {k: v for k, v in keywords.items() if k in names or k not in OPTIONAL_ARGUMENTS}
    if set(names) != set(keywords):
        raise RuntimeError(
            f"the benchmark's arguments for {reference.__name__} no longer match reference.py: "
            f"missing {sorted(set(names) - set(keywords))}, unexpected {sorted(set(keywords) - set(names))}"
        )
    return tuple(keywords[key] for key in names)


OPTIONAL_ARGUMENTS = ("num_threads",)
"""Arguments that only kernels with a threading knob take (dropped for kernels without it)."""


def kernel_call(name: str, backend: str, args: tuple, threads: int = 1) -> Callable[[], None]:
    """One call of the backend's kernel on ``args`` (a ``partial``: no Python frame of our own).

    As in the public layer: with more than one thread, the backend's parallel kernel where there
    is one (Numba's ``parallel=True`` twin).
    """
    kernel = None
    if threads > 1:
        try:
            kernel = get_kernel(kernel_name(name), backend, parallel=True)
        except TypeError:  # a fastopt without parallel kernels: the serial one
            kernel = None
    if kernel is None:
        kernel = get_kernel(kernel_name(name), backend)
    if backend == "reference":
        return functools.partial(_quiet, kernel, args)
    return functools.partial(kernel, *args)


def _quiet(kernel, args) -> None:
    """The reference kernel as the public layer runs it: without NumPy floating-point warnings."""
    with np.errstate(all="ignore"):
        kernel(*args)


# --------------------------------------------------------------------------------------------
# The in-place update ceiling
# --------------------------------------------------------------------------------------------
def _inplace_update(a, b, s):
    """``a += s * b``, one element at a time: the fastest an optimizer-shaped stream can go."""
    for i in range(a.shape[0]):
        a[i] += s * b[i]


@functools.cache
def ceiling_kernel(parallel: bool):
    """The ceiling, compiled with fastopt's Numba options (``fastopt._jit.KERNEL_OPTIONS``: no
    fastmath); the parallel twin (``prange``) is the ceiling for more than one thread."""
    import numba

    from fastopt._jit import KERNEL_OPTIONS

    if not parallel:
        return numba.njit(**KERNEL_OPTIONS)(_inplace_update)

    def _inplace_update_parallel(a, b, s):
        for i in numba.prange(a.shape[0]):
            a[i] += s * b[i]

    return numba.njit(parallel=True, **KERNEL_OPTIONS)(_inplace_update_parallel)


# --------------------------------------------------------------------------------------------
# torch.optim
# --------------------------------------------------------------------------------------------
TORCH_VARIANTS = {"default": dict(foreach=False), "foreach": dict(foreach=True), "fused": dict(fused=True)}
"""torch.optim's implementations: the for-loop (the CPU default), multi-tensor, fused C++."""


MUON_TORCH_VARIANTS = {
    "bf16": "torch.optim.Muon as shipped: Newton-Schulz in bfloat16",
    "no-bf16": "torch.optim.Muon with its bfloat16 cast removed: Newton-Schulz in the parameter's dtype, as fastopt",
}
"""torch's Muon has one implementation (no foreach, no fused); timed as shipped and in fastopt's dtype."""


def torch_variants(name: str) -> dict:
    """The torch.optim implementations timed for optimizer ``name``."""
    return MUON_TORCH_VARIANTS if name == "Muon" else TORCH_VARIANTS


def _newton_schulz_in_dtype(torch):
    """torch's ``_zeropower_via_newtonschulz`` without its ``.bfloat16()`` cast (the same steps
    in the tensor's own dtype)."""

    def newton_schulz(grad, ns_coefficients, ns_steps, eps):
        a, b, c = ns_coefficients
        x = grad.T if grad.size(0) > grad.size(1) else grad
        x = x / x.norm().clamp(min=eps)
        for _ in range(ns_steps):
            gram = x @ x.T
            polynomial = torch.addmm(gram, gram, gram, beta=b, alpha=c)
            x = torch.addmm(x, polynomial, x, beta=a)
        return x.T if grad.size(0) > grad.size(1) else x

    return newton_schulz


def _muon_step_in_dtype(torch, optimizer):
    """``optimizer.step`` of a torch.optim.Muon with Newton-Schulz in the parameters' dtype."""
    from torch.optim import _muon

    in_dtype = _newton_schulz_in_dtype(torch)

    def step():
        shipped = _muon._zeropower_via_newtonschulz
        _muon._zeropower_via_newtonschulz = in_dtype
        try:
            optimizer.step()
        finally:
            _muon._zeropower_via_newtonschulz = shipped

    return step


def torch_keywords(name: str, hp: dict) -> dict:
    """fastopt's hyperparameters under torch.optim's names (the same algorithm)."""
    keywords = dict(hp)
    if name == "RMSprop":
        keywords["alpha"] = keywords.pop("rho")
    return keywords


def shared_tensor(torch, array: np.ndarray):
    """A tensor over ``array``'s memory; a bfloat16 array (ml_dtypes') through its 16 bits."""
    if storage_code(array.dtype) == BFLOAT16:
        return torch.from_numpy(array.view(np.uint16)).view(torch.bfloat16)
    return torch.from_numpy(array)


@dataclass
class TorchSetup:
    """A torch optimizer over tensors sharing memory with NumPy arrays, gradients already set."""

    step: Callable[[], None] | None
    error: str | None = None
    keep: list = field(default_factory=list)  # tensors, kept alive


def torch_optimizer(torch, name: str, hp: dict, variant: str, params: Sequence[np.ndarray], grads: Sequence[np.ndarray]) -> TorchSetup:
    """``torch.optim.<name>(..., **variant)`` over ``params`` (shared memory, not copies).

    Returns ``step=None`` and the reason when this torch has no such variant (RMSprop has no
    ``fused``) or it fails here.
    """
    tensors = []
    for p, g in zip(params, grads):
        tensor = torch.nn.Parameter(shared_tensor(torch, p))
        tensor.grad = shared_tensor(torch, g)
        tensors.append(tensor)
    try:
        flags = {} if name == "Muon" else TORCH_VARIANTS[variant]
        optimizer = getattr(torch.optim, name)(tensors, **torch_keywords(name, hp), **flags)
        step = _muon_step_in_dtype(torch, optimizer) if (name, variant) == ("Muon", "no-bf16") else optimizer.step
        step()  # creates the state (touches its pages) and fails early if unsupported
    except (TypeError, RuntimeError, ValueError) as exc:
        return TorchSetup(None, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    return TorchSetup(step, keep=[tensors, optimizer])


# --------------------------------------------------------------------------------------------
# Real torch models: fastopt.torch against torch.optim on a model's parameter list
# --------------------------------------------------------------------------------------------
TORCH_MODELS = {
    "many-small": "an MLP of 100 Linear(32, 32): 200 tensors (1,024 and 32 elements), 105,600 float32",
    "few-large": "4 Linear(1024, 1024): 8 tensors, 4,198,400 float32",
}
"""The models of ``examples/torch_speed.py``: where per-tensor overhead decides, and where memory
bandwidth does."""

TORCH_MODEL_IMPLS = ("torch foreach", "torch fused", "fastopt.torch")
GRADIENT_MODES = {
    "kept": "the same .grad tensors at every step (zero_grad(set_to_none=False))",
    "new": "new .grad tensors at every step (zero_grad(), torch's default); assigned outside the timing",
}


def torch_model(torch, name: str):
    """A fresh float32 model (seeded), as a list of parameters."""
    torch.manual_seed(0)
    if name == "many-small":
        layers = [torch.nn.Linear(32, 32) for _ in range(100)]
    elif name == "few-large":
        layers = [torch.nn.Linear(1024, 1024) for _ in range(4)]
    else:
        raise ValueError(f"unknown torch model {name!r}; choose from {', '.join(TORCH_MODELS)}")
    return list(torch.nn.Sequential(*layers).parameters())


@dataclass
class TorchModelSetup:
    """``step`` makes one optimizer step; ``prepare`` (new-gradient mode) gives every parameter a
    new gradient tensor before it, outside the timing. ``params`` and ``optimizer`` are kept."""

    step: Callable[[], None]
    prepare: Callable[[], None] | None
    elements: int
    tensors: int
    keep: list = field(default_factory=list)


def torch_model_setup(torch, model: str, impl: str, gradients: str) -> TorchModelSetup:
    """Adam (lr 1e-4, torch's other defaults) over a fresh copy of ``model``, with random
    gradients, after two steps (state created, warm)."""
    import fastopt.torch

    params = torch_model(torch, model)
    generator = torch.Generator().manual_seed(1)
    sets = [[torch.randn(p.shape, generator=generator) for p in params] for _ in range(2)]
    for p, g in zip(params, sets[0]):
        p.grad = g
    if impl == "fastopt.torch":
        optimizer = fastopt.torch.Adam(params, lr=1e-4)
    else:
        optimizer = torch.optim.Adam(params, lr=1e-4, **TORCH_VARIANTS[impl.removeprefix("torch ")])
    optimizer.step()
    optimizer.step()
    prepare = None
    if gradients == "new":
        turn = [0]

        def prepare() -> None:
            turn[0] ^= 1
            for p, g in zip(params, sets[turn[0]]):
                p.grad = g

    elements = sum(p.numel() for p in params)
    return TorchModelSetup(optimizer.step, prepare, elements, len(params), keep=[params, sets, optimizer])
