"""The checks the optimizers share: of hyperparameters, of NumPy arrays, of state entries.

Hyperparameter messages are torch.optim's, word for word (``Invalid learning rate: -1.0``), so
that users moving between the two libraries recognise them; array messages name the argument's
position and what was wrong. The compiled kernels check only that every array they touch has
``param``'s length (``fastopt/_checks.py``) and run without bounds checks, so these checks, made
before anything changes, are what stands between a user's mistake and memory corruption. (Rules
that belong to one place are written there: a group's structure and memory overlap in
``fastopt/_optimizer.py``, checkpoints in ``fastopt/_checkpoint.py``, tensors in
``fastopt/torch/``, an optimizer's own conditions in its algorithm.)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from ._rounding import is_low_precision, state_dtype

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
"""The dtypes the kernels compute in; float16 and bfloat16 parameters are stepped in float32
(:mod:`fastopt._rounding`)."""


# --------------------------------------------------------------------------------------------
# Hyperparameters
# --------------------------------------------------------------------------------------------
def check_real(name: str, value: object) -> None:
    """A real number (Python or NumPy; ``bool`` is not a number here) that a float64 can hold.

    The range check matters for Python ints and Fractions: ``10**400`` passes ``< inf`` but
    cannot become a float, and would otherwise raise ``OverflowError`` in the middle of a step.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    try:
        float(value)
    except OverflowError:
        raise ValueError(f"{name} is too large for a float64 (got a {type(value).__name__})") from None


def check_flag(name: str, value: object) -> None:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")


def check_nonnegative(name: str, value: object, message: str) -> None:
    """``0 <= value < inf``; NaN fails the chained comparison and is rejected too."""
    check_real(name, value)
    if not 0.0 <= value < math.inf:  # type: ignore[operator]
        raise ValueError(message)


def check_lr(lr: object) -> None:
    check_nonnegative("lr", lr, f"Invalid learning rate: {lr}")


def check_eps(eps: object) -> None:
    check_nonnegative("eps", eps, f"Invalid epsilon value: {eps}")


def check_weight_decay(weight_decay: object) -> None:
    check_nonnegative("weight_decay", weight_decay, f"Invalid weight_decay value: {weight_decay}")


def check_momentum(momentum: object) -> None:
    check_nonnegative("momentum", momentum, f"Invalid momentum value: {momentum}")


def check_unit_interval(name: str, value: object, message: str) -> None:
    """``0 <= value < 1`` (a decay rate of 1 would never forget, and never learn)."""
    check_real(name, value)
    if not 0.0 <= value < 1.0:  # type: ignore[operator]
        raise ValueError(message)


def check_betas(betas: object) -> None:
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise TypeError(f"betas must be a pair (beta1, beta2), got {betas!r}")
    for index, beta in enumerate(betas):
        check_unit_interval(f"betas[{index}]", beta, f"Invalid beta parameter at index {index}: {beta}")


def check_adam_family(group: dict) -> None:
    """torch's first four checks of Adam, Adamax, NAdam and RAdam, in its order: ``lr``, ``eps``,
    ``betas``, ``weight_decay``."""
    check_lr(group["lr"])
    check_eps(group["eps"])
    check_betas(group["betas"])
    check_weight_decay(group["weight_decay"])


# --------------------------------------------------------------------------------------------
# Arrays
# --------------------------------------------------------------------------------------------
def _reject_masked(where: str, array: np.ndarray) -> None:
    """The kernels read and write the raw data: a mask would be silently ignored."""
    if isinstance(array, np.ma.MaskedArray):
        raise TypeError(
            f"{where} is a numpy.ma.MaskedArray; fastopt would ignore its mask: pass a plain "
            "ndarray (e.g. array.filled(0.0))"
        )


def check_param(where: str, param: object) -> np.ndarray:
    """A parameter must be a writeable, C-contiguous ndarray of float32, float64, float16 or
    bfloat16: it is updated in place, so fastopt never copies it (a copy would silently detach
    the caller's array)."""
    if not isinstance(param, np.ndarray):
        raise TypeError(
            f"{where} must be a numpy.ndarray of float32, float64, float16 or bfloat16, got {type(param).__name__}"
        )
    _reject_masked(where, param)
    if param.dtype not in SUPPORTED_DTYPES and not is_low_precision(param.dtype):
        hint = ""
        if param.dtype.name == "bfloat16":  # a bfloat16 that is not ml_dtypes'
            hint = " (bfloat16 is ml_dtypes.bfloat16: `pip install ml_dtypes`)"
        raise TypeError(
            f"{where} has dtype {param.dtype}; fastopt optimizes native float32 and float64 arrays, "
            f"and float16 and bfloat16 ones with float32 state{hint}"
        )
    if not param.flags.c_contiguous:
        raise ValueError(
            f"{where} is not C-contiguous; fastopt updates parameters in place and never copies "
            "them, so pass a contiguous array (e.g. np.ascontiguousarray(p) before training)"
        )
    if not param.flags.writeable:
        raise ValueError(f"{where} is read-only; parameters are updated in place")
    return param


def flat_view(array: np.ndarray) -> np.ndarray:
    """A 1-D view of a C-contiguous array (never a copy), as a base-class ndarray."""
    return array.view(np.ndarray).reshape(-1)


def memory_extent(array: np.ndarray) -> tuple[int, int]:
    """``[start, end)`` byte addresses of a C-contiguous array's data."""
    start = array.__array_interface__["data"][0]
    return start, start + array.nbytes


def check_grad(index: int, grad: object, param: np.ndarray) -> np.ndarray | None:
    """Return the gradient as a contiguous 1-D array (``None`` passes through).

    A gradient is only read, so a read-only one is fine, and a non-contiguous one is copied into a
    contiguous temporary (this does not touch the in-place contract, which is about parameters).
    """
    if grad is None:
        return None
    if not isinstance(grad, np.ndarray):
        raise TypeError(
            f"grads[{index}] must be a numpy.ndarray or None, got {type(grad).__name__}"
        )
    _reject_masked(f"grads[{index}]", grad)
    if grad.dtype != param.dtype:
        raise TypeError(
            f"grads[{index}] has dtype {grad.dtype} but params[{index}] has dtype {param.dtype}"
        )
    if grad.shape != param.shape:
        raise ValueError(
            f"grads[{index}] has shape {grad.shape} but params[{index}] has shape {param.shape}"
        )
    if grad.size and np.may_share_memory(grad, param):
        raise ValueError(
            f"grads[{index}] shares memory with params[{index}]; pass the gradient in its own array"
        )
    if not grad.flags.c_contiguous:
        grad = np.ascontiguousarray(grad)
    return flat_view(grad)


# --------------------------------------------------------------------------------------------
# Optimizer state (``opt.state`` is public and may be edited between steps)
# --------------------------------------------------------------------------------------------
MAX_STEP = 2**62
"""Step counters must stay below this (146 years at one step per nanosecond): the Cython
multi-tensor path holds them in a C ``Py_ssize_t`` and adds one."""


def check_step(where: str, value: object) -> None:
    """A step counter as the optimizer keeps it: a Python ``int`` in ``[0, MAX_STEP)``."""
    if type(value) is not int or not 0 <= value < MAX_STEP:
        raise ValueError(f"{where} must be an int in [0, 2**62), got {type(value).__name__} {value!r}")


def check_state_array(where: str, value: object, param: np.ndarray, shape: tuple[int, ...] | None = None) -> None:
    """A state buffer the kernels will update in place, as if it were the parameter itself: the
    same dtype and shape (``shape`` if the algorithm keeps another: Adafactor's factors; a
    shorter buffer would be written past its end by the compiled kernels), C-contiguous (a copy
    would lose the update), writeable, aligned, and not sharing memory with its parameter (the
    NumPy reference and the element loops would then differ)."""
    if not isinstance(value, np.ndarray) or isinstance(value, np.ma.MaskedArray):
        raise TypeError(f"{where} must be a numpy.ndarray, got {type(value).__name__}")
    dtype = state_dtype(param.dtype)  # float32 for a float16 or bfloat16 parameter
    if shape is None:
        shape = param.shape
    if value.dtype != dtype or value.shape != shape:
        if shape == param.shape and dtype == param.dtype:
            raise ValueError(
                f"{where} has shape {value.shape} and dtype {value.dtype}, but its parameter has "
                f"shape {param.shape} and dtype {param.dtype}"
            )
        raise ValueError(
            f"{where} has shape {value.shape} and dtype {value.dtype}, but a parameter of shape "
            f"{param.shape} and dtype {param.dtype} needs shape {shape} and dtype {dtype}"
        )
    flags = value.flags
    if not (flags.c_contiguous and flags.writeable and flags.aligned):
        raise ValueError(f"{where} must be a C-contiguous, writeable, aligned array")
    if value.size and np.may_share_memory(value, param):
        raise ValueError(f"{where} shares memory with its parameter")
