# Built for the baseline instruction set; it moves no floating-point data, it only checks arrays
# and collects their addresses.
"""Many arrays, one call: the multi-tensor path of the Cython backend.

A model has hundreds of small tensors. Calling a kernel once per tensor from Python costs about
a microsecond per call in argument handling alone, more than the arithmetic of a 1,000-element
tensor. ``Batch.gather`` walks a parameter group's parameters, gradients and state in C: it
checks every array with NumPy's C API (exact ``ndarray``, dtype, byte order, shape, C-contiguity,
alignment, writeability, no overlap between a gradient and its parameter, the step counters)
and records the data pointers. Each optimizer's ``<name>_update_many`` then runs the very same
loop as ``<name>_update`` over every row, with the GIL released.

``gather`` changes nothing: it returns the position of the first parameter it will not vouch
for, and the optimizer then takes its careful path (which gives the error message, or handles
the unusual case such as a first step, a non-contiguous gradient or a skipped step). Only when
every group has been gathered does the optimizer advance the step counters and compute, so a
step is applied whole or not at all.
"""

cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc

cnp.import_array()


cdef inline bint _usable(object obj, int typenum, bint writeable):
    """An exact ndarray of ``typenum``, native byte order, aligned and C-contiguous."""
    if not cnp.PyArray_CheckExact(obj):
        return False
    cdef cnp.ndarray array = <cnp.ndarray> obj
    if cnp.PyArray_TYPE(array) != typenum or not cnp.PyArray_ISNOTSWAPPED(array):
        return False
    if not cnp.PyArray_ISALIGNED(array) or not cnp.PyArray_IS_C_CONTIGUOUS(array):
        return False
    return cnp.PyArray_ISWRITEABLE(array) or not writeable


cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int dim
    if cnp.PyArray_NDIM(a) != cnp.PyArray_NDIM(b):
        return False
    for dim in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(a, dim) != cnp.PyArray_DIM(b, dim):
            return False
    return True


cdef inline bint _overlap(cnp.ndarray a, cnp.ndarray b):
    cdef char* a_start = <char*> cnp.PyArray_DATA(a)
    cdef char* b_start = <char*> cnp.PyArray_DATA(b)
    cdef Py_ssize_t a_bytes = cnp.PyArray_NBYTES(a), b_bytes = cnp.PyArray_NBYTES(b)
    return a_bytes > 0 and b_bytes > 0 and a_start < b_start + b_bytes and b_start < a_start + a_bytes


cdef class Batch:
    """The checked data pointers of one parameter group, for one step."""

    def __dealloc__(self):
        PyMem_Free(self.pointers)
        PyMem_Free(self.sizes)

    def gather(self, list params, list grads, list states, tuple slots, object step_key,
               Py_ssize_t previous_step, int typenum):
        """Check and record a group; return -1 if every array is fit, else the index of the first
        parameter the careful path must handle. Nothing is modified.

        ``states[k]`` is parameter k's state dict (or None before its first step), ``slots`` the
        state keys the kernel takes in order (None for an unused slot), ``step_key`` the key of
        the step counter (None if the optimizer keeps none), which must equal ``previous_step``
        for every parameter with a gradient.
        """
        cdef Py_ssize_t k, s, count = len(params), width = 2 + len(slots)
        cdef bint needs_state = step_key is not None or any(slot is not None for slot in slots)
        cdef cnp.ndarray param, grad, buffer
        if len(grads) != count or len(states) != count:
            return 0
        PyMem_Free(self.pointers)
        PyMem_Free(self.sizes)
        self.pointers = <void**> PyMem_Malloc(max(count * width, 1) * sizeof(void*))
        self.sizes = <Py_ssize_t*> PyMem_Malloc(max(count, 1) * sizeof(Py_ssize_t))
        if self.pointers == NULL or self.sizes == NULL:
            raise MemoryError()
        # No row is usable until every row has been checked: a declined batch stays empty.
        self.count, self.width = 0, width
        self._stepped = []
        for k in range(count):
            row = self.pointers + k * width
            if grads[k] is None:  # skipped parameter: an empty row, its state untouched
                self.sizes[k] = 0
                for s in range(width):
                    row[s] = NULL
                continue
            if not _usable(params[k], typenum, True) or not _usable(grads[k], typenum, False):
                return k
            param, grad = <cnp.ndarray> params[k], <cnp.ndarray> grads[k]
            if not _same_shape(param, grad) or _overlap(param, grad):
                return k
            state = states[k]
            if needs_state:
                if type(state) is not dict:
                    return k
                if step_key is not None:
                    step = (<dict> state).get(step_key)
                    if type(step) is not int or step != previous_step:
                        return k
                    self._stepped.append(state)
            self.sizes[k] = cnp.PyArray_SIZE(param)
            row[0] = cnp.PyArray_DATA(param)
            row[1] = cnp.PyArray_DATA(grad)
            for s in range(len(slots)):
                if slots[s] is None:
                    row[2 + s] = NULL
                    continue
                array = (<dict> state).get(slots[s])
                if not _usable(array, typenum, True):
                    return k
                buffer = <cnp.ndarray> array
                if cnp.PyArray_SIZE(buffer) != self.sizes[k] or _overlap(buffer, grad) or _overlap(buffer, param):
                    return k
                row[2 + s] = cnp.PyArray_DATA(buffer)
        self._step_key = step_key
        self._next_step = previous_step + 1
        self.count = count
        return -1

    def commit_steps(self):
        """Advance the step counter of every parameter with a gradient (call once, after gather)."""
        for state in self._stepped:
            state[self._step_key] = self._next_step
        self._stepped = []
