"""The summation order (fastopt._sums): its three twins against a pure-Python transcription of the
rule, and Adafactor, whose norms and means use it, bit for bit across backends on shapes large
enough to cross every block (8 lanes, 64-column blocks, many rows).

The rule: float64 accumulation; a run of values in 8 lanes (value k into lane k % 8, each lane
from +0.0 in order), the lanes combined as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); a
column in row order; a matrix product's element as a run of float64 products (rule 4).
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hynp
from specs import DTYPES, FAST_BACKENDS, assert_bits_equal, assert_same_state
from strategies import any_elements, finite_elements

import fastopt
from fastopt import _sums, _threads


def python_total(values) -> float:
    """The rule written out in Python floats (IEEE float64), one value at a time."""
    lanes = [0.0] * 8
    for k, value in enumerate(values):
        lanes[k % 8] += float(value)
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))


def python_columns(matrix) -> list[float]:
    sums = [0.0] * matrix.shape[1]
    for row in matrix:
        for j, value in enumerate(row):
            sums[j] += float(value)
    return sums


def same(a: float, b: float) -> bool:
    """Identical float64 bits, any NaN equal to any NaN."""
    return (math.isnan(a) and math.isnan(b)) or np.float64(a).tobytes() == np.float64(b).tobytes()


@pytest.fixture(scope="module")
def numba_sums():
    from numba import njit

    from fastopt._sums import _numba

    return (njit(lambda values: _numba.run_sum(values, 0, values.shape[0])),
            njit(lambda values: _numba.run_sum_of_squares(values, 0, values.shape[0])))


def check_run(values, numba_sums):
    with np.errstate(all="ignore"):  # overflow to inf and inf - inf are part of what is checked
        _check_run(values, numba_sums)


def _check_run(values, numba_sums):
    from fastopt._sums import sums as cython_sums

    wide = values.astype(np.float64)
    expected, expected_squares = python_total(wide), python_total(wide * wide)
    numba_total, numba_squares = numba_sums
    for twin, got in [("reference", _sums.total(wide)), ("numba", numba_total(values)), ("cython", cython_sums.total(values))]:
        assert same(got, expected), (twin, got, expected)
    for twin, got in [("reference", _sums.total(_sums.squares(values))), ("numba", numba_squares(values)),
                      ("cython", cython_sums.total_of_squares(values))]:
        assert same(got, expected_squares), (twin, got, expected_squares)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_three_twins_add_a_run_in_the_rules_order(numba_sums, dtype, data):
    """Any length (0, 1, odd, across many blocks of 8) and any values: huge, subnormal, inf, NaN."""
    elements = data.draw(st.sampled_from([finite_elements, any_elements]))(dtype)
    size = data.draw(st.one_of(st.integers(0, 20), st.integers(21, 600)))
    check_run(data.draw(hynp.arrays(dtype, size, elements=elements)), numba_sums)


def test_runs_of_every_length_up_to_three_blocks(numba_sums):
    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        for size in range(0, 26):
            check_run((rng.standard_normal(size) * 10.0 ** rng.integers(-20, 20, size)).astype(dtype), numba_sums)


def test_the_reference_rows_and_columns_are_the_rule():
    rng = np.random.default_rng(1)
    for rows, cols in [(1, 1), (3, 7), (2, 8), (5, 9), (4, 130), (130, 3)]:
        matrix = rng.standard_normal((rows, cols)) * 10.0 ** rng.integers(-8, 8, (rows, cols))
        assert all(same(a, b) for a, b in zip(_sums.row_sums(matrix), [python_total(row) for row in matrix]))
        columns = _sums.column_sums(matrix.reshape(1, rows, cols))[0]
        assert all(same(a, b) for a, b in zip(columns, python_columns(matrix)))


def test_a_float32_sum_of_a_million_values_is_float64_accurate():
    """The point of the float64 lanes: a float32 tensor's sum of squares is exact to about 1e-16
    relative (math.fsum is the exact sum, rounded once), far below float32's 6e-8."""
    values = np.random.default_rng(2).standard_normal(1 << 20).astype(np.float32)
    wide = values.astype(np.float64)
    exact = math.fsum(wide * wide)  # each square of a float32 is exact in float64
    assert abs(_sums.total(_sums.squares(values)) - exact) <= 1e-13 * exact


# Adafactor on shapes that cross every block of the compiled loops: rows longer than 8 (lanes),
# more than 64 columns (the Cython twin's column blocks), stacks of matrices, long vectors.
LARGE_SHAPES = [(3, 200), (67, 130), (2, 65, 129), (1, 1), (9, 1, 3), (1000,), (129, 1), (1, 129)]


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("values", ["finite", "extreme"])
def test_adafactor_on_large_odd_shapes_is_bit_identical(backend, dtype, values):
    rng = np.random.default_rng(3)
    initial = [rng.standard_normal(shape).astype(dtype) for shape in LARGE_SHAPES]
    if values == "extreme":  # an inf and a NaN in one matrix, huge and subnormal values in others
        initial[1][5, 7], initial[1][60, 100] = np.inf, np.nan
        initial[0][1, :] *= np.finfo(dtype).max / 4
        initial[5][::3] *= np.finfo(dtype).smallest_normal
    params = {name: [p.copy() for p in initial] for name in ("reference", backend)}
    optimizers = {name: fastopt.Adafactor(params[name], lr=0.05, weight_decay=0.1, maximize=True, backend=name)
                  for name in params}
    for step in range(4):
        grads = [rng.standard_normal(shape).astype(dtype) for shape in LARGE_SHAPES]
        if values == "extreme" and step == 2:
            grads[2][1, 3, 4] = -np.inf
            grads[6][:5] = np.finfo(dtype).smallest_subnormal
        for optimizer in optimizers.values():
            optimizer.step(grads)
    for a, b in zip(params[backend], params["reference"]):
        assert_bits_equal(a, b)
    assert_same_state(optimizers[backend], optimizers["reference"], "Adafactor")


@pytest.mark.parametrize("backend", FAST_BACKENDS)
@pytest.mark.parametrize(("name", "options"), [("Adafactor", {}), ("LAMB", dict(weight_decay=0.01))])
def test_whole_tensor_optimizers_step_the_same_bits_whatever_the_thread_count(name, options, backend):
    """A whole-tensor kernel runs on one thread, so its sums never depend on set_num_threads."""
    rng = np.random.default_rng(4)
    initial = rng.standard_normal((300, 700)).astype(np.float32)
    grads = [rng.standard_normal((300, 700)).astype(np.float32) for _ in range(3)]
    results = []
    before = (_threads._num_threads, _threads._min_size)
    try:
        for threads in (1, 2):
            fastopt.set_num_threads(threads, min_size=1)
            param = initial.copy()
            opt = fastopt.OPTIMIZERS[name]([param], backend=backend, **options)
            for grad in grads:
                opt.step([grad])
            results.append(param)
    finally:
        fastopt.set_num_threads(*before)
    assert_bits_equal(results[1], results[0])


# --------------------------------------------------------------------------------------------
# Rule 4: matrix products (Muon's Newton-Schulz iteration)
# --------------------------------------------------------------------------------------------
def python_matmul(left, right) -> list[list[float]]:
    """Rule 4 written out in Python floats: each element the rule-2 run of its float64 products."""
    depth = left.shape[1]
    return [[python_total([float(left[i, k]) * float(right[k, j]) for k in range(depth)]) for j in range(right.shape[1])]
            for i in range(left.shape[0])]


@pytest.fixture(scope="module")
def numba_matmul():
    from numba import njit

    from fastopt._sums import _numba

    @njit
    def matmul(left, right_rows, out, symmetric):  # out = left @ right_rows.T, on flat copies
        _numba.matmul_rows(left.ravel(), 0, right_rows.ravel(), 0, left.shape[0], right_rows.shape[0], left.shape[1],
                           out.reshape(-1), 0, symmetric)

    return matmul


def check_matmul(left, right, numba_matmul, symmetric=False):
    """The three twins against the Python transcription, rounded to the operands' dtype."""
    from fastopt._sums import sums as cython_sums

    dtype = left.dtype
    with np.errstate(all="ignore"):  # overflow to inf and inf - inf are part of what is checked
        expected = np.array(python_matmul(left, right), dtype=np.float64).reshape(left.shape[0], right.shape[1]).astype(dtype)
        reference = _sums.matmul(left, right).astype(dtype)
    right_rows = np.ascontiguousarray(right.T)
    twins = {"reference": reference}
    for name, twin in [("numba", numba_matmul), ("cython", cython_sums.matmul)]:
        out = np.full((left.shape[0], right.shape[1]), np.nan, dtype)
        twin(np.ascontiguousarray(left), right_rows, out, symmetric)
        twins[name] = out
    for name, got in twins.items():
        assert_bits_equal(got, expected, f"{name} {left.shape} @ {right.shape}")


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_three_twins_multiply_matrices_in_the_rules_order(numba_matmul, dtype, data):
    """Any sizes (0, 1 x N, N x 1, odd, across blocks of 8 along k and the compiled twins' 2 x 2
    tiles) and any values: huge, subnormal, inf, NaN."""
    elements = data.draw(st.sampled_from([finite_elements, any_elements]))(dtype)
    rows, depth, cols = (data.draw(st.one_of(st.integers(0, 5), st.integers(6, 40))) for _ in range(3))
    left = data.draw(hynp.arrays(dtype, (rows, depth), elements=elements))
    right = data.draw(hynp.arrays(dtype, (depth, cols), elements=elements))
    check_matmul(left, right, numba_matmul)


@pytest.mark.parametrize("dtype", DTYPES)
@given(data=st.data())
def test_a_symmetric_product_has_the_bits_of_the_full_one(numba_matmul, dtype, data):
    """``X @ X.T`` computed as one triangle and copied: the same bits as every element computed."""
    elements = data.draw(st.sampled_from([finite_elements, any_elements]))(dtype)
    rows, depth = data.draw(st.integers(0, 30)), data.draw(st.integers(0, 40))
    x = data.draw(hynp.arrays(dtype, (rows, depth), elements=elements))
    check_matmul(x, np.ascontiguousarray(x.T), numba_matmul, symmetric=True)


def test_products_of_every_small_shape(numba_matmul):
    rng = np.random.default_rng(5)
    for dtype in DTYPES:
        for rows, depth, cols in [(1, 1, 1), (1, 17, 1), (3, 0, 2), (0, 4, 3), (2, 9, 5), (5, 16, 4), (7, 23, 9), (1, 64, 33)]:
            left = (rng.standard_normal((rows, depth)) * 10.0 ** rng.integers(-10, 10, (rows, depth))).astype(dtype)
            right = (rng.standard_normal((depth, cols)) * 10.0 ** rng.integers(-10, 10, (depth, cols))).astype(dtype)
            check_matmul(left, right, numba_matmul)


def test_a_float32_product_is_float64_accurate():
    """The float64 products and lanes: each element of a float32 product of 1,000 terms is the
    exact sum rounded to float32, within an ulp (math.fsum is exact)."""
    rng = np.random.default_rng(6)
    left, right = rng.standard_normal((3, 1000)).astype(np.float32), rng.standard_normal((1000, 4)).astype(np.float32)
    exact = np.array([[math.fsum(left[i].astype(np.float64) * right[:, j].astype(np.float64)) for j in range(4)] for i in range(3)])
    got = _sums.matmul(left, right)
    assert np.max(np.abs(got - exact) / np.abs(exact)) <= 1e-12
