"""Memory of one kernel call: the compiled twins allocate no temporaries, the NumPy reference does.

The NumPy reference evaluates ``beta1 * exp_avg + one_minus_beta1 * d`` as whole-array
expressions, and every intermediate is a temporary array as large as the parameter. The Numba and
Cython loops keep intermediates in registers. Three views of the same fact, one class per
optimizer, at 33,554,432 elements (128 MiB per float32 array, so temporaries dwarf the interpreter,
NumPy and Numba themselves):

* ``peakmem_kernel``: the process's peak resident memory after setup and one kernel call;
* ``peakmem_baseline``: the same setup without the call. ``peakmem_kernel - peakmem_baseline`` is
  what the call added (compare within a backend: importing Numba alone adds tens of MB);
* ``track_temporary_bytes``: the peak of memory allocated *during* one call, as traced by Python's
  ``tracemalloc`` (NumPy reports its array buffers to it): a few hundred bytes of Python objects
  for the compiled twins, a few multiples of ``size * itemsize`` for the reference.
"""

import tracemalloc

from .common import BACKENDS, DTYPES, kernel_problem

MEMORY_SIZES = [33_554_432]
"""One size is enough: temporaries scale linearly with it. Append-only."""


class _KernelMemory:
    """Shared body of the per-optimizer classes (underscore: asv does not collect it)."""

    optimizer: str  # a key of common.CASES
    params = [BACKENDS, MEMORY_SIZES, DTYPES]
    param_names = ["backend", "size", "dtype"]
    timeout = 300

    def setup(self, backend, size, dtype):
        self.kernel, self.arguments = kernel_problem(self.optimizer, backend, size, dtype)

    def peakmem_kernel(self, backend, size, dtype):
        """Peak resident memory of the process: setup plus one kernel call."""
        self.kernel(*self.arguments)

    def peakmem_baseline(self, backend, size, dtype):
        """Peak resident memory of the process: the same setup, no kernel call."""

    def track_temporary_bytes(self, backend, size, dtype):
        """Bytes allocated at the peak of one kernel call, beyond what was allocated before it."""
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            self.kernel(*self.arguments)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        return peak - before

    track_temporary_bytes.unit = "bytes"


class MemorySGD(_KernelMemory):
    optimizer = "sgd"


class MemoryAdagrad(_KernelMemory):
    optimizer = "adagrad"


class MemoryRMSprop(_KernelMemory):
    optimizer = "rmsprop"


class MemoryAdam(_KernelMemory):
    optimizer = "adam"


class MemoryAdamW(_KernelMemory):
    optimizer = "adamw"
