# float32 <-> float16 / bfloat16 for the Cython loops, on the 16 bits as an unsigned integer: the
# rule is in fastopt/_rounding/__init__.py (to nearest, ties to even; NaN as ml_dtypes and NumPy).
# Bits move between float and uint32 through memcpy, which gcc compiles to a register move.

from libc.stdint cimport uint16_t, uint32_t
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


cdef inline float widen_float16(uint16_t h) noexcept nogil:
    cdef uint32_t sign = (<uint32_t> h & 0x8000) << 16
    cdef uint32_t exponent = (h >> 10) & 0x1F
    cdef uint32_t significand = h & 0x3FF
    if exponent == 0x1F:  # infinity or NaN, payload kept
        return bits_float(sign | 0x7F800000 | (significand << 13))
    if exponent != 0:  # normal: exponent bias 15 -> 127
        return bits_float(sign | ((exponent + 112) << 23) | (significand << 13))
    if significand == 0:
        return bits_float(sign)
    exponent = 113  # subnormal, significand * 2^-24: shift its leading 1 into the implicit bit
    while (significand & 0x400) == 0:
        significand <<= 1
        exponent -= 1
    return bits_float(sign | (exponent << 23) | ((significand & 0x3FF) << 13))


cdef inline uint16_t narrow_float16(float x) noexcept nogil:
    cdef uint32_t u = float_bits(x)
    cdef uint32_t sign = (u >> 16) & 0x8000
    cdef uint32_t a = u & 0x7FFFFFFF
    cdef uint32_t b, significand, shift, kept, dropped, half
    if a > 0x7F800000:  # NaN: the top 10 payload bits, at least one of them set
        significand = (a >> 13) & 0x3FF
        return <uint16_t> (sign | 0x7C00 | (significand if significand != 0 else 1))
    if a >= 0x47800000:  # 65536 or more (and infinity): infinity
        return <uint16_t> (sign | 0x7C00)
    if a >= 0x38800000:  # a normal float16: re-bias, round 13 bits away (a carry may reach infinity)
        b = a - 0x38000000
        return <uint16_t> (sign | ((b + 0x0FFF + ((b >> 13) & 1)) >> 13))
    if a <= 0x33000000:  # at most 2^-25, half the smallest subnormal: zero (the tie goes to even)
        return <uint16_t> sign
    significand = (a & 0x7FFFFF) | 0x800000  # subnormal: units of 2^-24
    shift = 126 - (a >> 23)
    kept = significand >> shift
    dropped = significand & ((<uint32_t> 1 << shift) - 1)
    half = <uint32_t> 1 << (shift - 1)
    if dropped > half or (dropped == half and (kept & 1)):
        kept += 1
    return <uint16_t> (sign | kept)


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
