"""The summation order (fastopt._sums): its three twins against a pure-Python transcription of the
rule, and Adafactor, whose norms and means use it, bit for bit across backends on shapes large
enough to cross every block (8 lanes, 64-column blocks, many rows).

The rule: float64 accumulation; a run of values in 8 lanes (value k into lane k % 8, each lane
from +0.0 in order), the lanes combined as ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)); a
column in row order.
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
