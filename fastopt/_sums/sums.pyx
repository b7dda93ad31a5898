"""The summation order's Cython twin (``sums.pxd``, which the loops cimport), callable from Python
so that ``tests/test_sums.py`` can check it against the reference and the Numba twin directly."""

from cython cimport floating


def total(const floating[::1] values):
    """Rule 2 over ``values``, each widened to float64."""
    return run_sum(&values[0], values.shape[0]) if values.shape[0] else 0.0


def total_of_squares(const floating[::1] values):
    """Rule 2 over the squares of ``values``, each widened to float64 first."""
    return run_sum_of_squares(&values[0], values.shape[0]) if values.shape[0] else 0.0
