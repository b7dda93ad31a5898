"""Tensors as fastopt.torch sees them: the checks and their messages, NumPy views, torch's layout
of the step counters, and whether the multi-tensor gather can read tensors here."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from fastopt._engine.rows import SparseRows, coalesce
from fastopt._rounding import bfloat16

DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}
"""The dtypes the kernels compute in, torch's -> NumPy's."""
SIXTEEN_BIT = {torch.float16: np.dtype(np.float16)}
"""16-bit parameters, stepped in float32 with float32 state (fastopt._rounding); bfloat16 with
ml_dtypes (a NumPy bfloat16 dtype to view the tensors as)."""
if bfloat16() is not None:
    SIXTEEN_BIT[torch.bfloat16] = bfloat16()
COMPLEX = {torch.complex64: torch.float32, torch.complex128: torch.float64}
"""Complex parameters, stepped as torch.optim steps them: as their real view (``view_as_real``),
each real and imaginary part one element of an element-wise optimizer."""
PARAM_DTYPES = {**DTYPES, **SIXTEEN_BIT, torch.complex64: np.dtype(np.float32), torch.complex128: np.dtype(np.float64)}
STATE_DTYPES = {**{dtype: dtype for dtype in (*DTYPES, *COMPLEX)}, torch.float16: torch.float32, torch.bfloat16: torch.float32}
"""A parameter's dtype -> its state tensors' (float32 for 16-bit parameters)."""


def state_array_dtype(dtype: torch.dtype) -> np.dtype:
    """The NumPy dtype of the arrays the kernels see as a parameter's state (a complex one's real
    parts)."""
    state = STATE_DTYPES[dtype]
    return DTYPES[COMPLEX.get(state, state)]


def real_view(tensor: torch.Tensor) -> torch.Tensor:
    """A complex tensor as its real view (a last dimension of 2: real, imaginary); any other as is."""
    return torch.view_as_real(tensor) if tensor.is_complex() else tensor
BY_BITS = {32: np.dtype(np.float32), 64: np.dtype(np.float64)}
# torch's layout of the counters: the step a float64 0-d tensor (torch's float32 stops counting
# at 2**24), NAdam's mu_product a float32 one, as torch; and fastopt's type of each, for the
# algorithm (its step is an int)
COUNTER_BITS = {"step": 64, "mu_product": 32, "eta": 32, "mu": 32}
COUNTER_TYPE = {"step": int, "mu_product": np.float32, "eta": np.float32, "mu": np.float32}
EMPTY_ARRAYS = {dtype: np.empty(0, dtype) for dtype in DTYPES.values()}  # for a slot the options leave unused


def fast_path_available() -> bool:
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
def memory_order(tensor: torch.Tensor) -> tuple[int, ...] | None:
    """The dimensions from the largest stride to the smallest, if the tensor is dense in that
    order (no gaps, no overlap): ``tensor.permute(order)`` is then contiguous, and its elements
    in memory order are that permutation's, as channels_last's are NHWC's. () for a contiguous
    tensor (no permutation needed), None for any other layout."""
    tensor = real_view(tensor)  # a complex tensor's order is its real view's
    if tensor.is_contiguous():
        return ()
    order = tuple(sorted(range(tensor.dim()), key=lambda dim: -tensor.stride(dim)))
    return order if tensor.permute(order).is_contiguous() else None


def check_param(where: str, param: object, building: bool = False, elementwise: bool = True) -> None:
    """A parameter must be a dense, contiguous float32/float64 tensor in CPU memory (or float16 and
    bfloat16, stepped in float32: :mod:`fastopt._rounding`). While the optimizer is being built
    (``building``), one on the meta device is accepted, as torch.optim accepts it: deferred
    initialisation materialises it (``module.to_empty(device="cpu")``) before the first step."""
    if not isinstance(param, torch.Tensor):
        raise TypeError(f"{where} must be a torch.Tensor, got {type(param).__name__}")
    if param.device.type == "meta":
        if building:
            return
        raise ValueError(
            f"{where} is on the meta device (it has no data to update): materialise it first, "
            "e.g. module.to_empty(device='cpu') and initialise it"
        )
    if param.device.type != "cpu":
        raise ValueError(
            f"{where} is on device {param.device}; fastopt.torch steps CPU tensors only "
            "(use torch.optim on other devices)"
        )
    if param.layout is not torch.strided:
        raise ValueError(f"{where} has layout {param.layout}; fastopt.torch steps dense tensors only")
    if param.dtype in COMPLEX and not elementwise:
        raise TypeError(f"{where} is complex ({param.dtype}); fastopt.torch steps complex parameters as their real view "
                        "(as torch.optim does) with element-wise optimizers, not one that takes whole tensors")
    if param.dtype not in PARAM_DTYPES:
        if param.dtype == torch.bfloat16:
            raise TypeError(f"{where} has dtype torch.bfloat16, which fastopt.torch steps through ml_dtypes' "
                            "NumPy bfloat16: `pip install ml_dtypes`")
        raise TypeError(
            f"{where} has dtype {param.dtype}; fastopt.torch steps float32, float64, float16, bfloat16, "
            "complex64 and complex128 tensors"
        )
    if not param.is_contiguous() and (not elementwise or memory_order(param) is None):
        layouts = "" if elementwise else ", and this optimizer takes whole tensors in their logical order"
        raise ValueError(
            f"{where} is not contiguous, nor a dense tensor in permuted order (channels_last){layouts}; "
            "fastopt updates parameters in place and never copies them: make it contiguous before "
            "building the optimizer (p.data = p.data.contiguous())"
        )


def _check_grad_layout(where: str, grad: object, layout, refusal: str) -> None:
    """A tensor of ``layout`` on the CPU, or the error that says what it is (``refusal`` for
    another layout)."""
    if not isinstance(grad, torch.Tensor):
        raise TypeError(f"{where}.grad must be a torch.Tensor or None, got {type(grad).__name__}")
    if grad.layout is not layout:
        raise RuntimeError(f"{where}.grad is {grad.layout}: {refusal}")
    if grad.device.type != "cpu":
        raise ValueError(f"{where}.grad is on device {grad.device}; fastopt.torch steps CPU tensors only")


def check_grad(where: str, grad: object, param: torch.Tensor) -> None:
    _check_grad_layout(where, grad, torch.strided, "fastopt.torch does not support sparse gradients")
    if grad.dtype != param.dtype or grad.numel() != param.numel():
        raise ValueError(
            f"{where}.grad has dtype {grad.dtype} and {grad.numel()} elements, but its parameter "
            f"has dtype {param.dtype} and {param.numel()} elements"
        )
    if grad.is_contiguous():
        start, end = tensor_extent(grad)
        p_start, p_end = tensor_extent(param)
        if start < end and p_start < p_end and start < p_end and p_start < end:
            raise ValueError(f"{where}.grad shares memory with its parameter")


def sparse_rows(where: str, grad: object, param: torch.Tensor) -> SparseRows:
    """A sparse COO gradient as the rows of ``param`` it names, for SparseAdam: its indices over
    the sparse dimensions become row numbers of ``param`` seen as (rows, the dense dimensions)."""
    _check_grad_layout(where, grad, torch.sparse_coo, "SparseAdam does not support dense gradients, please consider Adam instead")
    if grad.dtype != param.dtype or grad.shape != param.shape:
        raise ValueError(
            f"{where}.grad has dtype {grad.dtype} and shape {tuple(grad.shape)}, but its parameter has "
            f"dtype {param.dtype} and shape {tuple(param.shape)}"
        )
    sparse_dims = grad.sparse_dim()
    if sparse_dims == 0:
        raise ValueError(f"{where}.grad has no sparse dimension: it names no rows")
    grad = grad.detach().coalesce()  # sorted, each index once (torch.optim.SparseAdam does the same)
    shape = tuple(param.shape)
    rows = np.ravel_multi_index(grad._indices().numpy(), shape[:sparse_dims])
    width = math.prod(shape[sparse_dims:])
    return coalesce(rows, numpy_view(grad._values().contiguous()), width)


def tensor_extent(tensor: torch.Tensor) -> tuple[int, int]:
    start = tensor.data_ptr()
    return start, start + tensor.numel() * tensor.element_size()


def check_disjoint(entries: list) -> None:
    """``entries``: ``(start, end, order, name, owner)`` of every parameter and state buffer, in
    the order they were met (``owner``: the name of the buffer's parameter). No two may share
    memory: the kernels write them in place, element by element."""
    extents = sorted(entry for entry in entries if entry[0] < entry[1])
    for before, after in zip(extents, extents[1:]):
        if after[0] < before[1]:
            first, second = sorted((before, after), key=lambda e: e[2])
            other = "its parameter" if first[3] == second[4] else first[3]
            raise ValueError(f"{second[3]} shares memory with {other}; every parameter and state tensor must own its memory")


def numpy_view(tensor: torch.Tensor, order: tuple[int, ...] = ()) -> np.ndarray:
    """A flat NumPy view of a CPU tensor's elements in memory order (shares its memory; never a
    copy: raises if the tensor is not dense in ``order``, see :func:`memory_order`); a bfloat16
    one through its 16 bits, as ml_dtypes' bfloat16; a complex one as its real view."""
    tensor = real_view(tensor.detach())
    if order:
        tensor = tensor.permute(order)
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(SIXTEEN_BIT[torch.bfloat16]).reshape(-1, copy=False)
    return tensor.numpy().reshape(-1, copy=False)


def as_float(where: str, value: object) -> object:
    """torch accepts a 1-element tensor for ``lr`` (and ``weight_decay``): use its value."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"Tensor {where} must be 1-element")
        return value.item()
    return value


def typed(value: Any) -> Any:
    """A value with its type, for "unchanged since validated" tests: ``0 == False`` and
    ``1 + 0j == 1.0``, but neither passes the check that ``False`` or ``1.0`` passed. A tensor
    (``lr`` may be one) is compared by its values, which may change in place."""
    kind = type(value)
    if kind is float or kind is bool or kind is int or value is None:
        return kind, value
    if kind is tuple or kind is list:
        return kind, tuple(map(typed, value))
    if isinstance(value, torch.Tensor):
        return kind, id(value), value.dtype, tuple(value.shape), value.detach().cpu().tolist()
    return kind, value


def group_betas(group: dict[str, Any]) -> object:
    betas = group["betas"]
    if isinstance(betas, (tuple, list)) and any(isinstance(b, torch.Tensor) for b in betas):
        betas = tuple(as_float("betas", b) for b in betas)
    return betas

