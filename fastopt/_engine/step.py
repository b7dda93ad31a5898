"""The step: validated plans, then one kernel call per group, or one per parameter.

:meth:`Engine.step` runs one optimizer step for a front end (``fastopt.Optimizer`` on NumPy
arrays, the optimizers of ``fastopt.torch`` on tensors), in two ways that give the same bits:

* **the fast path** (Cython and Numba): each group is *gathered*: every parameter, gradient and
  state array checked in C and its address recorded in a :class:`fastopt._native.batch.Batch`,
  with the counters (``step``...) of every parameter that steps equal. Only when every group has
  been gathered are the counters advanced and the kernels run, one call per group, so a step is
  applied whole or not at all. A front end declines a group (returns None) for anything the
  gather will not vouch for: a first step (the state must be created), a new buffer, a
  non-contiguous gradient, diverging counters, or an error to report;
* **the careful path**: every check with its message first (a rejected step changes nothing),
  then per parameter: create the state it lacks, advance its counters, one kernel call (on the
  rows a sparse gradient names, gathered and written back: :mod:`.rows`; on one thread, with the
  parameter's shape, for an algorithm whose kernel takes whole tensors, e.g. Adafactor's norms,
  and the scratch arrays its ``workspace`` makes, e.g. Muon's Newton-Schulz matrices).

What differs between NumPy arrays and tensors (how a state buffer is allocated, how a counter is
stored, what the messages say) is the front end's; the order of events, the scalars and the
kernels are here, once. ``inputs`` is what the front end's step was given (NumPy: the gradients), handed back as it is.
A front end provides::

    gather(inputs, index, plan, batch) -> (dtype, counters) | EMPTY | None
    commit(batch, plan, counters) -> None          # write the advanced counters
    check(inputs, plans) -> [(plan, item), ...]    # the careful path's checks, all of them
    prepare(plan, item) -> (param, grad, buffers, counters, created)
    finish(plan, item, counters) -> None
    shape(item) -> tuple                           # the parameter's shape (whole-tensor kernels)
    copy_of(item) -> array | None                  # where to write float32 master weights' 16-bit copy
"""

from __future__ import annotations

from typing import Any

from .. import _threads
from .._rounding import state_dtype
from .rows import SparseRows, step_rows

EMPTY = object()
"""What a front end's ``gather`` returns for a group in which no parameter has a gradient."""


class Engine:
    """The step machinery of one optimizer (it keeps one reusable Batch per group)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.batched = backend in ("cython", "numba") and _batches_available()
        self._batches: list = []

    def step(self, plans: list, front: Any, inputs: Any = None) -> None:
        """One step of every group (see the module docstring)."""
        if not (self.batched and self._step_batched(plans, front, inputs)):
            self._step_careful(plans, front, inputs)

    def _step_batched(self, plans: list, front: Any, inputs: Any) -> bool:
        """The fast path; False, having changed nothing, when any group needs the careful one."""
        num_threads, min_size = _threads._num_threads, _threads._min_size
        batches = self._batches
        if len(batches) < len(plans):
            from .._native.batch import Batch

            batches.extend(Batch() for _ in range(len(plans) - len(batches)))
        work = []
        try:
            for index, plan in enumerate(plans):
                if plan.algorithm.sparse or plan.algorithm.whole_tensor:
                    return False  # rows gathered, or whole tensors with their shapes: the careful path
                batch = batches[index]
                gathered = front.gather(inputs, index, plan, batch)
                if gathered is None:
                    return False
                if gathered is EMPTY:
                    continue
                dtype, counters = gathered
                if num_threads > 1 and self.backend == "numba" and _has_row_to_split(batch, min_size):
                    return False  # Numba's twin for threads is per parameter
                key = plan.algorithm.advance(plan.group, counters, ())
                work.append((plan, batch, dtype, counters, plan.scalars(key, dtype)))
            # Every group is fit: advance the counters and compute (nothing below can fail).
            for plan, batch, dtype, counters, scalars in work:
                front.commit(batch, plan, counters)
                plan.kernels.step_batch(dtype, batch, scalars, num_threads, min_size)
            return True
        finally:
            for batch in batches[: len(plans)]:  # let go of this step's arrays
                batch.release()

    def _step_careful(self, plans: list, front: Any, inputs: Any) -> None:
        """Every check first (the front end's ``check``), then parameter by parameter."""
        work = front.check(inputs, plans)
        # Everything is valid: from here on nothing raises, so a step is applied whole or not at all.
        threads_for = _threads.threads_for
        for plan, item in work:
            param, grad, buffers, counters, created = front.prepare(plan, item)
            key = plan.algorithm.advance(plan.group, counters, created)
            front.finish(plan, item, counters)
            dtype = state_dtype(param.dtype)  # the arithmetic's: float32 for a 16-bit parameter
            sixteen = dtype is not param.dtype
            scalars = plan.scalars(key, dtype)
            kernels = plan.kernels
            copy = front.copy_of(item)  # float32 master weights' 16-bit copy, written by this step
            if plan.algorithm.whole_tensor:  # one call on one thread: sums in one order (fastopt._sums)
                if param.size:  # a parameter with no elements has nothing to scale (torch raises)
                    shape = front.shape(item)
                    scratch = plan.algorithm.workspace(shape, dtype)
                    arguments = plan.algorithm.shape_arguments(shape)
                    if sixteen:  # widened whole, stepped, rounded back once (fastopt._rounding)
                        wide_param = kernels.sixteen.widen(param)
                        kernels.single[dtype](wide_param, kernels.sixteen.widen(grad), *buffers, *scratch, *arguments, *scalars, 1)
                        kernels.sixteen.narrow(wide_param, param)
                    else:
                        kernels.single[dtype](param, grad, *buffers, *scratch, *arguments, *scalars, 1)
                    if copy is not None:
                        kernels.sixteen.narrow(param, copy)
                continue
            sparse = type(grad) is SparseRows
            threads = threads_for(grad.values.size if sparse else param.size)
            if sixteen:  # a block at a time, widened, stepped, rounded back (fastopt._rounding)
                kernel = kernels.sixteen.kernel(len(buffers))
            else:
                kernel = kernels.single[dtype] if threads == 1 else kernels.parallel(dtype)
            if sparse:  # the rows it names: gathered, stepped, written back
                step_rows(kernel, param, grad, buffers, scalars, threads)
                if copy is not None:
                    kernels.sixteen.narrow(param, copy)
            elif copy is not None:  # the step and the rounded copy in one pass
                kernels.sixteen.step_copy(param, grad, buffers, scalars, copy, threads)
            else:
                kernel(param, grad, *buffers, *scalars, threads)


def _has_row_to_split(batch, min_size: int) -> bool:
    sizes = batch.row_sizes
    return sizes.size > 0 and int(sizes.max()) >= min_size


def _batches_available() -> bool:
    """Is the multi-tensor gather built (the Cython extension ``fastopt._native.batch``)?"""
    try:
        from .._native import batch  # noqa: F401
    except ImportError:
        return False
    return True
