"""The one check every kernel makes before its loop: each array it touches has ``param``'s length.

The compiled loops index without bounds checks, so a shorter gradient or state array would be
read or written past its end. One comparison per array, before anything is written, makes a
mistaken direct call a ``ValueError`` instead of memory corruption (and, in the reference, instead
of NumPy silently broadcasting a length-1 array). The same function serves the reference and,
through ``numba.extending.register_jitable`` in :mod:`fastopt._jit`, the Numba kernels; the
Cython kernels use its twin in ``_checks.pxd``. All three raise the same message.
"""


def require_length(kernel: str, name: str, length: int, n: int) -> None:
    """Raise ``ValueError`` unless ``length`` (of array ``name``) equals ``n``, param's length."""
    if length != n:
        raise ValueError(kernel + ": " + name + " has " + str(length) + " elements, but param has " + str(n))
