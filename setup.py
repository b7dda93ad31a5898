"""Build the Cython twin of every optimizer, once per instruction-set level.

Each ``fastopt/<name>/_cython.pyx`` holds only its loop; the module Cython compiles is generated
here from the loop's signature (``fastopt/_native/generate.py`` renders ``entries.pyx.tp`` into
``build/generated/``: the entry points, threads and length checks) and includes the loop.

Compiler policy (see README, "Build"):

* ``-O3 -fno-math-errno``: lets gcc vectorise loops that call ``sqrt``/``sqrtf`` (without
  ``-fno-math-errno`` it keeps a scalar sqrt plus an errno path).
* ``-fno-inline-functions``: each ``_<name>_loop`` is compiled once, as a function of its own,
  and every entry point calls it. Inlined into ``<name>_update_many``'s loop over rows, gcc
  sometimes did not unswitch the loop on its flags and vectorised the untaken branches instead
  (with masked loads from the unused, NULL, buffers): at 262,144 float32 elements Adagrad's
  multi-tensor step took 121 us where its loop takes 75 us, and a one-line change to RMSprop's
  loop sent its multi-tensor step to 1.8 ms. (``cdef inline`` helpers are still inlined.)
* ``-ffp-contract=off``: no fused multiply-add contraction, so every product and sum is rounded
  exactly as in the NumPy reference and the Numba twin (bit-identical results, in every build).
* never ``-ffast-math``/``-Ofast``: they change results and, once the extension is loaded, switch
  the whole process to flush-to-zero.

Run-time dispatch: on x86-64 each ``fastopt/<name>/_cython.pyx`` is compiled three times, as
``_cython`` (baseline x86-64, runs on any x86-64 CPU), ``_cython_avx2`` (``-march=x86-64-v3``)
and ``_cython_avx512`` (``-march=x86-64-v4``: AVX-512 instructions on 256-bit vectors, see
ISA_BUILDS). ``fastopt._backends`` loads the
best build the CPU supports (``fastopt/_native/cpu.pyx`` asks the CPU). Elsewhere only the baseline
build exists. ``FASTOPT_BASELINE_ONLY=1`` skips the extra builds; ``FASTOPT_CYTHON_DEBUG=1``
turns bounds checking and initialisation checks on.

Threads: the kernels' loops are OpenMP ``prange`` loops, built with ``-fopenmp`` when the compiler
supports it (``FASTOPT_NO_OPENMP=1`` builds without; the loops then run on one thread).
"""

import os
import platform
from glob import glob

import numpy  # the entry points and the multi-tensor batch use NumPy's C API
from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTOPT_CYTHON_DEBUG", "0") not in ("", "0")
COMPILE_ARGS = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-fno-inline-functions", "-g0", "--param=max-unswitch-insns=1000", "--param=max-unswitch-level=6"]

# (module suffix, extra flags); the suffixes are the names fastopt._backends looks for.
ISA_BUILDS = [("", [])]
if platform.machine().lower() in ("x86_64", "amd64") and os.environ.get("FASTOPT_BASELINE_ONLY", "0") in ("", "0"):
    ISA_BUILDS += [
        ("_avx2", ["-march=x86-64-v3"]),
        # 256-bit vectors, as gcc's own tuning for x86-64-v4 prefers. Measured on the project's
        # AMD EPYC (Zen 5), kernel alone, float32, same process, medians: at 262,144 elements
        # 512-bit vectors were slower by 7-13 % for Adam, AdamW and Adadelta and by 33-40 % for
        # Adamax and Lion; within 4 % either way at 4,096, 4,194,304 and 33,554,432 elements.
        ("_avx512", ["-march=x86-64-v4", "-mprefer-vector-width=256"]),
    ]
NUMPY = dict(include_dirs=[numpy.get_include()], define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")])
GENERATED = os.path.join("build", "generated")  # the modules Cython compiles; never committed


def openmp_flags() -> list[str]:
    """``-fopenmp`` if the C compiler builds and links an OpenMP program, else nothing: without it
    the kernels' ``prange`` loops compile to ordinary serial loops (same results, one thread)."""
    if os.environ.get("FASTOPT_NO_OPENMP", "0") not in ("", "0"):
        return []
    import subprocess
    import sysconfig
    import tempfile

    compiler = (sysconfig.get_config_var("CC") or "cc").split()
    with tempfile.TemporaryDirectory() as scratch:
        source = os.path.join(scratch, "omp.c")
        with open(source, "w") as handle:
            handle.write("#include <omp.h>\nint main(void) { return omp_get_max_threads() < 1; }\n")
        probe = subprocess.run(
            [*compiler, "-fopenmp", source, "-o", os.path.join(scratch, "omp")], capture_output=True
        )
    if probe.returncode != 0:
        print("fastopt: the C compiler has no OpenMP; Cython kernels will run on one thread")
        return []
    return ["-fopenmp"]


OPENMP = openmp_flags()


def load_generator():
    """fastopt/_native/generate.py, loaded by path: the package itself is not importable yet."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("fastopt_generate", os.path.join("fastopt", "_native", "generate.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def write_if_changed(path: str, text: str) -> None:
    """Write ``text`` unless the file already holds it (an unchanged file is not recompiled)."""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


# Folders whose _cython.pyx is a whole module of its own kernels, not one loop to generate entry
# points around: L-BFGS's vector kernels (dot products, axpy-style updates), which a closure
# optimizer's control flow calls one at a time.
WHOLE_MODULES = ("fastopt.lbfgs",)


def kernel_extensions():
    """Per optimizer folder, the module around its hand-written loop (generated entry points, see
    fastopt/_native/generate.py), compiled once per instruction-set build."""
    generator = load_generator()
    for source in sorted(glob(os.path.join("fastopt", "*", "_cython.pyx"))):
        package = os.path.dirname(source).replace(os.sep, ".")  # fastopt.adam
        if package in WHOLE_MODULES:  # written whole: the generated module only includes it
            module = f'include "{source.replace(os.sep, "/")}"\n'
        else:
            with open(source, encoding="utf-8") as handle:
                module = generator.module_source(source.replace(os.sep, "/"), handle.read())
        for suffix, flags in ISA_BUILDS:
            # Cython names a module's init function after its file: one file per build
            path = os.path.join(GENERATED, os.path.dirname(source), f"_cython{suffix}.pyx")
            write_if_changed(path, module)
            yield Extension(
                f"{package}._cython{suffix}",
                [path],
                **NUMPY,
                extra_compile_args=COMPILE_ARGS + flags + OPENMP,
                extra_link_args=OPENMP,
            )


def native_extensions():
    """fastopt/_native: the compiled support every kernel shares (built for the baseline CPU)."""
    for name in ("cpu", "overlap", "dlpack", "batch", "identity"):
        yield Extension(f"fastopt._native.{name}", [f"fastopt/_native/{name}.pyx"], extra_compile_args=COMPILE_ARGS, **NUMPY)
    # the summation order's Cython twin, callable from Python (its loops are inline in sums.pxd)
    yield Extension("fastopt._sums.sums", ["fastopt/_sums/sums.pyx"], extra_compile_args=COMPILE_ARGS, **NUMPY)
    # the float16/bfloat16 conversions' Cython twin, callable from Python (inline in rounding.pxd),
    # built per instruction set as the kernels are: the whole-tensor 16-bit steps convert with it
    for suffix, flags in ISA_BUILDS:
        if not suffix:
            yield Extension("fastopt._rounding.rounding", ["fastopt/_rounding/rounding.pyx"], extra_compile_args=COMPILE_ARGS, **NUMPY)
            continue
        path = os.path.join(GENERATED, "fastopt", "_rounding", f"rounding{suffix}.pyx")
        write_if_changed(path, 'from fastopt._rounding.rounding cimport *\n\ninclude "fastopt/_rounding/rounding.pyx"\n')
        yield Extension(f"fastopt._rounding.rounding{suffix}", [path], extra_compile_args=COMPILE_ARGS + flags, **NUMPY)


extensions = [*native_extensions(), *kernel_extensions()]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3,
            "boundscheck": DEBUG,
            "initializedcheck": DEBUG,
            "wraparound": False,
            "cdivision": True,
            "embedsignature": True,
            "binding": True,
        },
        nthreads=os.cpu_count() or 1,
        include_path=["."],  # `include "fastopt/adam/_cython.pyx"` and `cimport fastopt._native...` from build/
    ),
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
)
