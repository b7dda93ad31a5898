"""The one place that says how fastopt compiles its Numba kernels.

* ``nogil=True``: kernels release the GIL, so two threads can step two optimizers at once.
* ``error_model="numpy"``: division follows IEEE (inf/NaN) instead of raising
  ``ZeroDivisionError``; the Python error model adds a branch to every ``/`` and stops LLVM from
  vectorising the loop.
* no ``fastmath``: it would let LLVM reassociate and contract ``a*b + c`` into FMA, and the
  kernels would no longer agree bit for bit with the NumPy reference.
* ``cache=True`` where a cache location is writable; Numba raises ``RuntimeError`` at decoration
  time when none is (read-only site-packages and HOME), and then we compile in memory instead.
  ``FASTOPT_NUMBA_CACHE=0`` turns the disk cache off.
"""

import os

import numba
from numba.extending import register_jitable

from . import _checks

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
    """
    return numba.njit(parallel=True, **KERNEL_OPTIONS)(kernel.py_func)


# fastopt._checks.require_length, callable inside a kernel (one check per array before the loop)
require_length = register_jitable(_checks.require_length)
