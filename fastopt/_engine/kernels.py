"""The kernels that step one optimizer folder on one backend, per dtype.

* ``single[dtype]``: ``<name>_update`` on one parameter's flat arrays;
* ``parallel(dtype)``: the same on several threads (Numba's ``parallel=True`` twin, made on
  first use; Cython's own kernel takes its thread count);
* ``step_batch(...)``: a whole gathered group in one call (Cython's generated
  ``<name>_update_many``, Numba's :func:`fastopt._jit.many_twin`); the reference has none.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from .. import _backends

_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_LIKE = {dtype: np.empty(0, dtype) for dtype in _DTYPES}  # tells a Numba twin the dtype of a row


def _silence_fp_warnings(kernel):
    """Run a NumPy reference kernel without RuntimeWarnings for overflow, 0/0 and the like.

    The compiled twins follow IEEE arithmetic silently (inf and NaN propagate, as in torch); the
    reference computes the same bits and should not be noisier than them.
    """

    @functools.wraps(kernel)
    def quiet_kernel(*args):
        with np.errstate(all="ignore"):
            kernel(*args)

    return quiet_kernel


def specialise(kernel) -> dict[np.dtype, Any]:
    """The kernel to call per dtype. A Cython fused function is indexed by its C type once here,
    which skips the dispatch on every call (about a microsecond per call on small arrays)."""
    signatures = getattr(kernel, "__signatures__", None)
    if signatures is not None and {"float", "double"} <= set(signatures):
        return {_DTYPES[0]: kernel["float"], _DTYPES[1]: kernel["double"]}
    return dict.fromkeys(_DTYPES, kernel)


class Kernels:
    """The kernels of folder ``folder`` (``"adam"``) on ``backend``, whose kernel takes ``arrays``
    arrays (param, grad, the state slots)."""

    def __init__(self, folder: str, backend: str, arrays: int) -> None:
        self.folder, self.backend, self.arrays = folder, backend, arrays
        kernel = _backends.get_kernel(folder, backend)
        if backend == "reference":
            kernel = _silence_fp_warnings(kernel)
        self.single = specialise(kernel)
        # Cython's typed arguments take a Python float and round it as np.float32(x) does;
        # Numba would compile a float64 variant of the loop instead.
        self.takes_doubles = backend == "cython"
        self.batched = backend in ("cython", "numba")
        self._parallel: dict | None = None
        self._many: dict | None = None

    def parallel(self, dtype: np.dtype):
        """The kernel that runs one call on several threads."""
        if self._parallel is None:
            kernel = _backends.get_kernel(self.folder, self.backend, parallel=True)
            if self.backend == "reference":
                kernel = _silence_fp_warnings(kernel)
            self._parallel = specialise(kernel)
        return self._parallel[dtype]

    def step_batch(self, dtype: np.dtype, batch, scalars: tuple, num_threads: int, min_size: int) -> None:
        """Every row of a gathered ``batch`` (a :class:`fastopt._native.batch.Batch`) in one call;
        Cython splits the rows of at least ``min_size`` elements across ``num_threads`` threads
        (the engine sends a group with such rows to Numba's per-parameter path instead)."""
        many = self._many
        if many is None:
            many = self._many = specialise(_backends.get_kernel(self.folder, self.backend, many=True, arrays=self.arrays))
        if self.takes_doubles:  # Cython
            many[dtype](batch, *scalars, num_threads, min_size)
        else:
            many[dtype](batch.table, batch.row_sizes, _LIKE[dtype], (*scalars, 1))


@functools.cache
def kernels_for(folder: str, backend: str, arrays: int) -> Kernels:
    """One :class:`Kernels` per folder and backend in a process (they hold no state of a step)."""
    return Kernels(folder, backend, arrays)
