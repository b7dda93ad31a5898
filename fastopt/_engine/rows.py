"""Sparse gradients: the rows of a parameter a gradient names, stepped by an element-wise kernel.

SparseAdam's gradient names some rows of its parameter (an embedding table's looked-up words) and
leaves the others alone: their weights and moments do not change. The step engine steps such a
gradient in three moves: the rows it names are **gathered** (copied) from the parameter and its
state arrays into contiguous arrays, the optimizer's element-wise kernel steps those (the same
three twins, the same bits, as for a dense gradient), and the rows are **written back**. The
copies cost two passes over the named rows, nothing over the rest; every check is made before
anything is gathered, so a step is still applied whole or not at all.

A gradient is given as ``(indices, values)``: ``indices`` the row numbers (along the parameter's
first axis), ``values`` one row of gradient per index. A row named twice gets the sum of its
values, as torch's ``coalesce`` does (added in the order given).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SparseRows:
    """A checked sparse gradient: ``rows`` (sorted, unique, ``intp``), ``values`` (C-contiguous,
    ``len(rows) * width`` elements of the parameter's dtype, row after row) and ``width`` (the
    elements per row)."""

    rows: np.ndarray
    values: np.ndarray
    width: int


def coalesce(rows: np.ndarray, values: np.ndarray, width: int) -> SparseRows:
    """Sorted unique rows, the values of a repeated row added in the order given."""
    values = values.reshape(len(rows), width)
    if len(rows) > 1 and not np.all(rows[1:] > rows[:-1]):
        unique, inverse = np.unique(rows, return_inverse=True)
        summed = np.zeros((len(unique), width), values.dtype)
        with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN as IEEE says, without warnings
            np.add.at(summed, inverse, values)  # in index order: a row's values are added first to last
        rows, values = unique, summed
    return SparseRows(np.ascontiguousarray(rows, np.intp), np.ascontiguousarray(values).reshape(-1), width)


def check_sparse_grad(index: int, grad: object, param: np.ndarray) -> SparseRows | None:
    """``grads[index]`` for a parameter stepped by rows: ``None`` or ``(indices, values)``."""
    where = f"grads[{index}]"
    if grad is None:
        return None
    if isinstance(grad, np.ndarray):
        raise TypeError(
            f"{where} is a dense array: SparseAdam takes sparse gradients, (indices, values) with the rows "
            f"of params[{index}] that have a gradient (use Adam for dense gradients)"
        )
    if not isinstance(grad, (tuple, list)) or len(grad) != 2:
        raise TypeError(f"{where} must be None or a pair (indices, values), got {type(grad).__name__}")
    indices, values = grad
    if param.ndim == 0:
        raise ValueError(f"params[{index}] is 0-d: a sparse gradient names rows along a first axis")
    if not isinstance(indices, np.ndarray) or indices.dtype.kind not in "iu" or indices.ndim != 1:
        raise TypeError(
            f"{where}[0] (indices) must be a 1-D numpy array of integers, got "
            + (f"{indices.ndim}-D {indices.dtype}" if isinstance(indices, np.ndarray) else type(indices).__name__)
        )
    if not isinstance(values, np.ndarray):
        raise TypeError(f"{where}[1] (values) must be a numpy.ndarray, got {type(values).__name__}")
    if values.dtype != param.dtype:
        raise TypeError(f"{where}[1] (values) has dtype {values.dtype} but params[{index}] has dtype {param.dtype}")
    expected = (len(indices), *param.shape[1:])
    if values.shape != expected:
        raise ValueError(
            f"{where}[1] (values) has shape {values.shape}; {len(indices)} indices of params[{index}] "
            f"(shape {param.shape}) need shape {expected}"
        )
    n_rows = param.shape[0]
    if len(indices) and not (0 <= int(indices.min()) and int(indices.max()) < n_rows):
        bad = indices[(indices < 0) | (indices >= n_rows)][0]
        raise ValueError(f"{where}[0] (indices) holds {bad}, outside params[{index}]'s {n_rows} rows")
    if values.size and np.may_share_memory(values, param):
        raise ValueError(f"{where}[1] (values) shares memory with params[{index}]; pass it in its own array")
    width = param.size // n_rows if n_rows else 0
    return coalesce(indices, values, width)


def step_rows(kernel, param: np.ndarray, grad: SparseRows, buffers: tuple, scalars: tuple, threads: int) -> None:
    """Gather the rows ``grad`` names from the flat ``param`` and ``buffers``, step them with
    ``kernel``, write them back (see the module docstring)."""
    rows, width = grad.rows, grad.width
    if not len(rows) or not width:  # nothing named, or rows of no elements
        return
    # an unused state slot (empty: SGD's momentum buffer without momentum) is passed as it is
    tables = [array.reshape(-1, width) if array.size else None for array in (param, *buffers)]
    gathered = [table[rows] if table is not None else array for table, array in zip(tables, (param, *buffers))]  # copies
    param_rows, *state_rows = (block.reshape(-1) for block in gathered)
    kernel(param_rows, grad.values, *state_rows, *scalars, threads)
    for table, block in zip(tables, gathered):  # written back
        if table is not None:
            table[rows] = block


def every_row(grads: list) -> list:
    """Dense gradients as sparse ones that name every row (``None`` stays): to run SparseAdam on a
    problem whose gradients are dense (the tour, the demo), where it then steps as Adam would,
    with torch's rounding of SparseAdam."""
    return [None if grad is None else (np.arange(grad.shape[0]), grad) for grad in grads]
