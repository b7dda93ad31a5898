"""The summation order's Cython twin (``sums.pxd``, which the loops cimport), callable from Python
so that ``tests/test_sums.py`` can check it against the reference and the Numba twin directly."""

from cython cimport floating


def total(const floating[::1] values):
    """Rule 2 over ``values``, each widened to float64."""
    return run_sum(&values[0], values.shape[0]) if values.shape[0] else 0.0


def total_of_squares(const floating[::1] values):
    """Rule 2 over the squares of ``values``, each widened to float64 first."""
    return run_sum_of_squares(&values[0], values.shape[0]) if values.shape[0] else 0.0


def matmul(const floating[:, ::1] left, const floating[:, ::1] right, floating[:, ::1] out, bint symmetric=False):
    """Rule 4: ``out = left @ right.T`` (``right`` holds the right operand's columns as rows),
    rounded to ``out``'s dtype; ``symmetric`` computes one triangle of ``left @ left.T``."""
    if left.shape[1] != right.shape[1] or out.shape[0] != left.shape[0] or out.shape[1] != right.shape[0]:
        raise ValueError("matmul: shapes do not match")
    if out.shape[0] * out.shape[1] == 0:
        return
    if left.shape[1] == 0:  # sums of no products: +0.0 (no operand to point at)
        out[:, :] = 0
        return
    matmul_rows(&left[0, 0], &right[0, 0], left.shape[0], right.shape[0], left.shape[1], &out[0, 0], symmetric)
