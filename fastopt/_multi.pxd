# The multi-tensor batch, shared by every optimizer's _cython.pyx (see _multi.pyx).

cdef class Batch:
    cdef Py_ssize_t count        # rows: one per parameter of the group
    cdef Py_ssize_t width        # pointers per row: param, grad, then one per state slot
    cdef void** pointers         # count x width data pointers (NULL for an unused slot)
    cdef Py_ssize_t* sizes       # elements per row (0 for a parameter without gradient)
    cdef list _stepped           # the state dicts whose step counter this batch advances
    cdef object _step_key
    cdef Py_ssize_t _next_step
