"""The one check every kernel makes before its loop: each array it touches has ``param``'s length.

The compiled loops index without bounds checks, so a shorter gradient or state array would be
read or written past its end. One comparison per array, before anything is written, makes a
mistaken direct call a ``ValueError`` instead of memory corruption (and, in the reference, instead
of NumPy silently broadcasting a length-1 array). A kernel says it in one line,
``require_lengths("adam_update", param, "grad exp_avg exp_avg_sq", (grad, exp_avg, exp_avg_sq))``:
the reference calls the function below, the Numba kernels its compiled twin in
:mod:`fastopt._jit`, and the generated Cython entry points ``require_length`` of ``_checks.pxd``,
one array at a time. All three raise the same message.
"""


def require_length(kernel: str, name: str, length: int, n: int) -> None:
    """Raise ``ValueError`` unless ``length`` (of array ``name``) equals ``n``, param's length."""
    if length != n:
        raise ValueError(kernel + ": " + name + " has " + str(length) + " elements, but param has " + str(n))


def require_lengths(kernel: str, param, names: str, arrays: tuple) -> None:
    """:func:`require_length` for each of ``arrays``, named in order by ``names`` (space-separated)."""
    for name, array in zip(names.split(), arrays):
        require_length(kernel, name, array.shape[0], param.shape[0])


def require_size(kernel: str, name: str, length: int, expected: int, meaning: str) -> None:
    """Raise ``ValueError`` unless array ``name`` has ``expected`` elements (``meaning`` says
    which: ``"n // cols"``) — for the state arrays of a whole-tensor kernel (Adafactor's factors)."""
    if length != expected:
        raise ValueError(kernel + ": " + name + " has " + str(length) + " elements, but " + meaning + " is "
                         + str(expected))


def require_matrices(kernel: str, n: int, rows: int, cols: int) -> None:
    """Raise ``ValueError`` unless param's ``n`` elements are a whole number of ``rows x cols``
    matrices (``rows, cols >= 1``): what a whole-tensor kernel's row and column loops assume."""
    if rows < 1 or cols < 1 or n % cols != 0 or (n // cols) % rows != 0:
        raise ValueError(kernel + ": param has " + str(n) + " elements, not a whole number of " + str(rows)
                         + " x " + str(cols) + " matrices")
