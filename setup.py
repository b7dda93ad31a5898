"""Build the Cython twin of every optimizer, once per instruction-set level.

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
best build the CPU supports (``fastopt/_cpu.pyx`` asks the CPU). Elsewhere only the baseline
build exists. ``FASTOPT_BASELINE_ONLY=1`` skips the extra builds; ``FASTOPT_CYTHON_DEBUG=1``
turns bounds checking and initialisation checks on.

Threads: the kernels' loops are OpenMP ``prange`` loops, built with ``-fopenmp`` when the compiler
supports it (``FASTOPT_NO_OPENMP=1`` builds without; the loops then run on one thread).
"""

import os
import platform
import shutil
from glob import glob

import numpy  # the multi-tensor path (fastopt/_multi.pyx) uses NumPy's C API
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
ISA_SOURCE_DIR = os.path.join("build", "isa-sources")  # copies of the .pyx under the variant's name


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


def kernel_extensions():
    for source in sorted(glob(os.path.join("fastopt", "*", "_cython.pyx"))):
        package = os.path.dirname(source).replace(os.sep, ".")  # fastopt.adam
        for suffix, flags in ISA_BUILDS:
            if suffix:
                # Cython names a module's init function after the file, so each build compiles
                # an identical copy of the .pyx that carries the variant's name.
                variant = os.path.join(ISA_SOURCE_DIR, os.path.dirname(source), f"_cython{suffix}.pyx")
                os.makedirs(os.path.dirname(variant), exist_ok=True)
                shutil.copyfile(source, variant)
                source_file = variant
            else:
                source_file = source
            yield Extension(
                f"{package}._cython{suffix}",
                [source_file],
                **NUMPY,
                extra_compile_args=COMPILE_ARGS + flags + OPENMP,
                extra_link_args=OPENMP,
            )


extensions = [
    Extension("fastopt._cpu", ["fastopt/_cpu.pyx"], extra_compile_args=COMPILE_ARGS),
    Extension("fastopt._multi", ["fastopt/_multi.pyx"], extra_compile_args=COMPILE_ARGS, **NUMPY),
    *kernel_extensions(),
]

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
        include_path=["."],  # `from fastopt._multi cimport Batch`, also from the copies in build/
    ),
    options={"build_ext": {"parallel": os.cpu_count() or 1}},
)
