"""The summation order of :mod:`fastopt._sums`, compiled by Numba: helpers the Numba kernels call.

Value ``k`` of a run goes into lane ``k % 8``, in order, in float64; the lanes are combined by one
fixed tree. The lanes are a tuple of eight floats (locals, no allocation; LLVM keeps them in
vector registers): whole blocks of 8 are added to all eight at once, the rest one at a time.
"""

import numpy as np
from numba.extending import register_jitable

NO_LANES = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)


@register_jitable
def combine_lanes(lanes):
    """Rule 2's tree: ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))."""
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))


@register_jitable
def add_to_lanes(lanes, values, start, count, square):
    """``lanes`` with ``values[start + k]`` (its square if ``square``), widened to float64, added
    to lane ``k % 8``."""
    l0, l1, l2, l3, l4, l5, l6, l7 = lanes
    whole = count - count % 8
    for k in range(start, start + whole, 8):
        w0, w1, w2, w3 = np.float64(values[k]), np.float64(values[k + 1]), np.float64(values[k + 2]), np.float64(values[k + 3])
        w4, w5, w6, w7 = np.float64(values[k + 4]), np.float64(values[k + 5]), np.float64(values[k + 6]), np.float64(values[k + 7])
        if square:
            w0, w1, w2, w3, w4, w5, w6, w7 = w0 * w0, w1 * w1, w2 * w2, w3 * w3, w4 * w4, w5 * w5, w6 * w6, w7 * w7
        l0, l1, l2, l3, l4, l5, l6, l7 = l0 + w0, l1 + w1, l2 + w2, l3 + w3, l4 + w4, l5 + w5, l6 + w6, l7 + w7
    for lane in range(count - whole):  # the last, partial block: lane by lane
        wide = np.float64(values[start + whole + lane])
        wide = wide * wide if square else wide
        if lane == 0:
            l0 += wide
        elif lane == 1:
            l1 += wide
        elif lane == 2:
            l2 += wide
        elif lane == 3:
            l3 += wide
        elif lane == 4:
            l4 += wide
        elif lane == 5:
            l5 += wide
        else:
            l6 += wide  # a partial block has at most 7 values
    return (l0, l1, l2, l3, l4, l5, l6, l7)


@register_jitable
def run_sum(values, start, count):
    """Rule 2 over ``values[start:start + count]``, each widened to float64."""
    return combine_lanes(add_to_lanes(NO_LANES, values, start, count, False))


@register_jitable
def run_sum_of_squares(values, start, count):
    """Rule 2 over the squares of ``values[start:start + count]``, each widened to float64 first."""
    return combine_lanes(add_to_lanes(NO_LANES, values, start, count, True))


@register_jitable
def dot_lanes(left, left_start, right, right_start, count):
    """Rule 4 for one element: the run ``left[left_start + k] * right[right_start + k]``, each
    product of the two values widened to float64, in lane ``k % 8``; the lanes, uncombined."""
    l0 = l1 = l2 = l3 = l4 = l5 = l6 = l7 = 0.0
    whole = count - count % 8
    a, b = left_start, right_start
    for k in range(0, whole, 8):
        l0 += np.float64(left[a + k]) * np.float64(right[b + k])
        l1 += np.float64(left[a + k + 1]) * np.float64(right[b + k + 1])
        l2 += np.float64(left[a + k + 2]) * np.float64(right[b + k + 2])
        l3 += np.float64(left[a + k + 3]) * np.float64(right[b + k + 3])
        l4 += np.float64(left[a + k + 4]) * np.float64(right[b + k + 4])
        l5 += np.float64(left[a + k + 5]) * np.float64(right[b + k + 5])
        l6 += np.float64(left[a + k + 6]) * np.float64(right[b + k + 6])
        l7 += np.float64(left[a + k + 7]) * np.float64(right[b + k + 7])
    for lane in range(count - whole):  # the last, partial block: lane by lane
        product = np.float64(left[a + whole + lane]) * np.float64(right[b + whole + lane])
        if lane == 0:
            l0 += product
        elif lane == 1:
            l1 += product
        elif lane == 2:
            l2 += product
        elif lane == 3:
            l3 += product
        elif lane == 4:
            l4 += product
        elif lane == 5:
            l5 += product
        else:
            l6 += product  # a partial block has at most 7 values
    return (l0, l1, l2, l3, l4, l5, l6, l7)


@register_jitable
def matmul_rows(left, left_start, right, right_start, rows, cols, depth, out, out_start, symmetric):
    """Rule 4: ``out[i, j] = sum_k left[i, k] * right[j, k]`` (``left @ right.T``: both operands
    read along ``k``, their rows ``depth`` long), ``rows x cols`` results rounded to ``out``'s
    dtype, from the flat arrays' ``*_start`` offsets. ``symmetric`` (``left`` is ``right``):
    the upper triangle is computed and copied to the lower one, whose sums have the same bits."""
    dtype = out.dtype.type
    for i in range(rows):
        for j in range(i if symmetric else 0, cols):
            lanes = dot_lanes(left, left_start + i * depth, right, right_start + j * depth, depth)
            out[out_start + i * cols + j] = dtype(combine_lanes(lanes))
    if symmetric:
        for i in range(rows):
            for j in range(i):
                out[out_start + i * cols + j] = out[out_start + j * cols + i]
