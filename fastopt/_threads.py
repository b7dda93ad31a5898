"""The threading knob: how many threads a kernel may use, and from which array size.

Threads are opt-in. By default every kernel runs on the calling thread; with
``fastopt.set_num_threads(2)`` a parameter of at least ``min_size`` elements is split across two
threads (Cython: an OpenMP ``prange``; Numba: the kernel's ``parallel=True`` twin). Smaller
arrays stay on one thread, because starting a parallel region costs more than it saves on them.
Every element is computed by the same operations either way, so results are bit-identical
whatever the thread count.

On virtual machines, OpenMP threads that wait for work by spinning can be descheduled and make a
parallel step much slower than a serial one when the other cores are busy; if that happens, set
``OMP_WAIT_POLICY=passive`` (or ``GOMP_SPINCOUNT``) before starting Python, or keep one thread.
"""

from __future__ import annotations

import os

DEFAULT_MIN_SIZE = 131_072  # elements; measured on a 2-core machine, see README "Threads"

_num_threads = 1
_min_size = DEFAULT_MIN_SIZE


def set_num_threads(num_threads: int, min_size: int | None = None) -> None:
    """Use up to ``num_threads`` threads for parameters of at least ``min_size`` elements."""
    global _num_threads, _min_size
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    if min_size is not None and (isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0):
        raise ValueError(f"min_size must be a non-negative integer, got {min_size!r}")
    _num_threads = num_threads
    if min_size is not None:
        _min_size = min_size


def get_num_threads() -> int:
    """The thread count set by :func:`set_num_threads` (1 unless changed)."""
    return _num_threads


def min_size() -> int:
    """The smallest parameter (in elements) that is split across threads."""
    return _min_size


def threads_for(size: int) -> int:
    """How many threads a kernel call over ``size`` elements should use."""
    return _num_threads if size >= _min_size and _num_threads > 1 else 1


_env = os.environ.get("FASTOPT_NUM_THREADS")
if _env:
    set_num_threads(int(_env))
