# Arithmetic the Cython loops share, for either width of cython.floating (float or double).

from cython cimport floating
from libc.math cimport fabs as fabs_double, fabsf, sqrt as sqrt_double, sqrtf


cdef inline floating sqrt(floating x) noexcept nogil:
    # sqrtf keeps float32 arithmetic in single precision (and vectorises to vsqrtps)
    if floating is float:
        return sqrtf(x)
    else:
        return sqrt_double(x)


cdef inline floating fabs(floating x) noexcept nogil:
    # fabsf keeps float32 in single precision; both only clear the sign bit (exact)
    if floating is float:
        return fabsf(x)
    else:
        return fabs_double(x)
