# float32 <-> float16 / bfloat16 for the Cython loops, on the 16 bits as an unsigned integer: the
# rule is in fastopt/_rounding/__init__.py (to nearest, ties to even; NaN as ml_dtypes and NumPy).
# Bits move between float and uint32 through memcpy, which gcc compiles to a register move.

from libc.stdint cimport int32_t, uint16_t, uint32_t
from libc.string cimport memcpy

cdef enum:
    FLOAT16 = 0     # fastopt._rounding.FLOAT16
    BFLOAT16 = 1    # fastopt._rounding.BFLOAT16
    BLOCK = 2048    # fastopt._rounding.BLOCK


cdef inline uint32_t float_bits(float x) noexcept nogil:
    cdef uint32_t u
    memcpy(&u, &x, 4)
    return u


cdef inline float bits_float(uint32_t u) noexcept nogil:
    cdef float x
    memcpy(&x, &u, 4)
    return x


cdef inline float widen_bfloat16(uint16_t b) noexcept nogil:
    return bits_float(<uint32_t> b << 16)


cdef inline uint16_t narrow_bfloat16(float x) noexcept nogil:
    # both results computed and one selected: no branch, so gcc vectorises the block's loop
    cdef uint32_t u = float_bits(x)
    cdef uint32_t rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    cdef uint32_t quiet_nan = ((u >> 16) & 0x8000) | 0x7FC0  # NaN: the quiet NaN, sign kept
    return <uint16_t> (quiet_nan if (u & 0x7FFFFFFF) > 0x7F800000 else rounded)


cdef inline uint32_t lowbias32(uint32_t x) noexcept nogil:
    # stochastic rounding's per-element bits (fastopt/_rounding/__init__.py, rule 2)
    x ^= x >> 16
    x *= 0x7FEB352Du
    x ^= x >> 15
    x *= 0x846CA68Bu
    x ^= x >> 16
    return x


cdef inline uint16_t narrow_bfloat16_stochastic(float x, uint32_t random) noexcept nogil:
    # up or down with the probability the 16 dropped bits say (rule 3); NaN as to nearest
    cdef uint32_t u = float_bits(x)
    cdef uint32_t rounded = (u + (random >> 16)) >> 16
    cdef uint32_t quiet_nan = ((u >> 16) & 0x8000) | 0x7FC0
    return <uint16_t> (quiet_nan if (u & 0x7FFFFFFF) > 0x7F800000 else rounded)


cdef inline float widen_float16(uint16_t h) noexcept nogil:
    # exponent and significand moved to float32's places and scaled by 2^112 (the biases' 127 - 15):
    # exact, a subnormal float16 included (it becomes a normal float32); infinity and NaN keep
    # their payload. Both computed, one selected: no branch, so the block's loop vectorises.
    # (signed comparisons of values below 2^31: SSE2 has no unsigned ones)
    cdef uint32_t sign = (<uint32_t> h & 0x8000) << 16
    cdef int32_t magnitude = h & 0x7FFF
    cdef uint32_t finite = float_bits(bits_float(<uint32_t> magnitude << 13) * bits_float(0x77800000))  # x 2^112
    cdef uint32_t special = 0x7F800000 | (<uint32_t> (magnitude & 0x3FF) << 13)
    return bits_float(sign | (special if magnitude >= 0x7C00 else finite))


cdef inline uint16_t narrow_float16(float x) noexcept nogil:
    # every case computed, one selected (no branch):
    cdef uint32_t u = float_bits(x)
    cdef uint32_t sign = (u >> 16) & 0x8000
    cdef int32_t a = u & 0x7FFFFFFF  # |x|'s bits, compared as signed (below 2^31)
    cdef uint32_t payload = (a >> 13) & 0x3FF
    # NaN: the top 10 payload bits, at least one of them set
    cdef uint32_t nan = 0x7C00 | (payload if payload != 0 else 1)
    # a normal float16: re-bias (127 -> 15), round 13 bits away to nearest even (may carry to infinity)
    cdef uint32_t normal = (<uint32_t> a - 0x38000000 + 0x0FFF + ((a >> 13) & 1)) >> 13
    # below 2^-14: adding 0.5 (whose ulp is 2^-24, float16's subnormal unit) rounds |x| to
    # nearest even in that unit; the sum's low bits are the float16 subnormal (or 0, or the
    # smallest normal, 0x400)
    cdef uint32_t subnormal = float_bits(bits_float(<uint32_t> a) + bits_float(0x3F000000)) - 0x3F000000  # + 0.5f
    # selects, not an if-chain: gcc keeps the loop that inlines this vectorised (65536 or more,
    # infinity included, rounds to infinity)
    cdef uint32_t result = normal if a >= 0x38800000 else subnormal
    result = 0x7C00 if a >= 0x47800000 else result
    result = nan if a > 0x7F800000 else result
    return <uint16_t> (sign | result)


cdef inline void widen_block(const uint16_t* bits, float* out, Py_ssize_t n, int storage) noexcept nogil:
    cdef Py_ssize_t i
    if storage == BFLOAT16:
        for i in range(n):
            out[i] = widen_bfloat16(bits[i])
    else:
        for i in range(n):
            out[i] = widen_float16(bits[i])


cdef inline void narrow_block(const float* values, uint16_t* out, Py_ssize_t n, int storage) noexcept nogil:
    cdef Py_ssize_t i
    if storage == BFLOAT16:
        for i in range(n):
            out[i] = narrow_bfloat16(values[i])
    else:
        for i in range(n):
            out[i] = narrow_float16(values[i])


cdef inline void narrow_stochastic_block(const float* values, uint16_t* out, Py_ssize_t n, uint32_t key,
                                         Py_ssize_t offset) noexcept nogil:
    # element k draws the bits of index offset + k (mod 2^32)
    cdef Py_ssize_t i
    for i in range(n):
        out[i] = narrow_bfloat16_stochastic(values[i], lowbias32(<uint32_t> (offset + i) ^ key))
