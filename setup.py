"""Build the Cython twin of every optimizer: one small extension per ``fastopt/<name>/_cython.pyx``.

Compiler policy (see README, "Build"):

* ``-O3 -fno-math-errno``: lets gcc vectorise loops that call ``sqrt``/``sqrtf`` (without
  ``-fno-math-errno`` it keeps a scalar sqrt plus an errno path).
* ``-ffp-contract=off``: no fused multiply-add contraction, so every product and sum is rounded
  exactly as in the NumPy reference and the Numba twin (bit-identical results).
* never ``-ffast-math``/``-Ofast``: they change results and, once the extension is loaded, switch
  the whole process to flush-to-zero.

``FASTOPT_CYTHON_DEBUG=1`` builds with bounds checking and initialisation checks on.
"""

import os
from glob import glob

from Cython.Build import cythonize
from setuptools import Extension, setup

DEBUG = os.environ.get("FASTOPT_CYTHON_DEBUG", "0") not in ("", "0")

COMPILE_ARGS = ["-O3", "-fno-math-errno", "-ffp-contract=off", "-g0"]

extensions = [
    Extension(
        source[:-len(".pyx")].replace(os.sep, "."),  # fastopt/adam/_cython.pyx -> fastopt.adam._cython
        [source],
        extra_compile_args=COMPILE_ARGS,
    )
    for source in sorted(glob(os.path.join("fastopt", "*", "_cython.pyx")))
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
    )
)
