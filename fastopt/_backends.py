"""Backend registry: which implementation of a kernel runs.

Every optimizer folder (``fastopt/adam/`` ...) holds three twins of one kernel, with the same name
and the same positional signature:

=============  ====================  =====================================================
backend        module                what it is
=============  ====================  =====================================================
``reference``  ``<opt>/reference.py``  NumPy, whole-array expressions: the specification
``numba``      ``<opt>/_numba.py``     an explicit element loop, compiled by Numba
``cython``     ``<opt>/_cython.pyx``   the same loop over C pointers, compiled by gcc
=============  ====================  =====================================================

Backends are imported lazily, so ``import fastopt`` does not pay for importing Numba.

The Cython twin is compiled once per instruction-set level (see setup.py): ``_cython`` for any
x86-64 CPU, ``_cython_avx2`` (x86-64-v3) and ``_cython_avx512`` (x86-64-v4). The ``cython``
backend loads the best build this CPU supports; ``FASTOPT_CYTHON_ISA=baseline|avx2|avx512``
forces one (for comparisons; an unsupported choice is an error, never a crash). All builds give
the same bits: none contracts multiply-adds into FMA.
"""

from __future__ import annotations

import importlib
import os
from functools import cache

BACKENDS = ("reference", "numba", "cython")
"""All backends, slowest (the specification) first."""

_MODULES = {"reference": "reference", "numba": "_numba", "cython": "_cython"}
_PREFERENCE = ("cython", "numba", "reference")  # what "auto" picks, fastest first
_PROBE = "sgd"  # an optimizer whose kernels stand in for "can this backend load here?"


# Cython builds: name -> (module suffix, instruction-set level for fastopt._native.cpu.supports), best first.
CYTHON_BUILDS = {
    "avx512": ("_avx512", "x86-64-v4"),
    "avx2": ("_avx2", "x86-64-v3"),
    "baseline": ("", "baseline"),
}


class BackendUnavailable(ImportError):
    """A known backend that cannot be loaded in this environment (the message says why)."""


def _import_build(module: str, build: str):
    """Import one instruction-set build, ``f"{module}{suffix}"`` (raises on failure)."""
    suffix, level = CYTHON_BUILDS[build]
    from ._native import cpu as _cpu

    if not _cpu.supports(level):
        raise ImportError(f"this CPU does not support {level}, which the {build} build needs")
    return importlib.import_module(f"{module}{suffix}")


def _import_cython_build(optimizer: str, build: str):
    """Import one instruction-set build of an optimizer's Cython kernel (raises on failure)."""
    return _import_build(f"fastopt.{optimizer}._cython", build)


def import_best_cython_build(module: str):
    """The best instruction-set build of ``module`` this CPU runs (or the one
    ``FASTOPT_CYTHON_ISA`` names): how the kernels are chosen, and the modules built per
    instruction set beside them (``fastopt._rounding.rounding``)."""
    forced = os.environ.get("FASTOPT_CYTHON_ISA")
    if forced:
        if forced not in CYTHON_BUILDS:
            raise ImportError(f"FASTOPT_CYTHON_ISA must be one of {sorted(CYTHON_BUILDS)}, got {forced!r}")
        return _import_build(module, forced)
    errors = []
    for build in CYTHON_BUILDS:  # best first
        try:
            return _import_build(module, build)
        except ImportError as exc:
            errors.append(f"{build}: {exc}")
    raise ImportError("no Cython build loads: " + "; ".join(errors))


def cython_build(optimizer: str = "sgd") -> str:
    """The instruction-set build the ``cython`` backend uses for ``optimizer`` here."""
    module = _load_module(optimizer, "cython")
    suffix = module.__name__.rsplit("._cython", 1)[1]
    return next(name for name, (build_suffix, _) in CYTHON_BUILDS.items() if build_suffix == suffix)


def check_backend_name(backend: object) -> str:
    """Return ``backend`` if it names a backend or ``"auto"``; raise ``ValueError`` otherwise."""
    if backend != "auto" and backend not in BACKENDS:
        valid = ", ".join(repr(name) for name in ("auto", *BACKENDS))
        raise ValueError(f"backend must be one of {valid}; got {backend!r}")
    return backend  # type: ignore[return-value]


@cache
def _load_module(optimizer: str, backend: str):
    module_name = f"fastopt.{optimizer}.{_MODULES[backend]}"
    try:
        if backend == "cython":
            return import_best_cython_build(f"fastopt.{optimizer}._cython")
        return importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or numba's own RuntimeError/ImportError at import
        hint = {
            "numba": "install it with `pip install numba` (fastopt depends on numba>=0.64)",
            "cython": "the compiled extension is missing: rebuild with `pip install -e .` "
            "(a C compiler is needed)",
            "reference": "this is a packaging error",
        }[backend]
        raise BackendUnavailable(
            f"backend {backend!r} cannot be loaded here ({module_name}: "
            f"{type(exc).__name__}: {exc}); {hint}"
        ) from exc


def get_kernel(optimizer: str, backend: str, parallel: bool = False, many: bool = False, arrays: int | None = None):
    """Return the kernel ``<optimizer>_update`` of ``backend`` (raises ``BackendUnavailable``).

    With ``parallel=True``, the variant that honours its ``num_threads`` argument: Numba's
    ``parallel=True`` twin (its thread count set per call), the same function for Cython (whose
    ``prange`` takes ``num_threads``) and for the reference (single-threaded NumPy).

    With ``many=True``, the multi-tensor kernel, which steps every row of a gathered
    :class:`fastopt._native.batch.Batch`: Cython's generated ``<optimizer>_update_many(batch,
    *scalars, num_threads, min_size)``, or Numba's twin made by :func:`fastopt._jit.many_twin`,
    ``(table, sizes, like, (*scalars, num_threads))``, for a kernel of ``arrays`` array arguments.
    The reference has none (``None``).
    """
    module = _load_module(optimizer, backend)
    if many:
        if backend == "cython":
            return getattr(module, f"{optimizer}_update_many")
        if backend == "numba":
            return _numba_twin(optimizer, "many", arrays)
        return None
    if parallel and backend == "numba":
        return _numba_with_threads(_numba_twin(optimizer, "parallel", None))
    return getattr(module, f"{optimizer}_update")


def get_kernel_module(optimizer: str, backend: str):
    """The module that holds ``<optimizer>_update`` on ``backend`` (its generated entry points,
    for Cython: the 16-bit ones among them)."""
    return _load_module(optimizer, backend)


@cache
def _numba_twin(optimizer: str, kind: str, arrays: int | None):
    """A twin of a Numba kernel (see :mod:`fastopt._jit`), made once per process."""
    from . import _jit

    kernel = getattr(_load_module(optimizer, "numba"), f"{optimizer}_update")
    return _jit.parallel_twin(kernel) if kind == "parallel" else _jit.many_twin(kernel, arrays)


def _numba_with_threads(kernel):
    """Call a ``parallel=True`` Numba kernel with its last argument as the thread count."""
    import numba

    limit = numba.config.NUMBA_NUM_THREADS  # Numba cannot use more threads than it started

    def run_on_threads(*args):
        numba.set_num_threads(min(args[-1], limit))
        kernel(*args)

    return run_on_threads


def resolve_backend(backend: object) -> str:
    """Map ``"auto"`` to the fastest available backend; check that a named one loads."""
    check_backend_name(backend)
    if backend == "auto":
        for candidate in _PREFERENCE:
            if is_available(candidate):
                return candidate
    get_kernel(_PROBE, backend)  # raises BackendUnavailable with the underlying error
    return backend  # type: ignore[return-value]


def is_available(backend: str) -> bool:
    try:
        get_kernel(_PROBE, backend)
    except BackendUnavailable:
        return False
    return True


def available_backends() -> tuple[str, ...]:
    """The backends that load in this environment, in ``BACKENDS`` order."""
    return tuple(name for name in BACKENDS if is_available(name))
