# The multi-tensor batch, read by every optimizer's generated <name>_update_many (see batch.pyx).

from cpython.object cimport PyObject

from fastopt._native.overlap cimport Order


cdef class Batch:
    # What the <name>_update_many kernels read:
    cdef Py_ssize_t count        # rows: one per parameter of the group
    cdef Py_ssize_t width        # pointers per row: param, grad, then one per state slot
    cdef void** pointers         # count x width data pointers (NULL for an unused slot)
    cdef Py_ssize_t* sizes       # elements per row (0 for a parameter without gradient)
    cdef object _table           # ... the NumPy arrays (intp) that hold them: pointers, and
    cdef object _row_sizes       # sizes (what a Numba multi-tensor kernel reads)
    # Bookkeeping of Batch.gather / Batch.gather_tensors:
    cdef list _stepped           # the state dicts whose counters this batch advances (gather)
    cdef tuple _counter_keys     # their keys, and the values they all hold (None after
    cdef object _counter_objects # gather_tensors, whose counters are tensors: see _values)
    cdef PyObject** _refs        # a strong reference to every array/tensor whose pointer is recorded
    cdef Py_ssize_t _n_refs
    cdef Order _order            # the sorted order of the last gather's address ranges (a reused
                                 # batch checks it again in one pass instead of sorting)
    cdef Py_ssize_t n_counters   # torch path: 0-d counter tensors per row (step, mu_product)
    cdef void** counters         # count x n_counters pointers (NULL for a row without gradient)
    cdef int* counter_bits       # 32 or 64, per counter
    cdef double* _values         # the counters' common values
    cdef bint _stepped_any       # torch path: some row has a gradient
    cdef readonly int bits       # torch path: 32 or 64, the parameters' float width
    cdef object _owned_key       # torch path: the `owned` tuple last resolved (held), and per entry:
    cdef Py_ssize_t _owned_n
    cdef PyObject** _owned_tensor    # the tensor (borrowed from _owned_key), or NULL
    cdef void** _owned_data          # its array's data
    cdef Py_ssize_t* _owned_size     # its array's size
    cdef int* _owned_type            # its array's NumPy type number (-1 if the array is unfit)
