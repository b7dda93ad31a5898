# How the Cython kernels take arrays: NumPy arrays quickly, through NumPy's C API, and any buffer
# through typed memoryviews (used by every optimizer's generated entry points and by batch.pyx).
#
# A typed memoryview is the readable way to take an array, but acquiring one costs about 0.1 µs
# (buffer protocol, format-string parsing, a memoryview object): Adam's kernel on 16 elements
# took 0.77 µs per call with five of them and takes 0.21 µs with ``plain_arrays``, which reads the
# same facts through NumPy's C API in a few nanoseconds per array. It only ever says yes for arrays a ``floating[::1]`` memoryview
# would accept; for anything else a kernel falls back to its typed-memoryview entry point, which
# then accepts the object (another buffer) or reports what is wrong with it.

cimport numpy as cnp
from cython cimport floating


cdef inline bint usable_array(object obj, int typenum, bint writeable) noexcept:
    """An exact ndarray of ``typenum``, native byte order, aligned and C-contiguous (and
    writeable, if asked)."""
    if not cnp.PyArray_CheckExact(obj):
        return False
    cdef cnp.ndarray array = <cnp.ndarray> obj
    if cnp.PyArray_TYPE(array) != typenum or not cnp.PyArray_ISNOTSWAPPED(array):
        return False
    if not cnp.PyArray_ISALIGNED(array) or not cnp.PyArray_IS_C_CONTIGUOUS(array):
        return False
    return cnp.PyArray_ISWRITEABLE(array) or not writeable


cdef struct Arrays:
    # a kernel's arrays as ``plain_arrays`` found them: param, grad, then the state buffers
    int typenum                # cnp.NPY_FLOAT or cnp.NPY_DOUBLE, param's dtype
    void* data[5]              # each array's first element; NULL for an empty array
    Py_ssize_t size[5]         # each array's length


cdef inline bint _take(Arrays* arrays, int k, object obj, bint writeable) noexcept:
    if obj is None:  # a slot this kernel does not have
        arrays.size[k], arrays.data[k] = 0, NULL
        return True
    if not usable_array(obj, arrays.typenum, writeable) or cnp.PyArray_NDIM(<cnp.ndarray> obj) != 1:
        return False
    arrays.size[k] = cnp.PyArray_DIM(<cnp.ndarray> obj, 0)
    arrays.data[k] = cnp.PyArray_DATA(<cnp.ndarray> obj) if arrays.size[k] > 0 else NULL
    return True


cdef inline bint plain_arrays(Arrays* arrays, object param, object grad, object state0=None,
                              object state1=None, object state2=None) noexcept:
    """Whether every array given is a 1-D, C-contiguous, aligned, native float32 (or every one
    float64) ndarray, writeable except ``grad``; if so, ``arrays`` holds their pointers and
    lengths. Lengths are not compared here: the kernel checks them next."""
    if not cnp.PyArray_CheckExact(param):
        return False
    arrays.typenum = cnp.PyArray_TYPE(<cnp.ndarray> param)
    if arrays.typenum != cnp.NPY_FLOAT and arrays.typenum != cnp.NPY_DOUBLE:
        return False
    return (_take(arrays, 0, param, True) and _take(arrays, 1, grad, False)
            and _take(arrays, 2, state0, True) and _take(arrays, 3, state1, True)
            and _take(arrays, 4, state2, True))


cdef inline floating* offset(floating* array, Py_ssize_t start) noexcept nogil:
    # a chunk of an optional state array (NULL, an unused slot, stays NULL)
    return array + start if array != NULL else NULL


cdef inline floating* data(floating[::1] array) noexcept nogil:
    # the first element's address; an empty array (an unused state slot) has none
    return &array[0] if array.shape[0] > 0 else NULL


cdef inline const floating* const_data(const floating[::1] array) noexcept nogil:
    return &array[0] if array.shape[0] > 0 else NULL
