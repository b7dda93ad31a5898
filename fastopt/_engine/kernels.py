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

from .. import _backends, _rounding

FLOAT32 = np.dtype(np.float32)
_DTYPES = (FLOAT32, np.dtype(np.float64))
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

    @functools.cached_property
    def sixteen(self) -> Sixteen:
        """The steps of float16 and bfloat16 parameters (see :class:`Sixteen`)."""
        return Sixteen(self)

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


class Sixteen:
    """The steps of 16-bit parameters (:mod:`fastopt._rounding`) of folder ``folder`` on
    ``backend``, all of them the float32 kernel's arithmetic with one rounding per element:

    * ``step(param, grad, buffers, scalars, threads)``: float16/bfloat16 ``param`` and ``grad``
      (flat), float32 ``buffers``, in place;
    * ``step_copy(param, grad, buffers, scalars, copy, threads)``: float32 master weights
      ``param`` stepped in place, their 16-bit ``copy`` written in the same pass;
    * ``widen(values)`` / ``narrow(values, out)``: the backend's own conversions on whole arrays,
      for the kernels that take a whole tensor (widened, stepped, rounded back).
    """

    def __init__(self, kernels: Kernels) -> None:
        self.kernels = kernels
        folder, backend = kernels.folder, kernels.backend
        self.backend = backend
        self._module = _backends.get_kernel_module(folder, backend) if backend == "cython" else None
        self._twins: dict = {}

    def _numba_twin(self, copy: bool, threads: int):
        import numba

        from .. import _jit

        parallel = threads > 1
        twin = self._twins.get((copy, parallel))
        if twin is None:
            kernel = _backends.get_kernel(self.kernels.folder, "numba")
            twin = self._twins[(copy, parallel)] = _jit.narrow_twin(kernel, self.kernels.arrays, copy, parallel)
        if parallel:
            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        return twin

    def step(self, param, grad, buffers, scalars, threads: int) -> None:
        storage = _rounding.storage_code(param.dtype)
        if self.backend == "reference":
            _rounding.step_in_float32(self.kernels.single[FLOAT32], param, grad, buffers, scalars, threads)
        elif self.backend == "cython":
            update = getattr(self._module, f"{self.kernels.folder}_update_narrow")
            update(param.view(np.uint16), grad.view(np.uint16), *buffers, *scalars, storage, threads)
        else:
            twin = self._numba_twin(False, threads)
            twin(param.view(np.uint16), grad.view(np.uint16), tuple(buffers), (*scalars, 1), storage, threads)

    def kernel(self, buffers: int):
        """:meth:`step` with a kernel's signature ``(param, grad, *buffers, *scalars, threads)``,
        for a kernel taking ``buffers`` state arrays."""

        def sixteen_bit_kernel(param, grad, *arguments):
            self.step(param, grad, arguments[:buffers], arguments[buffers:-1], arguments[-1])

        return sixteen_bit_kernel

    def step_copy(self, param, grad, buffers, scalars, copy, threads: int) -> None:
        storage = _rounding.storage_code(copy.dtype)
        if self.backend == "reference":
            self.kernels.single[FLOAT32](param, grad, *buffers, *scalars, threads)
            _rounding.narrow(param, copy)
        elif self.backend == "cython":
            update = getattr(self._module, f"{self.kernels.folder}_update_copy")
            update(param, grad, *buffers, *scalars, copy.view(np.uint16), storage, threads)
        else:
            twin = self._numba_twin(True, threads)
            twin(param, grad, tuple(buffers), (*scalars, 1), copy.view(np.uint16), storage, threads)

    def widen(self, values: np.ndarray) -> np.ndarray:
        if self.backend == "reference":
            return _rounding.widen(values)
        wide = np.empty(values.shape, np.float32)
        _conversions(self.backend)[0](values.reshape(-1).view(np.uint16), wide.reshape(-1), _rounding.storage_code(values.dtype))
        return wide

    def narrow(self, values: np.ndarray, out: np.ndarray) -> None:
        if self.backend == "reference":
            _rounding.narrow(values, out)
        else:
            _conversions(self.backend)[1](values.reshape(-1), out.reshape(-1).view(np.uint16), _rounding.storage_code(out.dtype))


@functools.cache
def _conversions(backend: str) -> tuple:
    """``(widen, narrow)`` on whole flat arrays, as the compiled backend writes them (Cython: the
    build of ``fastopt._rounding.rounding`` for the best instruction set this CPU runs, as for
    the kernels; the baseline build's loops do not vectorise, 2-4x slower)."""
    if backend == "cython":
        rounding = _backends.import_best_cython_build("fastopt._rounding.rounding")
        return rounding.widen, rounding.narrow
    from .. import _jit
    from .._rounding import _numba

    return _jit.jit_kernel(_numba.widen_block), _jit.jit_kernel(_numba.narrow_block)


@functools.cache
def kernels_for(folder: str, backend: str, arrays: int) -> Kernels:
    """One :class:`Kernels` per folder and backend in a process (they hold no state of a step)."""
    return Kernels(folder, backend, arrays)
