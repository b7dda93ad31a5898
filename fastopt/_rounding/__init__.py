r"""Low precision: parameters stored in 16 bits, every step computed in float32.

A float16 or bfloat16 parameter (NumPy's ``float16``; ``ml_dtypes.bfloat16``, the dtype JAX
uses, an optional dependency) is stepped as follows, by every optimizer on every backend:

1. its optimizer state (moments, accumulators) is **float32**;
2. each element of the parameter and of its gradient is **widened** to float32 (exact: every
   float16 and bfloat16 value is a float32 value);
3. the optimizer's float32 loop computes the new value, with the same operations, in the same
   order, as for a float32 parameter (so the bits are those of the float32 step on the widened
   values);
4. the new value is **rounded once** to the parameter's dtype, to nearest, ties to even.

The reference (:func:`step_in_float32`) does 2-4 with NumPy's ``astype`` on whole arrays. The
compiled twins never hold a float32 copy of the parameter in memory (which sees 2 + 2 bytes of
parameter and gradient per element instead of 4 + 4): Cython steps bfloat16 in one pass, with its
loop rewritten to widen each load and round each store (``fastopt/_native/generate.py``,
``bfloat16_loop``), and float16 a block of ``BLOCK`` elements at a time (widened into the CPU's
first-level cache, stepped by the float32 loop, rounded back: float16's conversions vectorise
only in loops of their own); Numba goes a block at a time for both. The conversions are written
once per backend on the 16 bits as an unsigned integer (``rounding.pxd`` for Cython,
``_numba.py`` for Numba: neither compiler knows bfloat16).
Their rule, for a float32 ``x`` whose bits are the unsigned integer ``u``:

**bfloat16** is float32's upper half (same exponent range, 8 bits of significand instead of
24)::

    widen(b)  = b << 16
    narrow(u) = (u + 0x7FFF + ((u >> 16) & 1)) >> 16      # to nearest, ties to even
    narrow(NaN) = sign | 0x7FC0                            # the quiet NaN, as ml_dtypes

Adding ``0x7FFF`` plus the lowest kept bit rounds the 16 dropped bits: above half carries into
the kept bits, below half does not, exactly half carries only when the kept value is odd. A carry
out of the largest finite significand gives infinity, as it should.

**float16** has 5 exponent bits (bias 15) and 10 significand bits; ``a = u & 0x7FFFFFFF``::

    a > 0x7F800000 (NaN)        sign | 0x7C00 | top 10 payload bits (at least one set), as NumPy
    a >= 0x47800000 (>= 65536)  sign | 0x7C00                                    (infinity)
    a >= 0x38800000 (normal)    b = a - 0x38000000 (exponent 127 -> 15 bias);
                                sign | (b + 0x0FFF + ((b >> 13) & 1)) >> 13      (ties to even)
    a <= 0x33000000 (<= 2^-25)  sign                                             (zero)
    otherwise (subnormal)       the 24-bit significand m shifted right by 126 - exponent,
                                rounded to nearest, ties to even (may carry to the smallest normal)

and widening a float16 is exact: a normal one re-biases its exponent, a subnormal one ``m * 2^-24``
is normalised, infinity and NaN keep their sign and payload. ``tests/test_rounding.py`` checks
both backends' conversions against ``ml_dtypes`` and NumPy on all 65,536 16-bit values, and on
every float32 rounding case near each of them (ties, just above and below, NaN payloads).

**Stochastic rounding** (bfloat16; not yet an option of the optimizers) rounds ``x`` up or down
to one of its two bfloat16 neighbours with probabilities that make the result unbiased: its
expected value is ``x``. Small updates then survive on average instead of being rounded away
(an update below half a bfloat16 ulp never changes a parameter rounded to nearest). The random
bits come from a counter-based generator, so that every backend draws the same bits for the same
element, on any number of threads, and a run resumed from a checkpoint draws what it would have:

1. a step's 32-bit **key** is made from three integers by SplitMix64's finaliser ``mix64``
   (Steele, Lea & Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014)::

       key = mix64(mix64(mix64(seed) ^ stream) ^ step) & 0xFFFFFFFF

   (``seed`` the user's, ``stream`` which tensor, ``step`` which step; all arithmetic mod 2^64);
2. element ``index`` (its position in the tensor, mod 2^32) draws ``r = lowbias32(index ^ key)``,
   Wellons' 32-bit integer hash ("Prospecting for hash functions", 2018)::

       x ^= x >> 16;  x *= 0x7FEB352D;  x ^= x >> 15;  x *= 0x846CA68B;  x ^= x >> 16

   a bijection, so no two elements of a tensor (below 2^32 elements) draw the same bits;
3. ``narrow(u) = (u + (r >> 16)) >> 16``: the 16 dropped bits plus 16 random ones carry into the
   kept bits with probability (dropped bits) / 2^16. NaN gives the quiet NaN, as to nearest; an
   infinity stays infinite, and a finite value above the largest bfloat16 may round to infinity
   (with the probability its distance says).

A NaN's payload after arithmetic is the CPU's business: the backends' results agree on which
elements are NaN (and the tests compare them NaN-aware), not necessarily on a NaN's bits.
"""

from __future__ import annotations

import numpy as np

try:  # optional: bfloat16 arrays exist only where ml_dtypes is installed
    import ml_dtypes
except ImportError:  # pragma: no cover - exercised by the test that hides ml_dtypes
    ml_dtypes = None

BLOCK = 2048
"""Elements per block in the compiled twins: two float32 blocks are 16 KiB, in L1 cache."""

FLOAT16, BFLOAT16 = 0, 1
"""The storage codes the compiled conversions take (``rounding.pxd`` declares the same)."""

FLOAT32 = np.dtype(np.float32)


def bfloat16() -> np.dtype | None:
    """``ml_dtypes.bfloat16`` as a NumPy dtype, or None where ml_dtypes is not installed."""
    return np.dtype(ml_dtypes.bfloat16) if ml_dtypes is not None else None


def storage_code(dtype: np.dtype) -> int | None:
    """``FLOAT16`` or ``BFLOAT16`` for a 16-bit parameter dtype; None for any other."""
    if dtype == np.float16:
        return FLOAT16
    if ml_dtypes is not None and dtype == ml_dtypes.bfloat16:
        return BFLOAT16
    return None


def is_low_precision(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is stored in 16 bits and stepped in float32."""
    return storage_code(dtype) is not None


def state_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype of a parameter's optimizer state and of its step's arithmetic: float32 for a
    16-bit parameter, the parameter's own otherwise."""
    return FLOAT32 if is_low_precision(dtype) else dtype


def widen(values: np.ndarray) -> np.ndarray:
    """A float32 copy of a float16 or bfloat16 array (exact)."""
    return values.astype(np.float32)


def narrow(values: np.ndarray, out: np.ndarray) -> None:
    """``values`` (float32) rounded to nearest, ties to even, into ``out`` (float16 or bfloat16)."""
    out[...] = values.astype(out.dtype)


MASK64 = (1 << 64) - 1


def mix64(z: int) -> int:
    """SplitMix64's finaliser (its output function), on an unsigned 64-bit integer."""
    z = (z + 0x9E3779B97F4A7C15) & MASK64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def stochastic_key(seed: int, stream: int, step: int) -> int:
    """The 32-bit key of one stochastic rounding of one tensor (rule 1 above)."""
    for name, value in (("seed", seed), ("stream", stream), ("step", step)):
        if not 0 <= value <= MASK64:
            raise ValueError(f"{name} must be an integer in [0, 2**64), got {value}")
    return mix64(mix64(mix64(seed) ^ stream) ^ step) & 0xFFFFFFFF


def random_bits(key: int, index: np.ndarray) -> np.ndarray:
    """``lowbias32(index ^ key)`` (rule 2 above) for a uint32 array of indices, as uint32."""
    x = np.asarray(index, np.uint32) ^ np.uint32(key)
    x ^= x >> np.uint32(16)
    x *= np.uint32(0x7FEB352D)  # uint32 arithmetic wraps mod 2^32, as C's does
    x ^= x >> np.uint32(15)
    x *= np.uint32(0x846CA68B)
    x ^= x >> np.uint32(16)
    return x


def narrow_stochastic(values: np.ndarray, out: np.ndarray, key: int, offset: int = 0) -> None:
    """``values`` (float32) rounded stochastically into ``out`` (bfloat16) (rule 3 above), element
    ``k`` drawing the bits of index ``offset + k``."""
    if out.dtype != bfloat16():
        raise TypeError(f"stochastic rounding is defined for bfloat16 only, not {out.dtype}")
    u = np.ascontiguousarray(values, np.float32).reshape(-1).view(np.uint32)
    index = (np.arange(u.size, dtype=np.uint64) + np.uint64(offset)).astype(np.uint32)  # mod 2^32
    rounded = (u + (random_bits(key, index) >> np.uint32(16))) >> np.uint32(16)
    quiet_nan = ((u >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0)
    bits = np.where((u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000), quiet_nan, rounded)
    out.reshape(-1).view(np.uint16)[...] = bits.astype(np.uint16)


def step_in_float32(kernel, param, grad, buffers, scalars, num_threads) -> None:
    """The reference's low-precision step, steps 2-4 above on whole arrays: ``kernel`` (a float32
    kernel) on float32 copies of ``param`` and ``grad``, and the new values rounded back once."""
    wide_param = widen(param)
    kernel(wide_param, widen(grad), *buffers, *scalars, num_threads)
    narrow(wide_param, param)
