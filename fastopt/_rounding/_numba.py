"""The conversions of :mod:`fastopt._rounding`, compiled by Numba (which has no float16 or
bfloat16): the 16 bits as ``uint16``, the float32 bits through a ``uint32`` view of the array.
Integer arithmetic is done in int64, where every intermediate value fits."""

import numpy as np
from numba.extending import register_jitable

FLOAT16, BFLOAT16 = 0, 1  # fastopt._rounding's storage codes


@register_jitable
def widen_bits(h, storage):
    """The float32 bits of the 16-bit value ``h``."""
    h = np.int64(h)
    if storage == BFLOAT16:
        return h << 16
    sign = (h & 0x8000) << 16
    exponent = (h >> 10) & 0x1F
    significand = h & 0x3FF
    if exponent == 0x1F:  # infinity or NaN, payload kept
        return sign | 0x7F800000 | (significand << 13)
    if exponent != 0:  # normal: exponent bias 15 -> 127
        return sign | ((exponent + 112) << 23) | (significand << 13)
    if significand == 0:
        return sign
    exponent = 113  # subnormal, significand * 2^-24: shift its leading 1 into the implicit bit
    while (significand & 0x400) == 0:
        significand <<= 1
        exponent -= 1
    return sign | (exponent << 23) | ((significand & 0x3FF) << 13)


@register_jitable
def narrow_bits(u, storage):
    """The 16 bits of the float32 whose bits are ``u``, rounded to nearest, ties to even."""
    u = np.int64(u)
    if storage == BFLOAT16:
        if (u & 0x7FFFFFFF) > 0x7F800000:  # NaN: the quiet NaN, sign kept
            return ((u >> 16) & 0x8000) | 0x7FC0
        return (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    sign = (u >> 16) & 0x8000
    a = u & 0x7FFFFFFF
    if a > 0x7F800000:  # NaN: the top 10 payload bits, at least one of them set
        significand = (a >> 13) & 0x3FF
        return sign | 0x7C00 | (significand if significand != 0 else 1)
    if a >= 0x47800000:  # 65536 or more (and infinity): infinity
        return sign | 0x7C00
    if a >= 0x38800000:  # a normal float16: re-bias, round 13 bits away (a carry may reach infinity)
        b = a - 0x38000000
        return sign | ((b + 0x0FFF + ((b >> 13) & 1)) >> 13)
    if a <= 0x33000000:  # at most 2^-25, half the smallest subnormal: zero (the tie goes to even)
        return sign
    significand = (a & 0x7FFFFF) | 0x800000  # subnormal: units of 2^-24
    shift = 126 - (a >> 23)
    kept = significand >> shift
    dropped = significand & ((1 << shift) - 1)
    half = 1 << (shift - 1)
    if dropped > half or (dropped == half and (kept & 1)):
        kept += 1
    return sign | kept


@register_jitable
def widen_block(bits, out, storage):
    """``bits`` (uint16) widened into the float32 array ``out``."""
    wide = out.view(np.uint32)
    for i in range(bits.shape[0]):
        wide[i] = widen_bits(bits[i], storage)


@register_jitable
def narrow_block(values, out, storage):
    """The float32 array ``values`` rounded into ``out`` (uint16)."""
    wide = values.view(np.uint32)
    for i in range(values.shape[0]):
        out[i] = narrow_bits(wide[i], storage)
