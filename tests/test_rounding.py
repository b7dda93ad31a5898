"""The float16 and bfloat16 conversions of fastopt._rounding, in both compiled backends, against
NumPy's float16 and ml_dtypes' bfloat16 on every 16-bit value and on the rounding cases around
each of them; the whole float32 range in the heavy run."""

import functools
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


def _cython_builds_here():
    """The builds this CPU runs and this install compiled (the kernels' builds: the sanitizer's
    install compiles the baseline only); the conversions must exist in each of them."""
    from fastopt import _backends
    from fastopt._native import cpu

    builds = []
    for build, (_, level) in _backends.CYTHON_BUILDS.items():
        if cpu.supports(level):
            try:
                _backends._import_cython_build("sgd", build)
            except ImportError:
                continue
            builds.append(build)
    return builds


@pytest.mark.parametrize("build", _cython_builds_here())
@pytest.mark.parametrize("name", FORMATS)
def test_every_build_of_the_cython_conversions_is_the_same(name, build):
    """fastopt._rounding.rounding is built per instruction set, as the kernels are (whole-tensor
    16-bit steps convert with the best build); every build this CPU runs gives the bits of the
    one the other tests check, on every 16-bit value and every rounding case."""
    import importlib

    from fastopt import _backends

    dtype, storage = FORMATS[name]
    module = importlib.import_module(f"fastopt._rounding.rounding{_backends.CYTHON_BUILDS[build][0]}")
    values = rounding_cases().view(np.float32)
    wide = np.empty(ALL_BITS.size, np.float32)
    module.widen(ALL_BITS, wide, storage)
    np.testing.assert_array_equal(wide.view(np.uint32), widened("cython", ALL_BITS, storage).view(np.uint32))
    bits = np.empty(values.size, np.uint16)
    module.narrow(values, bits, storage)
    np.testing.assert_array_equal(bits, narrowed("cython", values, storage))
    if name == "bfloat16":
        np.testing.assert_array_equal(stochastic(module, values, 5, 3), stochastic("cython", values, 5, 3))


def test_the_whole_tensor_conversions_use_the_best_build_here():
    from fastopt import _backends

    expected = _backends.import_best_cython_build("fastopt._rounding.rounding")
    assert _conversions("cython")[0] is expected.widen
    assert expected.__name__.endswith(_backends.CYTHON_BUILDS[_backends.cython_build()][0])


@pytest.mark.heavy
@pytest.mark.parametrize("name", FORMATS)
def test_narrowing_every_float32(name):
    """All 2**32 float32 values, in chunks (minutes)."""
    step = 1 << 26
    for start in range(0, 1 << 32, step):
        values = np.arange(start, start + step, dtype=np.uint64).astype(np.uint32).view(np.float32)
        check_narrowing("numba", name, values)
        check_narrowing("cython", name, values)


# ---- stochastic rounding to bfloat16 (fastopt._rounding, rules 1-3) --------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hynp  # noqa: E402


def stochastic(backend, values, key, offset):
    """bfloat16 bits of ``values`` rounded stochastically by ``backend``."""
    values = np.ascontiguousarray(values, np.float32)
    if backend == "reference":
        out = np.empty(values.size, ml_dtypes.bfloat16)
        _rounding.narrow_stochastic(values, out, key, offset)
        return out.view(np.uint16)
    out = np.empty(values.size, np.uint16)
    if backend == "cython":
        from fastopt._rounding import rounding

        rounding.narrow_stochastic(values, out, key, offset)
    elif backend != "numba":  # a module: one build of the Cython twin
        backend.narrow_stochastic(values, out, key, offset)
    else:
        _numba_stochastic()(values, out, key, offset)
    return out


@functools.cache
def _numba_stochastic():
    from fastopt._jit import jit_kernel
    from fastopt._rounding import _numba

    return jit_kernel(_numba.narrow_stochastic_block)


def lowbias32(x: int) -> int:
    """Rule 2's hash, transcribed on Python integers."""
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


@given(hynp.arrays(np.float32, st.integers(0, 300), elements=st.floats(width=32)),
       st.integers(0, 2**32 - 1), st.integers(0, 2**40))
def test_stochastic_rounding_is_bit_identical_in_the_three_twins(values, key, offset):
    """Any float32 (NaN, infinities, subnormals), any key, offsets across the 2^32 wrap."""
    expected = stochastic("reference", values, key, offset)
    for backend in BACKENDS:
        np.testing.assert_array_equal(stochastic(backend, values, key, offset), expected, err_msg=backend)


@pytest.mark.parametrize("backend", ("reference", *BACKENDS))
def test_stochastic_rounding_gives_a_neighbour_and_keeps_what_bfloat16_holds(backend):
    """Every result is the value truncated to bfloat16 or the next bfloat16 away from zero; a
    value bfloat16 holds exactly (every one of the 65,536, NaN aside) comes back unchanged."""
    cases = rounding_cases()
    values = cases.view(np.float32)
    finite = ~np.isnan(values)
    bits = stochastic(backend, values, key=12345, offset=0).astype(np.uint32)
    truncated = cases >> np.uint32(16)
    assert np.all((bits[finite] == truncated[finite]) | (bits[finite] == truncated[finite] + 1))
    exact = ALL_BITS.astype(np.uint32) << np.uint32(16)
    exact_values = exact.view(np.float32)
    kept = ~np.isnan(exact_values)
    np.testing.assert_array_equal(stochastic(backend, exact_values, 99, 5)[kept], ALL_BITS[kept])
    nan_bits = stochastic(backend, values[~finite], 7, 0)
    np.testing.assert_array_equal(nan_bits & 0x7FFF, 0x7FC0)  # the quiet NaN, sign kept


@pytest.mark.parametrize("fraction", [1 / 65536, 0.1, 0.5, 0.9])
def test_stochastic_rounding_is_unbiased(fraction):
    """2^20 copies of a value a ``fraction`` of the way from one bfloat16 to the next: the share
    rounded up is ``fraction`` within five standard deviations, for negative values too, and the
    mean of the results is the value."""
    count = 1 << 20
    low = np.uint32(0x3F81 << 16)  # a bfloat16 near 1.0 (its float32 bits, low 16 zero)
    value_bits = low + np.uint32(round(fraction * 65536))
    for sign in (0, 0x80000000):
        values = np.full(count, value_bits | np.uint32(sign), np.uint32).view(np.float32)
        bits = stochastic("cython", values, _rounding.stochastic_key(3, 1, 4), 0).astype(np.uint32)
        up = np.mean(bits != (low >> np.uint32(16)) | np.uint32(sign >> 16))
        exact = round(fraction * 65536) / 65536
        assert abs(up - exact) <= 5 * np.sqrt(exact * (1 - exact) / count) + 1e-12
        results = (bits << np.uint32(16)).view(np.float32).astype(np.float64)
        assert abs(results.mean() - float(values[0])) <= 5 * np.sqrt(exact * (1 - exact) / count) * 2**-7 + 1e-12


def test_the_draws_are_the_documented_hash_of_the_index_and_key():
    rng = np.random.default_rng(5)
    index = rng.integers(0, 2**32, 1000, dtype=np.uint64).astype(np.uint32)
    key = 0x9E3779B9
    expected = np.array([lowbias32(int(i) ^ key) for i in index], np.uint32)
    np.testing.assert_array_equal(_rounding.random_bits(key, index), expected)
    # a bijection: distinct indices draw distinct bits (no two elements of a tensor alike)
    assert np.unique(_rounding.random_bits(key, np.arange(1 << 20, dtype=np.uint32))).size == 1 << 20


def test_a_tensor_rounded_in_pieces_with_their_offsets_is_rounded_whole():
    """What lets threads (or blocks) round their own chunks: the bits depend on the index only."""
    values = np.random.default_rng(6).standard_normal(10_000).astype(np.float32)
    whole = stochastic("cython", values, 77, 0)
    for backend in ("reference", *BACKENDS):
        pieces = [stochastic(backend, values[start:start + 3000], 77, start) for start in range(0, 10_000, 3000)]
        np.testing.assert_array_equal(np.concatenate(pieces), whole, err_msg=backend)


def test_the_key_depends_on_seed_stream_and_step_and_is_checked():
    keys = {_rounding.stochastic_key(seed, stream, step) for seed in range(4) for stream in range(4) for step in range(4)}
    assert len(keys) == 64 and all(0 <= key < 2**32 for key in keys)
    assert _rounding.stochastic_key(2**64 - 1, 0, 0) != _rounding.stochastic_key(0, 0, 0)
    with pytest.raises(ValueError, match=r"step must be an integer in \[0, 2\*\*64\), got -1"):
        _rounding.stochastic_key(0, 0, -1)


def test_stochastic_rounding_is_defined_for_bfloat16_only():
    with pytest.raises(TypeError, match="bfloat16 only, not float16"):
        _rounding.narrow_stochastic(np.zeros(3, np.float32), np.zeros(3, np.float16), 1)
