"""What every benchmark shares: the parameter grid, the data, and one table of optimizer cases.

Rules (NumPy's asv README, adapted):

* The suite must import with **any** version of fastopt: at import time it needs only
  ``fastopt`` and ``fastopt._backends`` (present since the first commit); a missing backend or
  feature raises ``NotImplementedError`` in ``setup``, which asv shows as "n/a".
* The data is **append-only**. Changing a seed, a distribution or a hyperparameter below changes
  what every past result measured; add a new entry instead.
* ``setup`` is cheap: asv re-runs it before every timed call, so the arrays are built once per
  benchmark process (``functools.lru_cache``) and reused. The kernels update them in place and the
  values stay in a healthy range (no subnormals, inf or NaN) for any number of steps.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

import fastopt
import fastopt._backends

# ------------------------------------------------------------------------------------------------
# The parameter grid
# ------------------------------------------------------------------------------------------------
BACKENDS = ["reference", "numba", "cython"]
"""Slowest (the NumPy specification) first, as in ``fastopt.BACKENDS``."""

SIZES = [4_096, 262_144, 4_194_304, 33_554_432]
"""Elements per array. In float32: 16 KiB (L1), 1 MiB (L2), 16 MiB (L3), 128 MiB (main memory)."""

DTYPES = ["float32", "float64"]

STEP = 10
"""The step counter ``t`` used for bias corrections: a steady-state step, not the first one."""

# ------------------------------------------------------------------------------------------------
# Data: random, non-zero, aligned as fastopt's state, every page touched
# ------------------------------------------------------------------------------------------------
BLOCK = 65_536
"""Random values are drawn for one block and repeated: a 33.5M-element array is then built at
memory speed instead of at random-number-generator speed. The kernels are element-wise, so the
repetition changes nothing they do."""

ALIGNMENT = 64  # bytes: fastopt's own state buffers are aligned like this (fastopt/_memory.py)
HUGE_PAGE = 2 << 20  # ... and, from 2 MiB up, on a huge-page boundary (since the commit that added this)


def aligned_empty(size: int, dtype) -> np.ndarray:
    """An uninitialised 1-D array placed as fastopt places its state: on a 64-byte boundary, or
    a 2 MiB one for 2 MiB or more (results measured before that change used 64 bytes for all)."""
    dtype = np.dtype(dtype)
    nbytes = size * dtype.itemsize
    alignment = HUGE_PAGE if nbytes >= HUGE_PAGE else ALIGNMENT
    raw = np.empty(nbytes + alignment, dtype=np.uint8)
    offset = (-raw.ctypes.data) % alignment
    return raw[offset : offset + nbytes].view(dtype)


def random_array(size: int, dtype, seed: int, positive: bool = False) -> np.ndarray:
    """A 1-D aligned array of non-zero random values (every page written, so touched).

    ``positive=False``: standard normal (parameters, gradients, first moments).
    ``positive=True``: uniform in [0.5, 1.5) (accumulators that go under a square root).
    Zeros would let the second moments decay towards subnormal numbers, which are very slow.
    """
    rng = np.random.default_rng(seed)
    count = min(size, BLOCK)
    block = rng.uniform(0.5, 1.5, count) if positive else rng.standard_normal(count)
    block = block.astype(dtype)
    array = aligned_empty(size, dtype)
    for start in range(0, size, count):
        stop = min(start + count, size)
        array[start:stop] = block[: stop - start]
    return array


# Seeds: append-only.
SEED_PARAM, SEED_GRAD, SEED_STATE = 20_241_101, 20_241_102, 20_241_103

# ------------------------------------------------------------------------------------------------
# The optimizer cases: one typical configuration each, as the public class and as kernel arguments
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OptimizerCase:
    """One optimizer in one configuration, reachable two ways that do the same arithmetic.

    ``hyperparameters`` go to the public class ``fastopt.<class_name>``; ``kernel_values`` gives
    the kernel's arguments **by name** (the parameter names of ``fastopt/<name>/reference.py``)
    for those same hyperparameters at step ``STEP``, each scalar derived in float64 and cast to
    the arrays' dtype exactly as the class does. :func:`kernel_arguments` puts them in the order
    of the installed version's signature, so one table serves every commit asv measures.
    """

    name: str
    class_name: str
    hyperparameters: dict
    state: tuple[str, ...]  # state arrays the kernel reads and writes in this configuration
    kernel_values: Callable[[SimpleNamespace], dict] = field(repr=False)


def _sgd_values(a: SimpleNamespace) -> dict:
    h, c = CASES["sgd"].hyperparameters, a.cast
    return dict(param=a.param, grad=a.grad, momentum_buffer=a.momentum_buffer, maximize=False,
                weight_decay=c(h["weight_decay"]), decay_factor=c(1.0), momentum=c(h["momentum"]), first_step=False,
                one_minus_dampening=c(1.0 - h["dampening"]), nesterov=h["nesterov"], lr=c(h["lr"]))


def _adagrad_values(a: SimpleNamespace) -> dict:
    h, c = CASES["adagrad"].hyperparameters, a.cast
    clr = h["lr"] / (1 + (STEP - 1) * h["lr_decay"])
    return dict(param=a.param, grad=a.grad, state_sum=a.state_sum, maximize=False,
                weight_decay=c(h["weight_decay"]), decay_factor=c(1.0), eps_inside_sqrt=False,
                eps=c(h["eps"]), clr=c(clr))


def _rmsprop_values(a: SimpleNamespace) -> dict:
    h, c = CASES["rmsprop"].hyperparameters, a.cast
    return dict(param=a.param, grad=a.grad, square_avg=a.square_avg, grad_avg=a.unused,
                momentum_buffer=a.unused, maximize=False, weight_decay=c(h["weight_decay"]),
                decay_factor=c(1.0), rho=c(h["rho"]), one_minus_rho=c(1.0 - h["rho"]),
                centered=h["centered"], eps_inside_sqrt=False, eps=c(h["eps"]),
                momentum=c(h["momentum"]), lr_in_momentum=False, lr=c(h["lr"]))


def _adam_moment_values(h: dict, a: SimpleNamespace) -> dict:
    """What Adam and AdamW share: the arrays and the moment scalars."""
    c = a.cast
    beta1, beta2 = h["betas"]
    bias_correction1, bias_correction2 = 1 - beta1**STEP, 1 - beta2**STEP
    return dict(param=a.param, grad=a.grad, exp_avg=a.exp_avg, exp_avg_sq=a.exp_avg_sq,
                max_exp_avg_sq=a.unused, maximize=False, beta1=c(beta1), one_minus_beta1=c(1.0 - beta1),
                beta2=c(beta2), one_minus_beta2=c(1.0 - beta2), amsgrad=h["amsgrad"],
                amsgrad_corrected_max=False, bias_correction2=c(bias_correction2),
                bias_correction2_sqrt=c(math.sqrt(bias_correction2)), eps=c(h["eps"]),
                step_size=c(h["lr"] / bias_correction1),
                # since one division was folded away, eps_t of (6) (step_size then holds alpha_t, of
                # the same magnitude as the older eta / (1 - beta1^t) that times the same work)
                eps_t=c(h["eps"] * math.sqrt(bias_correction2)))


def _adam_values(a: SimpleNamespace) -> dict:
    h = CASES["adam"].hyperparameters
    return dict(_adam_moment_values(h, a), weight_decay=a.cast(h["weight_decay"]), decay_factor=a.cast(1.0))


def _adamw_values(a: SimpleNamespace) -> dict:
    h = CASES["adamw"].hyperparameters
    # weight_decay: the L2 term of Adam's kernel, which steps AdamW since the two stopped being
    # copies of one loop (zero: the decay is decoupled, in decay_factor)
    return dict(_adam_moment_values(h, a), weight_decay=a.cast(0.0),
                decay_factor=a.cast(1.0 - h["lr"] * h["weight_decay"]))


def _values_from_class(name: str) -> Callable[[SimpleNamespace], dict]:
    """Kernel values derived by the installed optimizer itself, through what its ``step()`` uses:
    its algorithm (``slots``, ``advance``, ``scalars``), or in versions before the step engine the
    class's own hooks (``_kernel_slots``, ``_begin_step``, ``_kernel_scalars``). For the
    optimizers added after those hooks existed; on a version without the class, n/a."""

    def values(a: SimpleNamespace) -> dict:
        case = CASES[name]
        cls = getattr(fastopt, case.class_name, None)
        if cls is None or not (hasattr(cls, "algorithm") or hasattr(cls, "_kernel_scalars")):
            raise NotImplementedError(f"fastopt.{case.class_name} does not exist in this version")
        optimizer = cls([np.zeros(1)], backend="reference", **case.hyperparameters)
        group = optimizer.param_groups[0]
        dtype = np.dtype(a.cast)
        # the key of step STEP's scalars, advanced STEP times from a fresh state
        if hasattr(cls, "algorithm"):
            algorithm = cls.algorithm
            counters = algorithm.initial_counters(group)
            for _ in range(STEP):
                key = algorithm.advance(group, counters, ())
            slots, scalars = algorithm.slots(group), algorithm.scalars(group, key, dtype)
        else:
            probe = np.zeros(1)
            state = optimizer._init_state(probe, group)
            for _ in range(STEP):
                key = optimizer._begin_step(probe, state, group)
            slots, scalars = optimizer._kernel_slots(group), optimizer._kernel_scalars(group, key, dtype)
        arrays = [getattr(a, slot) if slot else a.unused for slot in slots]
        folder = kernel_folder(name)
        reference = importlib.import_module(f"fastopt.{folder}.reference")
        names = list(inspect.signature(getattr(reference, f"{folder}_update")).parameters)
        return dict(zip(names, (a.param, a.grad, *arrays, *scalars)))

    return values


COMMON_VALUES = {"num_threads": 1}
"""Arguments some versions' kernels take and others do not: one thread, for a like-for-like
comparison with the single-threaded reference."""


CASES: dict[str, OptimizerCase] = {
    # SGD with heavy-ball momentum (without momentum it is a plain axpy).
    "sgd": OptimizerCase("sgd", "SGD", dict(lr=1e-3, momentum=0.9, dampening=0.0, weight_decay=0.0,
                                            nesterov=False), ("momentum_buffer",), _sgd_values),
    "adagrad": OptimizerCase("adagrad", "Adagrad", dict(lr=1e-2, lr_decay=0.0, weight_decay=0.0,
                                                        eps=1e-10), ("state_sum",), _adagrad_values),
    # RMSprop, plain (not centered, no momentum): the configuration most people run.
    "rmsprop": OptimizerCase("rmsprop", "RMSprop", dict(lr=1e-3, rho=0.9, eps=1e-8, weight_decay=0.0,
                                                        momentum=0.0, centered=False),
                             ("square_avg",), _rmsprop_values),
    "adam": OptimizerCase("adam", "Adam", dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                               amsgrad=False), ("exp_avg", "exp_avg_sq"), _adam_values),
    "adamw": OptimizerCase("adamw", "AdamW", dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                                                  weight_decay=1e-2, amsgrad=False),
                           ("exp_avg", "exp_avg_sq"), _adamw_values),
    # Added with the second family of optimizers: arguments derived by the class itself.
    "adadelta": OptimizerCase("adadelta", "Adadelta", dict(lr=1.0, rho=0.9, eps=1e-6),
                              ("square_avg", "acc_delta"), _values_from_class("adadelta")),
    "adamax": OptimizerCase("adamax", "Adamax", dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8),
                            ("exp_avg", "exp_inf"), _values_from_class("adamax")),
    "nadam": OptimizerCase("nadam", "NAdam", dict(lr=2e-3, betas=(0.9, 0.999), eps=1e-8),
                           ("exp_avg", "exp_avg_sq"), _values_from_class("nadam")),
    "radam": OptimizerCase("radam", "RAdam", dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8),
                           ("exp_avg", "exp_avg_sq"), _values_from_class("radam")),
    "lion": OptimizerCase("lion", "Lion", dict(lr=1e-4, betas=(0.9, 0.99), weight_decay=0.0),
                          ("exp_avg",), _values_from_class("lion")),
    # prev positive and the gradient of random sign: repeated and flipped signs, mixed at random
    "rprop": OptimizerCase("rprop", "Rprop", dict(lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50)),
                           ("prev", "step_size"), _values_from_class("rprop")),
    # averaging on (t0 = 0): at torch's t0 = 1e6 the average ax is only written, never read
    "asgd": OptimizerCase("asgd", "ASGD", dict(lr=1e-2, lambd=1e-4, alpha=0.75, t0=0.0),
                          ("ax",), _values_from_class("asgd")),
    "adabelief": OptimizerCase("adabelief", "AdaBelief", dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-16),
                               ("exp_avg", "exp_avg_var"), _values_from_class("adabelief")),
    # past the first step (which only sets exp_avg_sq): the full update, clipped at (t - 1)^(1/4)
    "adopt": OptimizerCase("adopt", "ADOPT", dict(lr=1e-3, betas=(0.9, 0.9999), eps=1e-6),
                           ("exp_avg", "exp_avg_sq"), _values_from_class("adopt")),
    # the scalars of a fresh group's first step (c = 1: the second form of the interpolation);
    # every step does the same operations per element
    "schedule_free_adamw": OptimizerCase("schedule_free_adamw", "ScheduleFreeAdamW",
                                         dict(lr=2.5e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0),
                                         ("z", "exp_avg_sq"), _values_from_class("schedule_free_adamw")),
}
"""Append-only: a new configuration gets a new key (e.g. ``"adam_amsgrad"``)."""

OPTIMIZER_NAMES = list(CASES)

# ------------------------------------------------------------------------------------------------
# Building problems (cached per benchmark process; see the module docstring)
# ------------------------------------------------------------------------------------------------
def kernel_folder(optimizer: str) -> str:
    """The folder whose kernels step ``optimizer``: its own, or the one its class names (AdamW is
    stepped by Adam's kernel; versions before that have an ``adamw`` kernel of their own)."""
    cls = getattr(fastopt, CASES[optimizer].class_name, None)
    return getattr(cls, "kernel", optimizer)


def load_kernel(optimizer: str, backend: str):
    """The kernel ``<optimizer>_update`` that ``backend`` runs; ``NotImplementedError`` if it cannot load.

    Asks fastopt (``fastopt._backends.get_kernel``) rather than importing a module by name, so the
    suite follows whatever fastopt does to pick a kernel (for example, choosing among Cython builds
    for different instruction sets) and times the same kernel that ``step()`` calls.

    asv reports ``NotImplementedError`` from ``setup`` as "n/a" (skipped), not as a failure: that
    is right for a backend this machine lacks. (CI checks separately that every backend loads.)
    """
    try:
        return fastopt._backends.get_kernel(kernel_folder(optimizer), backend)
    except ImportError as exc:  # fastopt.BackendUnavailable is an ImportError
        raise NotImplementedError(f"backend {backend!r} unavailable: {exc}") from exc


def kernel_arrays(optimizer: str, size: int, dtype: str) -> SimpleNamespace:
    """Fresh random ``param``, ``grad`` and state arrays for one kernel call (not cached)."""
    case = CASES[optimizer]
    arrays = SimpleNamespace(
        cast=np.dtype(dtype).type,
        param=random_array(size, dtype, SEED_PARAM),
        grad=random_array(size, dtype, SEED_GRAD),
        unused=np.empty(0, dtype),  # fills the slot of a buffer the configuration does not use
    )
    for index, name in enumerate(case.state):
        setattr(arrays, name, random_array(size, dtype, SEED_STATE + index, positive=True))
    return arrays


def kernel_arguments(optimizer: str, arrays: SimpleNamespace) -> tuple:
    """The kernel's positional arguments, in the order of the installed reference's signature."""
    folder = kernel_folder(optimizer)
    reference = importlib.import_module(f"fastopt.{folder}.reference")
    names = inspect.signature(getattr(reference, f"{folder}_update")).parameters
    values = {**COMMON_VALUES, **CASES[optimizer].kernel_values(arrays)}
    missing = [name for name in names if name not in values]
    if missing:  # a kernel gained an argument: add its value to the table (append-only)
        raise TypeError(f"benchmarks/common.py has no value for {folder}_update's {missing}")
    return tuple(values[name] for name in names)


@functools.lru_cache(maxsize=1)
def kernel_problem(optimizer: str, backend: str, size: int, dtype: str):
    """``(kernel, arguments)`` ready to call, the kernel already compiled for ``dtype``.

    The warm-up call runs on a separate tiny problem of the same dtype: Numba compiles the same
    signature, and the measured arrays are left untouched by it (so a ``peakmem_`` benchmark does
    not see the reference's temporaries before its own call).
    """
    kernel = load_kernel(optimizer, backend)
    kernel(*kernel_arguments(optimizer, kernel_arrays(optimizer, 64, dtype)))  # JIT warm-up
    return kernel, kernel_arguments(optimizer, kernel_arrays(optimizer, size, dtype))


def make_optimizer(optimizer: str, backend: str, params: list[np.ndarray]):
    """The public class over ``params``; ``NotImplementedError`` if ``backend`` cannot load."""
    case = CASES[optimizer]
    load_kernel(optimizer, backend)  # raises NotImplementedError for a missing backend
    return getattr(fastopt, case.class_name)(params, backend=backend, **case.hyperparameters)


@functools.lru_cache(maxsize=1)
def step_problem(optimizer: str, backend: str, size: int, dtype: str):
    """``(optimizer, grads)`` for one parameter of ``size`` elements, after one warm-up step.

    The warm-up step compiles the kernel and creates (and so touches) the optimizer's state, so
    the timed steps are steady-state steps.
    """
    param = random_array(size, dtype, SEED_PARAM)
    grads = [random_array(size, dtype, SEED_GRAD)]
    opt = make_optimizer(optimizer, backend, [param])
    opt.step(grads)
    return opt, grads
