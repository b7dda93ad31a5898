# PyTorch tensors read through the DLPack C exchange API (DLPack 1.x, dlpack.h): the structs,
# and the two calls fastopt/_native/batch.pyx makes per tensor (see dlpack.pyx).

from cpython.object cimport PyObject
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t

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


cdef bint exchange_api_ready() noexcept
cdef bint describe(PyObject* obj, DLTensor* out) noexcept
cdef Py_ssize_t dense_numel(DLTensor* t, int bits) noexcept
