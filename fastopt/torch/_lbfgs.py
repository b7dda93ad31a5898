"""``fastopt.torch.LBFGS``: torch.optim.LBFGS's signature, closure and state, stepped by fastopt's
L-BFGS (:mod:`fastopt.lbfgs`: the control flow written once, the vector kernels of a backend).

The closure is torch's: it re-evaluates the model, calls ``backward`` and returns the loss (it
runs with gradients enabled, as in torch). The parameters are read and moved through NumPy
views of their memory; the state lives under the first parameter, with torch's keys and types
(``d``, ``prev_flat_grad``, ``old_dirs``, ``old_stps``: tensors; ``ro``, ``al``, ``H_diag``: 0-d
tensors, ``H_diag`` the int 1 until a pair is kept; ``t``, ``prev_loss``: floats), so a state
dict saved by torch.optim.LBFGS loads here and the other way round.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import torch

from fastopt import _backends
from fastopt import lbfgs as _lbfgs
from fastopt._threads import one_at_a_time

from ._tensors import DTYPES, as_float, check_disjoint, check_grad, check_param, numpy_view, tensor_extent


class _Tensors(_lbfgs.Front):
    """:class:`fastopt.lbfgs.Front` over tensors: torch's closure, gradients in ``.grad``."""

    def __init__(self, params: list[torch.Tensor], closure, kernels) -> None:
        super().__init__(params, [numpy_view(p) for p in params], closure, kernels)

    def evaluate(self) -> tuple[Any, float, np.ndarray]:
        with torch.enable_grad():
            loss = self.closure()
        value = float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss)
        flat_grad = np.zeros(self.offsets[-1], self.dtype)  # a parameter without .grad counts as zero
        grads = []
        for i, p in enumerate(self.params):  # every gradient checked before any is copied
            grad = p.grad
            if grad is not None:
                if grad.is_sparse:
                    grad = grad.to_dense()
                check_grad(f"params[{i}]", grad, p)
            grads.append(grad)
        for i, grad in enumerate(grads):
            if grad is not None:
                flat_grad[self.offsets[i]:self.offsets[i + 1]] = grad.detach().reshape(-1).numpy()
        return loss, value, flat_grad


class LBFGS(torch.optim.Optimizer):
    """torch.optim.LBFGS, stepped by fastopt's L-BFGS (maths in :mod:`fastopt.lbfgs`).

    Same signature, defaults, closure convention and state as ``torch.optim.LBFGS`` (one parameter
    group; ``lr``, ``max_iter``, ``max_eval`` = ``max_iter * 5 // 4`` when None,
    ``tolerance_grad``, ``tolerance_change``, ``history_size``, ``line_search_fn`` None or
    ``"strong_wolfe"``), plus ``backend``. Parameters are dense, contiguous CPU float32 or float64
    tensors of one dtype. Invalid hyperparameters are rejected when built (torch lets
    ``line_search_fn="x"`` fail at the first step); a step whose closure raises, or leaves an
    invalid ``.grad``, restores the parameters and leaves the state as it was.
    """

    def __init__(self, params, lr=1, max_iter=20, max_eval=None, tolerance_grad=1e-7, tolerance_change=1e-9,
                 history_size=100, line_search_fn=None, *, backend="auto"):
        if isinstance(lr, torch.Tensor) and lr.numel() != 1:
            raise ValueError("Tensor lr must be 1-element")
        max_eval = _lbfgs.default_max_eval(max_iter, max_eval)
        defaults = dict(lr=lr, max_iter=max_iter, max_eval=max_eval, tolerance_grad=tolerance_grad,
                        tolerance_change=tolerance_change, history_size=history_size, line_search_fn=line_search_fn)
        _lbfgs.check_hyperparameters({**defaults, "lr": as_float("lr", lr)})
        self.backend = _backends.resolve_backend(backend)
        self._kernels = _backends._load_module("lbfgs", self.backend)
        self._lock = threading.RLock()  # one step (or checkpoint) at a time: _threads.one_at_a_time
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        self._params = self.param_groups[0]["params"]
        self._check_params()

    def _check_params(self) -> None:
        params = self.param_groups[0]["params"]
        for i, p in enumerate(params):
            check_param(f"params[{i}]", p)
            if p.dtype not in DTYPES:  # its dot products and line search are in the parameters' dtype
                raise TypeError(f"params[{i}] has dtype {p.dtype}; LBFGS steps float32 and float64 tensors only "
                                "(keep float32 master weights and step those)")
            if p.dtype != params[0].dtype:
                raise TypeError(f"params[{i}] has dtype {p.dtype} but params[0] has dtype {params[0].dtype}: "
                                "L-BFGS steps them as one vector of one dtype")
        check_disjoint([(*tensor_extent(p), i, f"params[{i}]", None) for i, p in enumerate(params)])

    @one_at_a_time
    @torch.no_grad()
    def step(self, closure):  # type: ignore[override]
        """Up to ``max_iter`` iterations; returns the loss of the closure's first call."""
        if not callable(closure):
            raise TypeError(f"closure must be callable (it re-evaluates the model and returns the loss), "
                            f"got {type(closure).__name__}")
        if len(self.param_groups) != 1:
            raise ValueError("LBFGS doesn't support per-parameter options (parameter groups)")
        group = dict(self.param_groups[0])
        group["lr"] = as_float("lr", group["lr"])
        _lbfgs.check_hyperparameters(group)
        self._check_params()
        params = group["params"]
        state = self.state[params[0]]
        arrays = _as_arrays(state, [numpy_view(p) for p in params], group["history_size"])
        loss = _lbfgs.lbfgs_step(_Tensors(params, closure, self._kernels), self._kernels, group, arrays)
        state.update(_as_tensors(arrays))
        return loss

    @one_at_a_time
    def state_dict(self) -> dict[str, Any]:
        """torch's ``state_dict``, taken between steps (never half-way through one)."""
        return super().state_dict()

    @one_at_a_time
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """torch's ``load_state_dict``, between steps."""
        super().load_state_dict(state_dict)


def _as_arrays(state: dict[str, Any], flat_params: list[np.ndarray], history_size: int) -> dict[str, Any]:
    """torch's state as :func:`fastopt.lbfgs.lbfgs_step` keeps it: NumPy views of the tensors
    (never written: each iteration makes new vectors), scalars as floats; then checked."""

    def array(key: str, value: object) -> object:
        if isinstance(value, torch.Tensor):
            if value.device.type != "cpu" or value.layout is not torch.strided or not value.is_contiguous():
                raise ValueError(f"state[{key!r}] must be a contiguous CPU tensor")
            return value.detach().numpy()
        return value

    def scalar(value: object) -> object:
        return value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value

    arrays: dict[str, Any] = {}
    for key, value in state.items():
        if key in ("d", "prev_flat_grad"):
            arrays[key] = array(key, value)
        elif key in ("old_dirs", "old_stps") and isinstance(value, list):
            arrays[key] = [array(f"{key}[{i}]", v) for i, v in enumerate(value)]
        elif key in ("ro", "al") and isinstance(value, list):
            arrays[key] = [scalar(v) for v in value]
        elif key == "H_diag" and isinstance(value, torch.Tensor):
            arrays[key] = scalar(value)
        else:
            arrays[key] = scalar(value)
    _lbfgs._check_state(arrays, flat_params, history_size)
    return arrays


def _as_tensors(arrays: dict[str, Any]) -> dict[str, Any]:
    """The step's state in torch's types: tensors over the step's arrays, 0-d tensors for scalars."""

    def scalar(value: object) -> object:
        return None if value is None else torch.from_numpy(np.array(value))

    state = dict(arrays)
    for key in ("d", "prev_flat_grad"):
        if key in state:
            state[key] = torch.from_numpy(state[key])
    for key in ("old_dirs", "old_stps"):
        if key in state:
            state[key] = [torch.from_numpy(v) for v in state[key]]
    for key in ("ro", "al"):
        if key in state:
            state[key] = [scalar(v) for v in state[key]]
    if "H_diag" in state and not isinstance(state["H_diag"], int):
        state["H_diag"] = scalar(state["H_diag"])
    return state
