"""The conversions' Cython twin (``rounding.pxd``, which the generated entry points cimport),
callable from Python so that ``tests/test_rounding.py`` can check it on every value."""

from libc.stdint cimport uint16_t, uint32_t


def widen(const uint16_t[::1] bits, float[::1] out, int storage):
    """``bits`` (float16 or bfloat16, as ``storage`` says) widened into ``out``."""
    if bits.shape[0] != out.shape[0]:
        raise ValueError("widen: bits and out differ in length")
    if bits.shape[0]:
        widen_block(&bits[0], &out[0], bits.shape[0], storage)


def narrow(const float[::1] values, uint16_t[::1] out, int storage):
    """``values`` rounded to nearest, ties to even, into ``out`` (16 bits)."""
    if values.shape[0] != out.shape[0]:
        raise ValueError("narrow: values and out differ in length")
    if values.shape[0]:
        narrow_block(&values[0], &out[0], values.shape[0], storage)


def narrow_stochastic(const float[::1] values, uint16_t[::1] out, uint32_t key, Py_ssize_t offset):
    """``values`` rounded stochastically to bfloat16 into ``out``, element ``k`` drawing the bits
    of index ``offset + k`` under ``key`` (fastopt._rounding's rules)."""
    if values.shape[0] != out.shape[0]:
        raise ValueError("narrow_stochastic: values and out differ in length")
    if offset < 0:
        raise ValueError("narrow_stochastic: offset must be >= 0")
    if values.shape[0]:
        narrow_stochastic_block(&values[0], &out[0], values.shape[0], key, offset)
