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

Processes: GNU OpenMP's thread pool (Cython's ``prange``, Numba's ``omp`` threading layer, and
torch's intra-op threads: torch's wheel brings a ``libgomp.so.1`` and the loader keeps one library
per name, so all three share one pool) does not survive ``fork()``. A parallel region in the child
waits forever for threads that were not copied (Cython), or Numba ends the process. So, as torch
does, a child forked from a process that may have started that pool steps on one thread:
:func:`_after_fork_in_child` sets the count to 1, and :func:`set_num_threads` refuses more there.

One optimizer, one call at a time: :func:`one_at_a_time` wraps ``step`` and the checkpoint
methods in the optimizer's lock, so two threads stepping the same optimizer run one after the
other instead of losing updates. Different optimizers have different locks and step in parallel.
"""

from __future__ import annotations

import functools
import os
import sys

DEFAULT_MIN_SIZE = 131_072  # elements; measured on a 2-core machine, see README "Threads"

_num_threads = 1
_min_size = DEFAULT_MIN_SIZE


_threads_asked = False  # set_num_threads(n > 1) was called in this process
_forked_from = None  # why this process may not start threads: what its parent had done, or None


def set_num_threads(num_threads: int, min_size: int | None = None) -> None:
    """Use up to ``num_threads`` threads for parameters of at least ``min_size`` elements.

    In a process forked (``os.fork``, a ``multiprocessing`` pool with the ``fork`` method, a
    torch ``DataLoader`` worker) from one that may have started an OpenMP thread pool, more than
    one thread raises ``RuntimeError``: that pool does not survive ``fork()``. Start such workers
    with the ``spawn`` or ``forkserver`` method to give them threads.
    """
    global _num_threads, _min_size, _threads_asked
    if isinstance(num_threads, bool) or not isinstance(num_threads, int) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    if min_size is not None and (isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 0):
        raise ValueError(f"min_size must be a non-negative integer, got {min_size!r}")
    if num_threads > 1 and _forked_from is not None:
        raise RuntimeError(
            f"set_num_threads({num_threads}): this process was forked from one that {_forked_from}, "
            "and GNU OpenMP's thread pool does not survive fork(): a parallel step here would never "
            "return. fastopt keeps this process on 1 thread (as torch does); start worker processes "
            "with the 'spawn' or 'forkserver' method to use threads in them"
        )
    _threads_asked = _threads_asked or num_threads > 1
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


def _openmp_pool_users() -> str | None:
    """What in this process may have started the shared GNU OpenMP pool, in words, or None.

    fastopt cannot ask libgomp whether its pool exists, so this errs on the safe side: threads
    asked of fastopt, torch imported (its intra-op threads start on its first parallel operation),
    or Numba's threading layer started (by fastopt or by the user's own ``parallel=True`` code).
    """
    if _forked_from is not None:
        return _forked_from
    if _threads_asked:
        return "had asked fastopt for threads"
    if "torch" in sys.modules:
        return "had imported torch (whose OpenMP threads share the pool)"
    parallel = sys.modules.get("numba.np.ufunc.parallel")
    if parallel is not None and getattr(parallel, "_is_initialized", False):
        return "had started Numba's threading layer"
    return None


def _after_fork_in_child() -> None:
    """One thread in a child forked from a process whose OpenMP pool may exist (see above)."""
    global _num_threads, _forked_from
    reason = _openmp_pool_users()
    if reason is not None:
        _forked_from = reason
        _num_threads = 1


os.register_at_fork(after_in_child=_after_fork_in_child)


def one_at_a_time(method):
    """``method`` run holding its optimizer's lock (``self._lock``, a ``threading.RLock``).

    A step reads and writes state the optimizer shares between calls (its counters, its cached
    checks, its gathered batch); two threads interleaving there would lose updates. With the
    lock, concurrent calls on one optimizer run one after the other; its cost uncontended is one
    acquire and release (well under a microsecond), see docs/reliability.md.
    """

    @functools.wraps(method)
    def serialized(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return serialized


_env = os.environ.get("FASTOPT_NUM_THREADS")
if _env:
    set_num_threads(int(_env))
