"""The conversions of :mod:`fastopt._rounding`, compiled by Numba (which has no float16 or
bfloat16): the 16 bits as ``uint16``, a float32's bits as a ``uint32`` through a bit cast (an
LLVM ``bitcast``: a register move), every step as ``rounding.pxd`` writes it, in uint32
arithmetic (wrapping as C's does)."""

import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic, register_jitable

FLOAT16, BFLOAT16 = 0, 1  # fastopt._rounding's storage codes


@intrinsic
def float_bits(typingctx, value):
    """The bits of a float32 as a uint32 (a register move)."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.uint32(types.float32), codegen


@intrinsic
def bits_float(typingctx, bits):
    """The float32 whose bits are the uint32 ``bits``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.FloatType())

    return types.float32(types.uint32), codegen


@register_jitable
def widen_bits(h, storage):
    """The float32 of the 16-bit value ``h`` (rounding.pxd's rule, written the same way)."""
    h = np.uint32(h)
    if storage == BFLOAT16:
        return bits_float(np.uint32(h << np.uint32(16)))
    sign = (h & np.uint32(0x8000)) << np.uint32(16)
    magnitude = h & np.uint32(0x7FFF)
    finite = float_bits(bits_float(np.uint32(magnitude << np.uint32(13))) * bits_float(np.uint32(0x77800000)))  # x 2^112
    special = np.uint32(0x7F800000) | ((magnitude & np.uint32(0x3FF)) << np.uint32(13))
    return bits_float(np.uint32(sign | (special if magnitude >= np.uint32(0x7C00) else finite)))


@register_jitable
def narrow_bits(x, storage):
    """The 16 bits of the float32 ``x``, rounded to nearest, ties to even (rounding.pxd's rule)."""
    u = float_bits(x)
    if storage == BFLOAT16:
        rounded = (u + np.uint32(0x7FFF) + ((u >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)
        quiet_nan = ((u >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0)
        return quiet_nan if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else rounded
    sign = (u >> np.uint32(16)) & np.uint32(0x8000)
    a = u & np.uint32(0x7FFFFFFF)
    payload = (a >> np.uint32(13)) & np.uint32(0x3FF)
    nan = np.uint32(0x7C00) | (payload if payload != np.uint32(0) else np.uint32(1))
    normal = (a - np.uint32(0x38000000) + np.uint32(0x0FFF) + ((a >> np.uint32(13)) & np.uint32(1))) >> np.uint32(13)
    subnormal = float_bits(bits_float(a) + bits_float(np.uint32(0x3F000000))) - np.uint32(0x3F000000)  # + 0.5f
    result = normal if a >= np.uint32(0x38800000) else subnormal
    result = np.uint32(0x7C00) if a >= np.uint32(0x47800000) else result  # 65536 or more: infinity
    result = nan if a > np.uint32(0x7F800000) else result
    return sign | result


@register_jitable
def widen_block(bits, out, storage):
    """``bits`` (uint16) widened into the float32 array ``out``."""
    for i in range(bits.shape[0]):
        out[i] = widen_bits(bits[i], storage)


@register_jitable
def narrow_block(values, out, storage):
    """The float32 array ``values`` rounded into ``out`` (uint16)."""
    for i in range(values.shape[0]):
        out[i] = narrow_bits(values[i], storage)


@register_jitable
def lowbias32(x):
    """Stochastic rounding's per-element bits (fastopt._rounding, rule 2), in uint32 arithmetic."""
    x = np.uint32(x)
    x ^= x >> np.uint32(16)
    x = np.uint32(x * np.uint32(0x7FEB352D))
    x ^= x >> np.uint32(15)
    x = np.uint32(x * np.uint32(0x846CA68B))
    x ^= x >> np.uint32(16)
    return x


@register_jitable
def narrow_bfloat16_stochastic(x, random):
    """Up or down with the probability the 16 dropped bits say (rule 3); NaN as to nearest."""
    u = float_bits(x)
    rounded = (u + (random >> np.uint32(16))) >> np.uint32(16)
    quiet_nan = ((u >> np.uint32(16)) & np.uint32(0x8000)) | np.uint32(0x7FC0)
    return quiet_nan if (u & np.uint32(0x7FFFFFFF)) > np.uint32(0x7F800000) else rounded


@register_jitable
def narrow_stochastic_block(values, out, key, offset):
    """``values`` (float32) rounded stochastically into ``out`` (uint16), element ``k`` drawing
    the bits of index ``offset + k`` (mod 2^32)."""
    key = np.uint32(key)
    for i in range(values.shape[0]):
        index = np.uint32((offset + i) & 0xFFFFFFFF)
        out[i] = narrow_bfloat16_stochastic(values[i], lowbias32(index ^ key))
