"""The float16 and bfloat16 conversions of fastopt._rounding, in both compiled backends, against
NumPy's float16 and ml_dtypes' bfloat16 on every 16-bit value and on the rounding cases around
each of them; the whole float32 range in the heavy run."""

from pathlib import Path

import numpy as np
import pytest

from fastopt import _rounding
from fastopt._engine.kernels import _conversions

ml_dtypes = pytest.importorskip("ml_dtypes")  # a test dependency: bfloat16 is what is tested here

FORMATS = {"float16": (np.dtype(np.float16), _rounding.FLOAT16), "bfloat16": (np.dtype(ml_dtypes.bfloat16), _rounding.BFLOAT16)}
BACKENDS = ("numba", "cython")
ALL_BITS = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16)


def widened(backend, bits, storage):
    out = np.empty(bits.size, np.float32)
    _conversions(backend)[0](bits, out, storage)
    return out


def narrowed(backend, values, storage):
    out = np.empty(values.size, np.uint16)
    _conversions(backend)[1](np.ascontiguousarray(values, np.float32), out, storage)
    return out


def rounding_cases() -> np.ndarray:
    """float32 values around every 16-bit value of both formats: the value, one float32 ulp
    either side, the halfway points to its neighbour (ties), one ulp either side of those, and
    random low bits; also the float16 subnormal range densely and every NaN payload class."""
    high = ALL_BITS.astype(np.uint32) << 16
    rng = np.random.default_rng(0)
    pieces = [high + low for low in (0, 1, 0x7FFF, 0x8000, 0x8001, 0xFFFF)]
    pieces.append(high + rng.integers(0, 1 << 16, high.size, dtype=np.uint32))
    f16 = ALL_BITS.view(np.float16).astype(np.float32).view(np.uint32)  # every float16, widened
    f16 = f16[np.isfinite(f16.view(np.float32))]
    for delta in (0, 1, 0xFFF, 0x1000, 0x1001, 0x1FFF):
        pieces += [f16 + delta, f16 - delta]
    pieces.append(np.arange(0x33000000 - 16, 0x38800000 + 16, 97, dtype=np.uint32))  # float16 subnormals
    pieces.append(np.array([0x477FEFFF, 0x477FF000, 0x477FF001, 0x47800000, 0x7F7FFFFF, 0x7F800000], np.uint32))
    cases = np.concatenate(pieces)
    return np.concatenate([cases, cases | np.uint32(0x80000000)])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", FORMATS)
def test_widening_every_16_bit_value_is_the_libraries(name, backend):
    dtype, storage = FORMATS[name]
    expected = ALL_BITS.view(dtype).astype(np.float32)  # exact, payloads kept by both libraries
    np.testing.assert_array_equal(widened(backend, ALL_BITS, storage).view(np.uint32), expected.view(np.uint32))


def check_narrowing(backend, name, values):
    dtype, storage = FORMATS[name]
    with np.errstate(all="ignore"):
        expected = values.astype(dtype).view(np.uint16)
    actual = narrowed(backend, values, storage)
    nan = np.isnan(values)
    np.testing.assert_array_equal(actual[~nan], expected[~nan], err_msg=f"{name} {backend}")
    # a NaN stays a NaN with its sign (NumPy's float16 NaN payload may depend on its SIMD path)
    assert np.isnan(actual[nan].view(dtype).astype(np.float32)).all()
    np.testing.assert_array_equal(actual[nan] >> 15, values[nan].view(np.uint32) >> 31)
    return actual


@pytest.mark.parametrize("name", FORMATS)
def test_narrowing_rounds_to_nearest_even_as_the_libraries_do(name):
    values = rounding_cases().view(np.float32)
    numba_bits = check_narrowing("numba", name, values)
    cython_bits = check_narrowing("cython", name, values)
    np.testing.assert_array_equal(numba_bits, cython_bits)  # NaNs included: one rule, two twins


@pytest.mark.parametrize("name", FORMATS)
def test_narrowing_nans_follows_the_documented_rule(name):
    """bfloat16: the quiet NaN with the sign (ml_dtypes); float16: the top 10 payload bits, at
    least one set (NumPy's scalar rule), whatever NumPy's own SIMD path does on this CPU."""
    payloads = np.array([1, 0x1FFF, 0x2000, 0x200000, 0x3FFFFF, 0x400000, 0x7FFFFF], np.uint32)
    u = np.concatenate([0x7F800000 | payloads, 0xFF800000 | payloads]).astype(np.uint32)
    if name == "bfloat16":
        expected = ((u >> 16) & 0x8000) | 0x7FC0
    else:
        top = (u >> 13) & 0x3FF
        expected = ((u >> 16) & 0x8000) | 0x7C00 | np.where(top == 0, 1, top)
    for backend in BACKENDS:
        np.testing.assert_array_equal(narrowed(backend, u.view(np.float32), FORMATS[name][1]), expected.astype(np.uint16))


@pytest.mark.parametrize("name", FORMATS)
def test_round_trip_of_every_16_bit_value_is_exact(name):
    _, storage = FORMATS[name]
    for backend in BACKENDS:
        back = narrowed(backend, widened(backend, ALL_BITS, storage), storage)
        nan = np.isnan(ALL_BITS.view(FORMATS[name][0]).astype(np.float32))
        np.testing.assert_array_equal(back[~nan], ALL_BITS[~nan])


def test_the_codes_and_block_are_one_in_python_numba_and_cython():
    from fastopt._rounding import _numba

    assert (_numba.FLOAT16, _numba.BFLOAT16) == (_rounding.FLOAT16, _rounding.BFLOAT16)
    text = (Path(_rounding.__file__).parent / "rounding.pxd").read_text()
    assert f"FLOAT16 = {_rounding.FLOAT16}" in text and f"BFLOAT16 = {_rounding.BFLOAT16}" in text
    assert f"BLOCK = {_rounding.BLOCK}" in text


@pytest.mark.heavy
@pytest.mark.parametrize("name", FORMATS)
def test_narrowing_every_float32(name):
    """All 2**32 float32 values, in chunks (minutes)."""
    step = 1 << 26
    for start in range(0, 1 << 32, step):
        values = np.arange(start, start + step, dtype=np.uint64).astype(np.uint32).view(np.float32)
        check_narrowing("numba", name, values)
        check_narrowing("cython", name, values)
