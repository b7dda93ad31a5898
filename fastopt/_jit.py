"""The one place that says how fastopt compiles its Numba kernels, and their two twins.

* ``nogil=True``: kernels release the GIL, so two threads can step two optimizers at once.
* ``error_model="numpy"``: division follows IEEE (inf/NaN) instead of raising
  ``ZeroDivisionError``; the Python error model adds a branch to every ``/`` and stops LLVM from
  vectorising the loop.
* no ``fastmath``: it would let LLVM reassociate and contract ``a*b + c`` into FMA, and the
  kernels would no longer agree bit for bit with the NumPy reference.
* ``cache=True`` where a cache location is writable; Numba raises ``RuntimeError`` at decoration
  time when none is (read-only site-packages and HOME), and then we compile in memory instead.
  ``FASTOPT_NUMBA_CACHE=0`` turns the disk cache off.

Each ``fastopt/<name>/_numba.py`` holds one kernel, ``<name>_update``, and nothing else. Made from
it when first asked for (by :mod:`fastopt._backends`):

* :func:`parallel_twin`: the same source compiled with ``parallel=True``, so that its ``prange``
  splits the loop across threads;
* :func:`many_twin`: a whole parameter group in one call, over the data pointers that
  :class:`fastopt._native.batch.Batch` gathered and checked (its ``table``), calling the kernel
  once per row from compiled code (a call from Python costs a microsecond or two, mostly in
  checking the types of its arguments; from compiled code, a few nanoseconds).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import types as pytypes

import numba
from numba import types
from numba.extending import intrinsic, overload, register_jitable

import numpy as np

from . import _checks
from ._rounding import BLOCK
from ._rounding._numba import narrow_block, widen_block

KERNEL_OPTIONS = {"nogil": True, "error_model": "numpy"}


def jit_kernel(function):
    """Compile an element-loop kernel with fastopt's Numba options (see the module docstring)."""
    if os.environ.get("FASTOPT_NUMBA_CACHE", "1") != "0":
        try:
            return numba.njit(cache=True, **KERNEL_OPTIONS)(function)
        except RuntimeError:  # "cannot cache function ...: no locator available"
            pass
    return numba.njit(**KERNEL_OPTIONS)(function)


def parallel_twin(kernel):
    """The same loop compiled with ``parallel=True``, so that its ``prange`` runs on threads.

    Not cached on disk: it shares its source (and so its cache key) with the serial kernel, and
    it is only compiled when someone asks for threads (see :func:`fastopt.set_num_threads`).
    Every element is still computed by the same operations, so the result is the same.
    """
    return numba.njit(parallel=True, **KERNEL_OPTIONS)(kernel.py_func)


_require_length = register_jitable(_checks.require_length)
require_size = register_jitable(_checks.require_size)
require_matrices = register_jitable(_checks.require_matrices)
# The kernels call fastopt._checks.require_lengths, the reference's own function; inside compiled
# code it is the overload below.
require_lengths = _checks.require_lengths


@overload(_checks.require_lengths)
def _require_lengths(kernel, param, names, arrays):
    """The compiled twin, written out when the kernel is compiled: one check per array, its name
    and its index constants (splitting a string in compiled code costs seconds of compilation,
    and the arrays' tuple cannot be indexed by a loop variable: a read-only gradient is another
    type than the state arrays)."""
    if not isinstance(names, types.StringLiteral):
        raise numba.core.errors.TypingError("require_lengths: names must be a string literal")
    labels = names.literal_value.split()
    if len(labels) != len(arrays):
        raise numba.core.errors.TypingError(f"require_lengths: {len(labels)} names for {len(arrays)} arrays")
    lines = [f"    _require_length(kernel, {label!r}, arrays[{position}].shape[0], param.shape[0])"
             for position, label in enumerate(labels)]
    namespace = {"_require_length": _require_length}
    exec("def check(kernel, param, names, arrays):\n" + "\n".join(lines), namespace)
    return namespace["check"]


@intrinsic
def _pointer(typingctx, address, like):
    """``address`` (an integer) as a pointer to elements of ``like``'s dtype."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return types.CPointer(like.dtype)(address, like), codegen


@register_jitable
def _row_array(table, row, column, size, like):
    """The array at ``table[row, column]`` (a Batch row: param, grad, then the state slots), of
    ``size`` elements; an unused slot (address 0) is an empty array, as the kernels expect."""
    address = table[row, column]
    return numba.carray(_pointer(address, like), size if address != 0 else 0)


def _row_arrays(table, row, size, like, count):
    """The first ``count`` arrays of a Batch row, as a tuple (compiled code only: see below)."""
    raise NotImplementedError("compiled code only")


@overload(_row_arrays)
def _row_arrays_overload(table, row, size, like, count):
    """Written out when the twin is compiled, for its kernel's constant number of arrays."""
    if not isinstance(count, types.IntegerLiteral):
        raise numba.core.errors.TypingError("_row_arrays: count must be a constant")
    items = ", ".join(f"_row_array(table, row, {column}, size, like)" for column in range(count.literal_value))
    namespace = {"_row_array": _row_array}
    exec(f"def rows(table, row, size, like, count):\n    return ({items},)", namespace)
    return namespace["rows"]


def _update_many(table, sizes, like, scalars):
    """The multi-tensor twin's body; ``KERNEL`` and ``ARRAYS`` are globals of each copy made by
    :func:`many_twin` (see there)."""
    for k in range(sizes.shape[0]):
        n = sizes[k]
        if n > 0:
            KERNEL(*_row_arrays(table, k, n, like, ARRAYS), *scalars)  # noqa: F821


def _update_narrow(param_bits, grad_bits, states, scalars, storage, parts):
    """The 16-bit twin's body (see :func:`narrow_twin`): ``parts`` chunks of whole blocks, each
    block widened to float32, stepped by ``KERNEL``, its new values rounded once."""
    n = param_bits.shape[0]
    chunk = ((n + parts - 1) // parts + BLOCK - 1) // BLOCK * BLOCK
    for part in numba.prange(parts):
        wide_param = np.empty(BLOCK, np.float32)
        wide_grad = np.empty(BLOCK, np.float32)
        for start in range(part * chunk, min(n, part * chunk + chunk), BLOCK):
            stop = min(n, start + BLOCK)
            size = stop - start
            widen_block(param_bits[start:stop], wide_param[:size], storage)
            widen_block(grad_bits[start:stop], wide_grad[:size], storage)
            KERNEL(wide_param[:size], wide_grad[:size], *_chunks(states, start, stop, STATES), *scalars)  # noqa: F821
            narrow_block(wide_param[:size], param_bits[start:stop], storage)


def _update_copy(param, grad, states, scalars, copy_bits, storage, parts):
    """The master-weights twin's body (see :func:`narrow_twin`): ``param`` (float32) stepped in
    place a block at a time, each block rounded into ``copy_bits`` while it is in cache."""
    n = param.shape[0]
    chunk = ((n + parts - 1) // parts + BLOCK - 1) // BLOCK * BLOCK
    for part in numba.prange(parts):
        for start in range(part * chunk, min(n, part * chunk + chunk), BLOCK):
            stop = min(n, start + BLOCK)
            KERNEL(param[start:stop], grad[start:stop], *_chunks(states, start, stop, STATES), *scalars)  # noqa: F821
            narrow_block(param[start:stop], copy_bits[start:stop], storage)


def _chunks(states, start, stop, count):
    """``states[k][start:stop]`` for the ``count`` state arrays (compiled code only)."""
    raise NotImplementedError("compiled code only")


@overload(_chunks)
def _chunks_overload(states, start, stop, count):
    """Written out for the kernel's constant number of state arrays (an unused one is empty, and
    so is its chunk)."""
    if not isinstance(count, types.IntegerLiteral):
        raise numba.core.errors.TypingError("_chunks: count must be a constant")
    items = "".join(f"states[{k}][start:stop], " for k in range(count.literal_value))
    namespace: dict = {}
    exec(f"def chunks(states, start, stop, count):\n    return ({items})", namespace)
    return namespace["chunks"]


def narrow_twin(kernel, arrays: int, copy: bool, parallel: bool):
    """The kernel for 16-bit parameters (:mod:`fastopt._rounding`), ``copy=False``::

        update_narrow(param_bits, grad_bits, states, scalars, storage, parts)

    param and grad as uint16 arrays, ``states`` the float32 state arrays as a tuple, ``scalars``
    the kernel's float32 scalars with its thread count (1) last, ``storage`` the 16-bit format's
    code, ``parts`` the number of chunks (threads, with ``parallel=True``). With ``copy=True``,
    the master-weights step: ``update_copy(param, grad, states, scalars, copy_bits, storage,
    parts)``. Made as :func:`many_twin` makes its copy (cached on disk unless ``parallel``).
    """
    body = _update_copy if copy else _update_narrow
    # the name holds the kernel's source and the conversions' (Numba's cache checks only the
    # timestamp of this file, which does not change when fastopt/_rounding/_numba.py does)
    from ._rounding import _numba as conversions

    text = inspect.getsource(kernel.py_func) + inspect.getsource(conversions)
    source = hashlib.sha256(text.encode()).hexdigest()[:12]
    namespace = {**body.__globals__, "KERNEL": kernel, "STATES": arrays - 2}
    twin = pytypes.FunctionType(body.__code__, namespace, body.__name__.lstrip("_"))
    twin.__qualname__ = f"{twin.__name__}_{kernel.__name__}_{source}"
    twin.__module__ = __name__
    if parallel:
        return numba.njit(parallel=True, **KERNEL_OPTIONS)(twin)
    return jit_kernel(twin)


def many_twin(kernel, arrays: int):
    """``update_many(table, sizes, like, scalars)``: ``kernel(*row_arrays, *scalars)`` on every
    row of a gathered Batch (its ``table`` and ``row_sizes``; ``like`` is an empty array of the
    dtype; ``scalars`` the kernel's scalar arguments, its thread count last, as one tuple: Numba
    dispatches a call with ``*args`` in Python, some 80 µs slower). ``arrays`` is the kernel's
    number of array arguments: param, grad and its state slots. It runs on the calling thread; a
    group with a row to split across threads takes the per-parameter path, which has the
    ``parallel=True`` twin.

    A copy of :func:`_update_many` whose globals hold the kernel, and whose name holds the kernel's
    name and a hash of its source: Numba caches it on disk under that name (a closure over the
    kernel would be compiled again in every process, half a second per kernel and dtype), and a
    kernel edited is a new name, not a stale cache entry.
    """
    source = hashlib.sha256(inspect.getsource(kernel.py_func).encode()).hexdigest()[:12]
    namespace = {**_update_many.__globals__, "KERNEL": kernel, "ARRAYS": arrays}
    update_many = pytypes.FunctionType(_update_many.__code__, namespace, "update_many")
    update_many.__qualname__ = f"update_many_{kernel.__name__}_{source}"
    update_many.__module__ = __name__
    return jit_kernel(update_many)
