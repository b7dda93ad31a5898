# Built for the baseline instruction set; it moves no floating-point data, it only checks arrays
# and collects their addresses.
"""Many arrays, one call: the multi-tensor path of the Cython backend.

A model has hundreds of small tensors. Calling a kernel once per tensor from Python costs about
a microsecond per call in argument handling alone, more than the arithmetic of a 1,000-element
tensor. ``Batch.gather`` walks a parameter group's parameters, gradients and state in C and
records their data pointers; each optimizer's ``<name>_update_many`` then runs the very same loop
as ``<name>_update`` over every row, with the GIL released.

What a gather vouches for, so that the kernel can neither write nor read outside an array:

* each array: exact ``ndarray`` of the group's dtype, native byte order, aligned, C-contiguous,
  writeable (parameters and state buffers); a gradient of its parameter's shape, a state buffer
  of its parameter's size; the step counters all equal;
* memory: no array the kernel writes (parameters, state buffers) overlaps another one, whichever
  rows they belong to, and no gradient overlaps its own row's arrays. The address ranges are
  sorted once per gather, O(n log n) for n arrays, and a batch that is gathered again over the
  same arrays checks the previous order in one pass (see ``_first_overlap``);
* lifetime: the batch holds a reference to every array whose pointer it recorded, until the next
  gather or :meth:`Batch.release`, so none can be freed before the kernel has run.

``Batch.gather_tensors`` does the same for PyTorch tensors, read through the DLPack C exchange
API (``torch.Tensor.__dlpack_c_exchange_api__``, registered with ``use_dlpack_exchange_api``):
one C call per tensor gives its data pointer, device, dtype, shape and strides, so no NumPy view
is made per tensor per step, and gradients are read where autograd left them.

A gather changes nothing: it returns the position of the first parameter it will not vouch for,
and the optimizer then takes its careful path (which gives the error message, or handles the
unusual case such as a first step, a non-contiguous gradient or a skipped step). Only when every
group has been gathered does the optimizer advance the step counters and compute, so a step is
applied whole or not at all.
"""

cimport numpy as cnp
from fastopt._arrays cimport usable_array
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.object cimport PyObject, PyObject_TypeCheck, PyTypeObject
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid
from cpython.list cimport PyList_GET_ITEM
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_GET_ITEM
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

cnp.import_array()

cdef extern from "Python.h":
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    PyObject* _getattr "PyObject_GetAttr"(PyObject* o, PyObject* name)  # new reference, or NULL
    int PyDict_Next(object d, Py_ssize_t* pos, PyObject** key, PyObject** value)
    void PyErr_Clear()

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define fastopt_mul_overflow(a, b, r) __builtin_mul_overflow((a), (b), (r))
    #else
    static int fastopt_mul_overflow(Py_ssize_t a, Py_ssize_t b, Py_ssize_t* r) {
        if (a != 0 && b > PY_SSIZE_T_MAX / a) return 1;
        *r = a * b;
        return 0;
    }
    #endif
    """
    bint fastopt_mul_overflow(Py_ssize_t a, Py_ssize_t b, Py_ssize_t* r) noexcept nogil


# --------------------------------------------------------------------------------------------
# Overlap between the arrays a batch writes
# --------------------------------------------------------------------------------------------
ctypedef struct _Extent:
    char* start       # first byte
    char* end         # one past the last byte
    Py_ssize_t row    # the parameter it belongs to
    Py_ssize_t index  # its position in the gather's list of extents


cdef void _merge(_Extent* src, Py_ssize_t lo, Py_ssize_t mid, Py_ssize_t hi, _Extent* dst) noexcept nogil:
    cdef Py_ssize_t i = lo, j = mid, k = lo
    while i < mid and j < hi:
        if src[j].start < src[i].start:
            dst[k] = src[j]
            j += 1
        else:
            dst[k] = src[i]
            i += 1
        k += 1
    while i < mid:
        dst[k] = src[i]
        i += 1
        k += 1
    while j < hi:
        dst[k] = src[j]
        j += 1
        k += 1


cdef _Extent* _sort_extents(_Extent* a, _Extent* b, Py_ssize_t n, Py_ssize_t* runs) noexcept nogil:
    """Sort ``a[:n]`` by start address (``b`` and ``runs``, of n and n + 1 entries, are scratch);
    returns ``a`` or ``b``, whichever holds the result.

    A natural merge sort: it finds the runs that are already in order, then merges neighbouring
    runs pairwise, so arrays that lie in memory in the order they are listed cost one pass; in
    the worst case, O(n log n).
    """
    cdef Py_ssize_t count = 1, i, r, out
    cdef _Extent* swap
    if n < 2:
        return a
    runs[0] = 0
    for i in range(1, n):
        if a[i].start < a[i - 1].start:
            runs[count] = i
            count += 1
    runs[count] = n
    while count > 1:
        out = 0
        r = 0
        while r + 1 < count:
            _merge(a, runs[r], runs[r + 1], runs[r + 2], b)
            runs[out] = runs[r]
            out += 1
            r += 2
        if r < count:  # an odd run out: copied as it is
            for i in range(runs[r], runs[r + 1]):
                b[i] = a[i]
            runs[out] = runs[r]
            out += 1
        runs[out] = n
        count = out
        swap = a
        a = b
        b = swap
    return a


cdef struct _Extents:
    # The address ranges a gather records, one column per kind of array (parameters, then each
    # state slot, then each counter), each column in row order.
    _Extent* data
    Py_ssize_t* filled  # entries used per column
    Py_ssize_t rows     # capacity of a column
    Py_ssize_t columns


cdef int _extents_init(_Extents* e, Py_ssize_t rows, Py_ssize_t columns) except -1:
    cdef Py_ssize_t column
    e.rows, e.columns = rows, columns
    e.data = <_Extent*> PyMem_Malloc(max(rows * columns, 1) * sizeof(_Extent))
    e.filled = <Py_ssize_t*> PyMem_Malloc(max(columns, 1) * sizeof(Py_ssize_t))
    if e.data == NULL or e.filled == NULL:
        _extents_free(e)
        raise MemoryError()
    for column in range(columns):
        e.filled[column] = 0
    return 0


cdef void _extents_free(_Extents* e) noexcept:
    PyMem_Free(e.data)
    PyMem_Free(e.filled)
    e.data, e.filled = NULL, NULL


cdef inline void _extents_add(_Extents* e, Py_ssize_t column, void* data, Py_ssize_t nbytes, Py_ssize_t row) noexcept:
    cdef _Extent* entry
    if nbytes > 0:
        entry = e.data + column * e.rows + e.filled[column]
        entry.start = <char*> data
        entry.end = <char*> data + nbytes
        entry.row = row
        e.filled[column] += 1


cdef Py_ssize_t _first_overlap(Batch batch, _Extents* e) except -2:
    """The smaller row of two overlapping extents, or -1 if they are pairwise disjoint.

    Sorted by start, two extents overlap exactly when some extent overlaps its successor. The
    columns are moved together first. A batch remembers the sorted order of its last gather: the
    same arrays, gathered again, are found in order in one pass, and only a changed layout is
    sorted again."""
    cdef Py_ssize_t column, i, j, n = 0, found = -1
    cdef _Extent* ordered
    cdef void* scratch
    for column in range(e.columns):
        for i in range(e.filled[column]):
            e.data[n] = e.data[column * e.rows + i]
            e.data[n].index = n
            n += 1
    if n < 2:
        return -1
    if batch._order_n == n:
        for i in range(1, n):
            j = batch._order[i]
            if e.data[j].start < e.data[batch._order[i - 1]].start:
                break  # not in the old order any more: sort again
            if e.data[j].start < e.data[batch._order[i - 1]].end:
                return min(e.data[j].row, e.data[batch._order[i - 1]].row)
        else:
            return -1
    scratch = PyMem_Malloc(n * sizeof(_Extent) + (n + 1) * sizeof(Py_ssize_t))
    if scratch == NULL:
        raise MemoryError()
    ordered = _sort_extents(e.data, <_Extent*> scratch, n, <Py_ssize_t*> ((<_Extent*> scratch) + n))
    for i in range(1, n):
        if ordered[i].start < ordered[i - 1].end:
            found = min(ordered[i].row, ordered[i - 1].row)
            break
    if found < 0:  # remember the order for the next gather
        PyMem_Free(batch._order)
        batch._order_n = 0
        batch._order = <Py_ssize_t*> PyMem_Malloc(n * sizeof(Py_ssize_t))
        if batch._order != NULL:
            for i in range(n):
                batch._order[i] = ordered[i].index
            batch._order_n = n
    PyMem_Free(scratch)
    return found


# --------------------------------------------------------------------------------------------
# NumPy arrays
# --------------------------------------------------------------------------------------------
cdef inline bint _same_shape(cnp.ndarray a, cnp.ndarray b):
    cdef int dim
    if cnp.PyArray_NDIM(a) != cnp.PyArray_NDIM(b):
        return False
    for dim in range(cnp.PyArray_NDIM(a)):
        if cnp.PyArray_DIM(a, dim) != cnp.PyArray_DIM(b, dim):
            return False
    return True


cdef inline bint _ranges_overlap(void* a, Py_ssize_t a_bytes, void* b, Py_ssize_t b_bytes) noexcept:
    return (a_bytes > 0 and b_bytes > 0 and <char*> a < <char*> b + b_bytes
            and <char*> b < <char*> a + a_bytes)


cdef inline bint _overlap(cnp.ndarray a, cnp.ndarray b):
    return _ranges_overlap(cnp.PyArray_DATA(a), cnp.PyArray_NBYTES(a), cnp.PyArray_DATA(b), cnp.PyArray_NBYTES(b))


# --------------------------------------------------------------------------------------------
# PyTorch tensors, through the DLPack C exchange API (DLPack 1.x, dlpack.h)
# --------------------------------------------------------------------------------------------
ctypedef struct DLDevice:
    int32_t device_type
    int32_t device_id

ctypedef struct DLDataType:
    uint8_t code
    uint8_t bits
    uint16_t lanes

ctypedef struct DLTensor:
    void* data
    DLDevice device
    int32_t ndim
    DLDataType dtype
    int64_t* shape
    int64_t* strides
    uint64_t byte_offset

ctypedef struct DLPackVersion:
    uint32_t major
    uint32_t minor

cdef struct DLPackExchangeAPIHeader:
    DLPackVersion version
    DLPackExchangeAPIHeader* prev_api

ctypedef int (*DLTensorFromPyObject)(void* py_object, DLTensor* out) noexcept

ctypedef struct DLPackExchangeAPI:
    DLPackExchangeAPIHeader header
    void* managed_tensor_allocator
    void* managed_tensor_from_py_object_no_sync
    void* managed_tensor_to_py_object_no_sync
    DLTensorFromPyObject dltensor_from_py_object_no_sync
    void* current_work_stream

DEF K_DL_CPU = 1
DEF K_DL_FLOAT = 2

cdef DLTensorFromPyObject _describe_tensor = NULL  # the producer's non-owning export
cdef PyTypeObject* _tensor_type = NULL  # the type it accepts (and its subclasses)
cdef object _registered = None  # (capsule, type), kept alive
cdef object _GRAD = "grad"


def use_dlpack_exchange_api(capsule, tensor_type):
    """Register a framework's DLPack C exchange API (the ``"dlpack_exchange_api"`` capsule found
    on ``tensor_type.__dlpack_c_exchange_api__``) for :meth:`Batch.gather_tensors`.

    Returns True if it is usable: a DLPack 1.x table (or one chained behind a newer one) with the
    non-owning ``dltensor_from_py_object_no_sync``. Objects are handed to it only after an
    ``isinstance(obj, tensor_type)`` test made in C."""
    global _describe_tensor, _tensor_type, _registered
    cdef DLPackExchangeAPIHeader* header
    if not isinstance(tensor_type, type) or not PyCapsule_IsValid(capsule, b"dlpack_exchange_api"):
        return False
    header = <DLPackExchangeAPIHeader*> PyCapsule_GetPointer(capsule, b"dlpack_exchange_api")
    while header != NULL and header.version.major != 1:
        header = header.prev_api
    if header == NULL or (<DLPackExchangeAPI*> header).dltensor_from_py_object_no_sync == NULL:
        return False
    _registered = (capsule, tensor_type)
    _tensor_type = <PyTypeObject*> tensor_type
    _describe_tensor = (<DLPackExchangeAPI*> header).dltensor_from_py_object_no_sync
    return True


def dlpack_exchange_api_registered():
    return _describe_tensor != NULL


cdef inline bint _describe(PyObject* obj, DLTensor* out) noexcept:
    """Fill ``out`` for a tensor; False (any error cleared) for anything else."""
    if not PyObject_TypeCheck(<object> obj, _tensor_type):
        return False
    if _describe_tensor(<void*> obj, out) != 0:
        PyErr_Clear()
        return False
    return True


cdef inline Py_ssize_t _dense_numel(DLTensor* t, int bits) noexcept:
    """The number of elements of a CPU float tensor of width ``bits`` that is C-contiguous (torch's
    rule: dimensions of size 1 do not count) and aligned, with its data pointer made to include
    ``byte_offset``; -1 for any other tensor."""
    cdef Py_ssize_t numel = 1, size
    cdef int dim
    if t.device.device_type != K_DL_CPU or t.dtype.code != K_DL_FLOAT or t.dtype.bits != bits or t.dtype.lanes != 1:
        return -1
    for dim in range(t.ndim):
        if t.shape[dim] == 0:  # empty: contiguous whatever its strides (torch's rule too)
            t.data = NULL
            return 0
    for dim in range(t.ndim - 1, -1, -1):
        size = t.shape[dim]
        if size == 1:
            continue
        if size < 0 or t.strides[dim] != numel or fastopt_mul_overflow(numel, size, &numel):
            return -1
    t.data = <char*> t.data + t.byte_offset
    if t.data == NULL or (<size_t> t.data) % (bits // 8) != 0 or numel > (<Py_ssize_t> 1 << 55):
        return -1
    return numel


cdef inline double _read_counter(void* data, int bits) noexcept:
    return (<double*> data)[0] if bits == 64 else <double> (<float*> data)[0]


# --------------------------------------------------------------------------------------------
cdef class Batch


cdef int _allocate(Batch self, Py_ssize_t count, Py_ssize_t width, Py_ssize_t n_counters, Py_ssize_t n_refs) except -1:
    """Fresh tables for ``count`` rows (the references of the previous gather released)."""
    _release(self)
    PyMem_Free(self.pointers)
    PyMem_Free(self.sizes)
    PyMem_Free(self.counters)
    PyMem_Free(self.counter_bits)
    PyMem_Free(self._values)
    self.counters, self.counter_bits, self._values = NULL, NULL, NULL
    self.pointers = <void**> PyMem_Malloc(max(count * width, 1) * sizeof(void*))
    self.sizes = <Py_ssize_t*> PyMem_Malloc(max(count, 1) * sizeof(Py_ssize_t))
    self._refs = <PyObject**> PyMem_Malloc(max(n_refs, 1) * sizeof(PyObject*))
    if n_counters:
        self.counters = <void**> PyMem_Malloc(count * n_counters * sizeof(void*))
        self.counter_bits = <int*> PyMem_Malloc(n_counters * sizeof(int))
        self._values = <double*> PyMem_Malloc(n_counters * sizeof(double))
    if (self.pointers == NULL or self.sizes == NULL or self._refs == NULL
            or (n_counters and (self.counters == NULL or self.counter_bits == NULL or self._values == NULL))):
        raise MemoryError()
    # No row is usable until every row has been checked: a declined batch stays empty.
    self.count, self.width, self.n_counters, self._n_refs = 0, width, n_counters, 0
    self._stepped_any = False
    self.bits = 0
    return 0


cdef void _release(Batch self) noexcept:
    cdef Py_ssize_t i
    if self._refs != NULL:
        for i in range(self._n_refs):
            Py_XDECREF(self._refs[i])
        PyMem_Free(self._refs)
    self._refs, self._n_refs = NULL, 0


cdef void _forget_owned(Batch self) noexcept:
    PyMem_Free(self._owned_tensor)
    PyMem_Free(self._owned_data)
    PyMem_Free(self._owned_size)
    PyMem_Free(self._owned_type)
    self._owned_tensor, self._owned_data, self._owned_size, self._owned_type = NULL, NULL, NULL, NULL
    self._owned_n = 0
    self._owned_key = None


cdef int _resolve_owned(Batch self, tuple owned) except -1:
    """Read the ``owned`` pairs once (a batch gathered again with the same tuple reuses this): the
    tuple is held, so its tensors and arrays live as long as these pointers are used, and the
    arrays are private to the caller, so their data, size and flags do not change."""
    cdef Py_ssize_t i, n = len(owned)
    cdef cnp.ndarray array
    _forget_owned(self)
    self._owned_tensor = <PyObject**> PyMem_Malloc(max(n, 1) * sizeof(PyObject*))
    self._owned_data = <void**> PyMem_Malloc(max(n, 1) * sizeof(void*))
    self._owned_size = <Py_ssize_t*> PyMem_Malloc(max(n, 1) * sizeof(Py_ssize_t))
    self._owned_type = <int*> PyMem_Malloc(max(n, 1) * sizeof(int))
    if self._owned_tensor == NULL or self._owned_data == NULL or self._owned_size == NULL or self._owned_type == NULL:
        _forget_owned(self)
        raise MemoryError()
    for i in range(n):
        entry = owned[i]
        self._owned_tensor[i] = NULL
        self._owned_type[i] = -1
        if type(entry) is not tuple or len(<tuple> entry) != 2 or not cnp.PyArray_CheckExact((<tuple> entry)[1]):
            continue
        array = <cnp.ndarray> (<tuple> entry)[1]
        self._owned_tensor[i] = <PyObject*> (<tuple> entry)[0]
        self._owned_data[i] = cnp.PyArray_DATA(array)
        self._owned_size[i] = cnp.PyArray_SIZE(array)
        if usable_array(array, cnp.PyArray_TYPE(array), True):
            self._owned_type[i] = cnp.PyArray_TYPE(array)
    self._owned_key = owned
    self._owned_n = n
    return 0


cdef inline void _keep(Batch self, PyObject* obj) noexcept:
    """Hold a (new) reference to ``obj`` until the next gather or release (room was reserved)."""
    Py_INCREF(<object> obj)
    self._refs[self._n_refs] = obj
    self._n_refs += 1


cdef class Batch:
    """The checked data pointers of one parameter group, for one step (a batch may be gathered
    again at the next step: it then reuses what it learnt about the memory layout)."""

    def __cinit__(self):
        self.count = 0
        self.n_counters = 0
        self.bits = 0
        self._order_n = 0

    def __dealloc__(self):
        _release(self)
        _forget_owned(self)
        PyMem_Free(self.pointers)
        PyMem_Free(self.sizes)
        PyMem_Free(self.counters)
        PyMem_Free(self.counter_bits)
        PyMem_Free(self._values)
        PyMem_Free(self._order)

    def release(self):
        """Forget the rows and drop the references to the arrays (after the kernel has run)."""
        self.count = 0
        self._stepped = []
        _release(self)

    def gather(self, list params, list grads, list states, tuple slots, object step_key,
               Py_ssize_t previous_step, int typenum):
        """Check and record a group; return -1 if every array is fit, else the index of the first
        parameter the careful path must handle. Nothing is modified.

        ``states[k]`` is parameter k's state dict (or None before its first step), ``slots`` the
        state keys the kernel takes in order (None for an unused slot), ``step_key`` the key of
        the step counter (None if the optimizer keeps none), which must equal ``previous_step``
        for every parameter with a gradient.
        """
        cdef Py_ssize_t k, s, count = len(params), n_slots = len(slots), width = 2 + n_slots
        cdef Py_ssize_t found
        cdef bint needs_state = step_key is not None or any(slot is not None for slot in slots)
        cdef cnp.ndarray param, grad, buffer
        cdef void** row
        cdef _Extents extents
        if len(grads) != count or len(states) != count:
            return 0
        _allocate(self, count, width, 0, count * width)
        self._stepped = []
        _extents_init(&extents, count, 1 + n_slots)
        try:
            for k in range(count):
                row = self.pointers + k * width
                if grads[k] is None:  # skipped parameter: an empty row, its state untouched
                    self.sizes[k] = 0
                    for s in range(width):
                        row[s] = NULL
                    if cnp.PyArray_Check(params[k]):  # not written, but no buffer may overlap it
                        param = <cnp.ndarray> params[k]
                        _keep(self, <PyObject*> param)
                        _extents_add(&extents, 0, cnp.PyArray_DATA(param), cnp.PyArray_NBYTES(param), k)
                    continue
                if not usable_array(params[k], typenum, True) or not usable_array(grads[k], typenum, False):
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
                _keep(self, <PyObject*> param)
                _keep(self, <PyObject*> grad)
                _extents_add(&extents, 0, row[0], cnp.PyArray_NBYTES(param), k)
                for s in range(n_slots):
                    if slots[s] is None:
                        row[2 + s] = NULL
                        continue
                    array = (<dict> state).get(slots[s])
                    if not usable_array(array, typenum, True):
                        return k
                    buffer = <cnp.ndarray> array
                    if cnp.PyArray_SIZE(buffer) != self.sizes[k] or _overlap(buffer, grad) or _overlap(buffer, param):
                        return k
                    row[2 + s] = cnp.PyArray_DATA(buffer)
                    _keep(self, <PyObject*> buffer)
                    _extents_add(&extents, 1 + s, row[2 + s], cnp.PyArray_NBYTES(buffer), k)
            # Parameters and buffers of different rows must not share memory either (an edited
            # state, e.g. one buffer in two slots, or a buffer that is a view of a parameter):
            # the kernel's result would then depend on the order of the rows.
            found = _first_overlap(self, &extents)
            if found >= 0:
                return found
        finally:
            _extents_free(&extents)
        self._step_key = step_key
        self._next_step = previous_step + 1
        self.count = count
        return -1

    def commit_steps(self):
        """Advance the step counter of every parameter with a gradient (call once, after gather)."""
        for state in self._stepped:
            state[self._step_key] = self._next_step
        self._stepped = []

    # ----------------------------------------------------------------------------------------
    def gather_tensors(self, list params, list states, tuple slots, tuple counters, tuple owned=None):
        """``gather`` for PyTorch tensors: check and record a group; -1 if every tensor is fit,
        else the index of the first parameter the careful path must handle. Nothing is modified.

        Each parameter's gradient is read here (``param.grad``; None skips the parameter) and
        every tensor is described through the registered DLPack exchange API (see
        :func:`use_dlpack_exchange_api`): CPU memory, float32 or float64 like the group's first
        parameter with a gradient, C-contiguous, aligned; gradient and state buffers of the
        parameter's size; nothing the kernel writes overlapping anything else it writes; no
        gradient overlapping its own row.

        ``states[k]`` is parameter k's state dict (or None), ``slots`` the keys of the state
        tensors the kernel takes in order (None for an unused slot), ``counters`` ``(key, bits)``
        pairs naming 0-d state tensors (``("step", 64)``: a float64 step counter) that every
        parameter with a gradient must hold, all with one value per key. Afterwards
        :attr:`counter_values` holds those values (None if no parameter has a gradient) and
        :attr:`bits` the parameters' width; :meth:`commit_counters` writes the next values.

        ``owned`` (optional) holds, per parameter and key (the slots, then the counters), None or
        a ``(tensor, ndarray)`` pair for a state tensor whose memory the caller owns as a NumPy
        array (``tensor = torch.from_numpy(ndarray)``) and never hands out: while the state holds
        that very tensor, the array is used, checked as in :meth:`gather`, with no call into
        torch and without touching the tensor. (The array is the memory the step writes, also if
        the tensor's storage has been swapped in place.) The batch keeps the tuple and what it
        read from it: pass the same tuple again while nothing in it changed.
        """
        cdef Py_ssize_t k, s, c, i, numel, nbytes, found
        cdef Py_ssize_t count = len(params), n_slots = len(slots), n_counters = len(counters)
        cdef Py_ssize_t width = 2 + n_slots
        cdef bint needs_state = n_counters > 0 or any(slot is not None for slot in slots)
        cdef int bits = 0, width_bits
        cdef DLTensor dp, dg, dt
        cdef void** row
        cdef void** row_counters
        cdef PyObject* param
        cdef PyObject* grad
        cdef PyObject* item
        cdef PyObject* state
        cdef PyObject** keys
        cdef double value
        cdef void* data
        cdef Py_ssize_t found_numel, n_keys = n_slots + n_counters
        cdef bint has_owned = owned is not None
        cdef _Extents extents
        if _describe_tensor == NULL or len(states) != count:
            return 0
        if has_owned:
            if len(owned) != count * n_keys:
                return 0
            if owned is not self._owned_key:
                _resolve_owned(self, owned)
        _allocate(self, count, width, n_counters, count * (width + n_counters))
        keys = <PyObject**> PyMem_Malloc(max(n_slots + n_counters, 1) * sizeof(PyObject*))
        if keys == NULL:
            raise MemoryError()
        for s in range(n_slots):  # borrowed from the tuples, alive for the whole call
            keys[s] = NULL if slots[s] is None else <PyObject*> slots[s]
        for c in range(n_counters):
            key, width_bits = counters[c]
            if width_bits != 32 and width_bits != 64:
                PyMem_Free(keys)
                raise ValueError(f"counter widths are 32 or 64 bits, got {width_bits!r}")
            keys[n_slots + c] = <PyObject*> counters[c][0]
            self.counter_bits[c] = width_bits
        _extents_init(&extents, count, 1 + n_slots + n_counters)
        try:
            for k in range(count):
                param = <PyObject*> params[k]
                row = self.pointers + k * width
                row_counters = self.counters + k * n_counters
                self.sizes[k] = 0
                for s in range(width):
                    row[s] = NULL
                for c in range(n_counters):
                    row_counters[c] = NULL
                grad = _getattr(param, <PyObject*> _GRAD)
                if grad == NULL:  # not a tensor: the careful path says what it is
                    PyErr_Clear()
                    return k
                self._refs[self._n_refs] = grad  # held (a new reference) until released
                self._n_refs += 1
                if not _describe(param, &dp):
                    return k
                if grad == <PyObject*> None:  # skipped parameter: an empty row, its state untouched,
                    numel = _dense_numel(&dp, dp.dtype.bits)  # but no buffer may overlap it
                    if numel < 0:
                        return k
                    _keep(self, param)
                    _extents_add(&extents, 0, dp.data, numel * (dp.dtype.bits // 8), k)
                    continue
                if bits == 0:
                    bits = dp.dtype.bits
                    if bits != 32 and bits != 64:
                        return k
                numel = _dense_numel(&dp, bits)
                if numel < 0 or not _describe(grad, &dg) or _dense_numel(&dg, bits) != numel:
                    return k
                nbytes = numel * (bits // 8)
                if _ranges_overlap(dp.data, nbytes, dg.data, nbytes):
                    return k
                _keep(self, param)
                self.sizes[k] = numel
                row[0], row[1] = dp.data, dg.data
                _extents_add(&extents, 0, dp.data, nbytes, k)
                if not needs_state:
                    self._stepped_any = True
                    continue
                state = <PyObject*> states[k]
                if type(<object> state) is not dict:
                    return k
                for s in range(n_keys):
                    if keys[s] == NULL:
                        continue
                    item = PyDict_GetItemWithError(<object> state, <object> keys[s])
                    if item == NULL:
                        return k
                    width_bits = bits if s < n_slots else self.counter_bits[s - n_slots]
                    i = k * n_keys + s
                    if has_owned and self._owned_tensor[i] == item:  # memory the caller owns
                        if self._owned_type[i] != (cnp.NPY_FLOAT32 if width_bits == 32 else cnp.NPY_FLOAT64):
                            return k
                        data = self._owned_data[i]
                        found_numel = self._owned_size[i]
                    else:
                        if not _describe(item, &dt):
                            return k
                        found_numel = _dense_numel(&dt, width_bits)
                        data = dt.data
                        _keep(self, item)
                    if s < n_slots:  # a state buffer of the parameter's size
                        if found_numel != numel or _ranges_overlap(data, nbytes, dg.data, nbytes):
                            return k
                        row[2 + s] = data
                        _extents_add(&extents, 1 + s, data, nbytes, k)
                    else:  # a counter: one element, the same value in every row
                        c = s - n_slots
                        if found_numel != 1:
                            return k
                        value = _read_counter(data, width_bits)
                        if not self._stepped_any:
                            self._values[c] = value
                        elif not value == self._values[c]:  # (NaN equals nothing)
                            return k
                        row_counters[c] = data
                        _extents_add(&extents, 1 + s, data, width_bits // 8, k)
                self._stepped_any = True
            found = _first_overlap(self, &extents)
            if found >= 0:
                return found
        finally:
            _extents_free(&extents)
            PyMem_Free(keys)
        self.bits = bits
        self.count = count
        return -1

    @property
    def counter_values(self):
        """The counters' common values before the step, as floats (``gather_tensors``; None when
        no parameter of the group has a gradient, or before a successful gather)."""
        if self.count == 0 or not self._stepped_any:
            return None
        return tuple([self._values[c] for c in range(self.n_counters)])

    def commit_counters(self, tuple values):
        """Write ``values`` (one per counter, in ``gather_tensors``' order) into the counters of
        every parameter with a gradient (call once, after a successful ``gather_tensors``)."""
        cdef Py_ssize_t k, c
        cdef void* target
        if len(values) != self.n_counters:
            raise ValueError(f"expected {self.n_counters} counter values, got {len(values)}")
        for c in range(self.n_counters):
            self._values[c] = values[c]
        for k in range(self.count):
            for c in range(self.n_counters):
                target = self.counters[k * self.n_counters + c]
                if target == NULL:
                    continue
                if self.counter_bits[c] == 64:
                    (<double*> target)[0] = self._values[c]
                else:
                    (<float*> target)[0] = <float> self._values[c]


# --------------------------------------------------------------------------------------------
# Cheap "nothing changed" tests for the callers' caches (identity, in C: no hashing)
# --------------------------------------------------------------------------------------------
def dict_items(object d):
    """``d``'s keys and values (a dict, or an instance of a subclass), flattened in order:
    ``(k0, v0, k1, v1, ...)``."""
    cdef Py_ssize_t pos = 0, i = 0
    cdef PyObject* key
    cdef PyObject* value
    cdef list items
    if not isinstance(d, dict):
        raise TypeError(f"expected a dict, got {type(d).__name__}")
    items = [None] * (2 * len(d))
    while PyDict_Next(d, &pos, &key, &value):
        items[i] = <object> key
        items[i + 1] = <object> value
        i += 2
    return tuple(items)


def same_dict_items(object d, tuple items):
    """Does ``d`` (a dict, or an instance of a subclass) hold exactly the keys and values of
    ``items`` (from :func:`dict_items`), the very same objects, in the same order?"""
    cdef Py_ssize_t pos = 0, i = 0
    cdef PyObject* key
    cdef PyObject* value
    if not isinstance(d, dict) or 2 * len(d) != len(items):
        return False
    while PyDict_Next(d, &pos, &key, &value):
        if key != <PyObject*> items[i] or value != <PyObject*> items[i + 1]:
            return False
        i += 2
    return True


def same_objects(list a, tuple b):
    """Are ``a`` and ``b`` the very same objects, in the same order?"""
    cdef Py_ssize_t i, n = len(a)
    if n != len(b):
        return False
    for i in range(n):
        if <PyObject*> a[i] != <PyObject*> b[i]:
            return False
    return True


# --------------------------------------------------------------------------------------------
# "Nothing changed since the last validated step"
# --------------------------------------------------------------------------------------------
def groups_as_validated(object param_groups, list members, tuple keys, list objects):
    """Whether ``param_groups`` is exactly as last validated: a list of dicts, group ``g`` holding
    a list with the very arrays of ``members[g]`` under ``"params"`` and, under ``keys``, the very
    hyperparameter objects of ``objects[g]`` (None: a group holding a mutable value, never
    trusted). Identity only, so ``maximize=0`` after ``False`` is not "as validated".

    ``Optimizer.step`` asks this first and runs its full checks (which name what changed) only
    when the answer is no: the same test as ``_check_groups_unchanged`` and
    ``_check_all_hyperparameters`` make on their fast branch, in one C loop.
    """
    cdef Py_ssize_t g, i, n_groups = len(members), n_keys = len(keys)
    cdef PyObject* value
    cdef tuple expected_values
    cdef list current, expected
    if type(param_groups) is not list or len(<list> param_groups) != n_groups or len(objects) != n_groups:
        return False
    for g in range(n_groups):
        group = (<list> param_groups)[g]
        if type(group) is not dict or objects[g] is None:
            return False
        expected_values = <tuple> objects[g]
        if len(expected_values) != n_keys:
            return False
        for i in range(n_keys):
            value = PyDict_GetItemWithError(group, keys[i])
            if value == NULL or value != PyTuple_GET_ITEM(expected_values, i):
                return False
        params = (<dict> group).get("params")
        if type(params) is not list:
            return False
        current, expected = <list> params, <list> members[g]
        if len(current) != len(expected):
            return False
        for i in range(len(expected)):
            if PyList_GET_ITEM(current, i) != PyList_GET_ITEM(expected, i):
                return False
    return True
