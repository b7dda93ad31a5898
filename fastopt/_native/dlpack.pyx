# Built for the baseline instruction set, like every module of fastopt/_native that moves no
# floating-point data.
"""PyTorch tensors described in one C call each, through the DLPack C exchange API.

torch (2.10 and later) publishes ``torch.Tensor.__dlpack_c_exchange_api__``, a capsule holding a
table of C functions; its ``dltensor_from_py_object_no_sync`` fills a ``DLTensor`` (data pointer,
device, dtype, shape, strides) for a tensor without making a Python object. fastopt.torch
registers it once (:func:`use_dlpack_exchange_api`), and ``Batch.gather_tensors``
(:mod:`fastopt._native.batch`) then reads every parameter, gradient and state tensor of a group
this way: no NumPy view and no Python method call per tensor per step.
"""

from cpython.object cimport PyObject_TypeCheck, PyTypeObject
from cpython.pycapsule cimport PyCapsule_GetPointer, PyCapsule_IsValid

cdef extern from "Python.h":
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

cdef enum:
    K_DL_CPU = 1    # DLDeviceType kDLCPU
    K_DL_FLOAT = 2  # DLDataTypeCode kDLFloat

cdef DLTensorFromPyObject _describe_tensor = NULL  # the producer's non-owning export
cdef PyTypeObject* _tensor_type = NULL  # the type it accepts (and its subclasses)
cdef object _registered = None  # (capsule, type), kept alive


def use_dlpack_exchange_api(capsule, tensor_type):
    """Register a framework's DLPack C exchange API (the ``"dlpack_exchange_api"`` capsule found
    on ``tensor_type.__dlpack_c_exchange_api__``) for ``Batch.gather_tensors``.

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



cdef bint exchange_api_ready() noexcept:
    return _describe_tensor != NULL


cdef bint describe(PyObject* obj, DLTensor* out) noexcept:
    """Fill ``out`` for a tensor; False (any error cleared) for anything else."""
    if not PyObject_TypeCheck(<object> obj, _tensor_type):
        return False
    if _describe_tensor(<void*> obj, out) != 0:
        PyErr_Clear()
        return False
    return True


cdef Py_ssize_t dense_numel(DLTensor* t, int bits) noexcept:
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
