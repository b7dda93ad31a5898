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
  same arrays checks the previous order in one pass (see :mod:`fastopt._native.overlap`);
* lifetime: the batch holds a reference to every array whose pointer it recorded, until the next
  gather or :meth:`Batch.release`, so none can be freed before the kernel has run.

``Batch.gather_tensors`` does the same for PyTorch tensors, read through the DLPack C exchange
API (``torch.Tensor.__dlpack_c_exchange_api__``, see :mod:`fastopt._native.dlpack`):
one C call per tensor gives its data pointer, device, dtype, shape and strides, so no NumPy view
is made per tensor per step, and gradients are read where autograd left them.

A gather changes nothing: it returns the position of the first parameter it will not vouch for,
and the optimizer then takes its careful path (which gives the error message, or handles the
unusual case such as a first step, a non-contiguous gradient or a skipped step). Only when every
group has been gathered does the optimizer advance the step counters and compute, so a step is
applied whole or not at all.
"""

cimport numpy as cnp
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from cpython.list cimport PyList_GET_ITEM
from cpython.object cimport Py_EQ, PyObject, Py_TYPE
from cpython.ref cimport Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_GET_ITEM

from fastopt._native.arrays cimport usable_array
from fastopt._native.dlpack cimport DLTensor, dense_numel, describe, exchange_api_ready
from fastopt._native.overlap cimport (Extents, extents_add, extents_free, extents_init, first_overlap,
                                      order_free, ranges_overlap)

cnp.import_array()

cdef extern from "Python.h":
    PyObject* PyDict_GetItemWithError(object d, object key) except? NULL
    int PyObject_RichCompareBool(object a, object b, int op)  # -1 with an error set: cleared below
    PyObject* PyDict_GetItem(object d, object key)  # borrowed, or NULL (no error set)
    int PyDict_SetItem(object d, object key, object value) except -1
    PyObject* _getattr "PyObject_GetAttr"(PyObject* o, PyObject* name)  # new reference, or NULL
    void PyErr_Clear()

cdef object _GRAD = "grad"


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


cdef inline bint _overlap(cnp.ndarray a, cnp.ndarray b):
    return ranges_overlap(cnp.PyArray_DATA(a), cnp.PyArray_NBYTES(a), cnp.PyArray_DATA(b), cnp.PyArray_NBYTES(b))


cdef inline bint _same_counters(dict state, tuple keys, list values) noexcept:
    """Does ``state`` hold ``values`` under ``keys``, each of the same type and equal? (The
    values a commit wrote are the very same objects in every state: the first test settles it.)"""
    cdef Py_ssize_t c
    cdef PyObject* value
    cdef PyObject* expected
    for c in range(len(keys)):
        value = PyDict_GetItem(state, <object> PyTuple_GET_ITEM(keys, c))
        expected = PyList_GET_ITEM(values, c)
        if value == expected:
            continue
        if value == NULL or Py_TYPE(<object> value) is not Py_TYPE(<object> expected):
            return False
        if PyObject_RichCompareBool(<object> value, <object> expected, Py_EQ) != 1:
            PyErr_Clear()  # an error in __eq__ declines, as inequality does (NaN equals nothing)
            return False
    return True


cdef inline double _read_counter(void* data, int bits) noexcept:
    return (<double*> data)[0] if bits == 64 else <double> (<float*> data)[0]


# --------------------------------------------------------------------------------------------
cdef class Batch


cdef int _allocate(Batch self, Py_ssize_t count, Py_ssize_t width, Py_ssize_t n_counters, Py_ssize_t n_refs) except -1:
    """Tables for ``count`` rows (the references of the previous gather released). The pointer
    and size tables are NumPy arrays, kept while the batch's shape stays the same: a Numba kernel
    reads them as they are (see ``table``)."""
    _release(self)
    PyMem_Free(self.counters)
    PyMem_Free(self.counter_bits)
    PyMem_Free(self._values)
    self.counters, self.counter_bits, self._values = NULL, NULL, NULL
    cdef cnp.npy_intp shape[2]
    if self._table is None or (<cnp.ndarray> self._table).shape[0] != count or (<cnp.ndarray> self._table).shape[1] != width:
        shape[0], shape[1] = count, width
        self._table = cnp.PyArray_ZEROS(2, shape, cnp.NPY_INTP, 0)
        self._row_sizes = cnp.PyArray_ZEROS(1, shape, cnp.NPY_INTP, 0)
    self.pointers = <void**> cnp.PyArray_DATA(<cnp.ndarray> self._table)
    self.sizes = <Py_ssize_t*> cnp.PyArray_DATA(<cnp.ndarray> self._row_sizes)
    self._refs = <PyObject**> PyMem_Malloc(max(n_refs, 1) * sizeof(PyObject*))
    if n_counters:
        self.counters = <void**> PyMem_Malloc(count * n_counters * sizeof(void*))
        self.counter_bits = <int*> PyMem_Malloc(n_counters * sizeof(int))
        self._values = <double*> PyMem_Malloc(n_counters * sizeof(double))
    if (self._refs == NULL
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
        self._order.index, self._order.n = NULL, 0

    def __dealloc__(self):
        _release(self)
        _forget_owned(self)
        PyMem_Free(self.counters)
        PyMem_Free(self.counter_bits)
        PyMem_Free(self._values)
        order_free(&self._order)

    def release(self):
        """Forget the rows and drop the references to the arrays (after the kernel has run)."""
        self.count = 0
        self._stepped = []
        self._counter_objects = None
        _release(self)

    @property
    def table(self):
        """The data pointers, one row per parameter (``param, grad``, then each state slot; 0 for
        an unused slot or a parameter without gradient), as an ``intp`` array of shape
        ``(rows, width)``: what a Numba multi-tensor kernel reads (see ``fastopt._jit``)."""
        return self._table

    @property
    def row_sizes(self):
        """The elements of each row's arrays (0 for a parameter without gradient), ``intp``."""
        return self._row_sizes

    def gather(self, list params, list grads, list states, tuple slots, tuple counters, int typenum):
        """Check and record a group of NumPy arrays; return -1 if every array is fit, else the
        index of the first parameter the careful path must handle. Nothing is modified.

        ``states[k]`` is parameter k's state dict (or None before its first step), ``slots`` the
        state keys the kernel takes in order (None for an unused slot), ``counters`` the keys of
        the scalar state entries (the step counter, NAdam's ``mu_product``) that every parameter
        with a gradient must hold, each of one type and one value in all of them. Afterwards
        :attr:`counter_values` holds those values (None if no parameter has a gradient) and
        :meth:`commit_counters` writes the next ones into every state dict that steps.
        """
        cdef Py_ssize_t k, s, c, count = len(params), n_slots = len(slots), width = 2 + n_slots
        cdef Py_ssize_t n_counters = len(counters)
        cdef Py_ssize_t found
        cdef bint needs_state = n_counters > 0 or any(slot is not None for slot in slots)
        cdef cnp.ndarray param, grad, buffer
        cdef void** row
        cdef Extents extents
        cdef list first = None
        cdef PyObject* value
        if len(grads) != count or len(states) != count:
            return 0
        _allocate(self, count, width, 0, count * width)
        self._stepped = []
        self._counter_keys = counters
        self._counter_objects = None
        extents_init(&extents, count, 1 + n_slots)
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
                        extents_add(&extents, 0, cnp.PyArray_DATA(param), cnp.PyArray_NBYTES(param), k)
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
                    if n_counters:
                        if first is None:  # the first row with a gradient sets the values
                            first = []
                            for c in range(n_counters):
                                value = PyDict_GetItemWithError(state, <object> PyTuple_GET_ITEM(counters, c))
                                if value == NULL:
                                    return k
                                first.append(<object> value)
                        elif not _same_counters(<dict> state, counters, first):
                            return k
                        self._stepped.append(state)
                self.sizes[k] = cnp.PyArray_SIZE(param)
                row[0] = cnp.PyArray_DATA(param)
                row[1] = cnp.PyArray_DATA(grad)
                _keep(self, <PyObject*> param)
                _keep(self, <PyObject*> grad)
                extents_add(&extents, 0, row[0], cnp.PyArray_NBYTES(param), k)
                for s in range(n_slots):
                    if slots[s] is None:
                        row[2 + s] = NULL
                        continue
                    array = (<dict> state).get(slots[s])
                    if not usable_array(array, typenum, True):
                        return k
                    buffer = <cnp.ndarray> array
                    # the parameter's shape, not only its size: the careful path's rule, so that
                    # a reshaped buffer is refused on every backend alike
                    if not _same_shape(buffer, param) or _overlap(buffer, grad) or _overlap(buffer, param):
                        return k
                    row[2 + s] = cnp.PyArray_DATA(buffer)
                    _keep(self, <PyObject*> buffer)
                    extents_add(&extents, 1 + s, row[2 + s], cnp.PyArray_NBYTES(buffer), k)
                self._stepped_any = True
            # Parameters and buffers of different rows must not share memory either (an edited
            # state, e.g. one buffer in two slots, or a buffer that is a view of a parameter):
            # the kernel's result would then depend on the order of the rows.
            found = first_overlap(&extents, &self._order)
            if found >= 0:
                return found
        finally:
            extents_free(&extents)
        self._counter_objects = tuple(first) if first is not None else ()
        self.count = count
        return -1

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
        cdef Extents extents
        if not exchange_api_ready() or len(states) != count:
            return 0
        if has_owned:
            if len(owned) != count * n_keys:
                return 0
            if owned is not self._owned_key:
                _resolve_owned(self, owned)
        _allocate(self, count, width, n_counters, count * (width + n_counters))
        self._counter_objects = None
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
        extents_init(&extents, count, 1 + n_slots + n_counters)
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
                if not describe(param, &dp):
                    return k
                if grad == <PyObject*> None:  # skipped parameter: an empty row, its state untouched,
                    numel = dense_numel(&dp, dp.dtype.bits)  # but no buffer may overlap it
                    if numel < 0:
                        return k
                    _keep(self, param)
                    extents_add(&extents, 0, dp.data, numel * (dp.dtype.bits // 8), k)
                    continue
                if bits == 0:
                    bits = dp.dtype.bits
                    if bits != 32 and bits != 64:
                        return k
                numel = dense_numel(&dp, bits)
                if numel < 0 or not describe(grad, &dg) or dense_numel(&dg, bits) != numel:
                    return k
                nbytes = numel * (bits // 8)
                if ranges_overlap(dp.data, nbytes, dg.data, nbytes):
                    return k
                _keep(self, param)
                self.sizes[k] = numel
                row[0], row[1] = dp.data, dg.data
                extents_add(&extents, 0, dp.data, nbytes, k)
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
                        if not describe(item, &dt):
                            return k
                        found_numel = dense_numel(&dt, width_bits)
                        data = dt.data
                        _keep(self, item)
                    if s < n_slots:  # a state buffer of the parameter's size
                        if found_numel != numel or ranges_overlap(data, nbytes, dg.data, nbytes):
                            return k
                        row[2 + s] = data
                        extents_add(&extents, 1 + s, data, nbytes, k)
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
                        extents_add(&extents, 1 + s, data, width_bits // 8, k)
                self._stepped_any = True
            found = first_overlap(&extents, &self._order)
            if found >= 0:
                return found
        finally:
            extents_free(&extents)
            PyMem_Free(keys)
        self.bits = bits
        self.count = count
        return -1

    @property
    def counter_values(self):
        """The counters' common values before the step (None when no parameter of the group has a
        gradient, or before a successful gather): the objects the state dicts hold, after
        :meth:`gather`; floats read from the counter tensors, after :meth:`gather_tensors`."""
        if self.count == 0 or not self._stepped_any:
            return None
        if self._counter_objects is not None:
            return self._counter_objects
        return tuple([self._values[c] for c in range(self.n_counters)])

    @property
    def counter_dict(self):
        """After :meth:`gather`: the counters' common values as a new dict (key: value), or None
        when no parameter of the group has a gradient."""
        cdef Py_ssize_t c
        cdef dict counters
        if self.count == 0 or not self._stepped_any or self._counter_objects is None:
            return None
        counters = {}
        for c in range(len(self._counter_keys)):
            PyDict_SetItem(counters, <object> PyTuple_GET_ITEM(self._counter_keys, c),
                           <object> PyTuple_GET_ITEM(self._counter_objects, c))
        return counters

    def commit_counters(self, values):
        """Write ``values`` (a tuple, one per counter in the gather's order; after :meth:`gather`
        also a dict by key) into the counters of every parameter with a gradient (call once,
        after a successful gather): into its state dict after :meth:`gather`, into its counter
        tensors after :meth:`gather_tensors`."""
        cdef Py_ssize_t k, c
        cdef void* target
        cdef tuple keys = self._counter_keys
        cdef Py_ssize_t n_keys
        cdef PyObject* value
        if self._counter_objects is not None:
            n_keys = len(keys)
            if type(values) is dict:
                values = tuple([values[key] for key in keys])
            if type(values) is not tuple or len(<tuple> values) != n_keys:
                raise ValueError(f"expected {n_keys} counter values, got {values!r}")
            for state in self._stepped:
                for c in range(n_keys):
                    PyDict_SetItem(<dict> state, <object> PyTuple_GET_ITEM(keys, c), <object> PyTuple_GET_ITEM(<tuple> values, c))
            self._stepped = []
            return
        if type(values) is not tuple or len(<tuple> values) != self.n_counters:
            raise ValueError(f"expected {self.n_counters} counter values, got {values!r}")
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
