# The Cython twin of fastopt/_checks.py (same message): each array a kernel touches must have
# param's length, checked once before the unchecked loop runs.

cdef inline int require_length(str kernel, str name, Py_ssize_t length, Py_ssize_t n) except -1:
    if length != n:
        raise ValueError(f"{kernel}: {name} has {length} elements, but param has {n}")
    return 0


cdef inline int require_size(str kernel, str name, Py_ssize_t length, Py_ssize_t expected, str meaning) except -1:
    # a whole-tensor kernel's state array of another length than param's (Adafactor's factors)
    if length != expected:
        raise ValueError(f"{kernel}: {name} has {length} elements, but {meaning} is {expected}")
    return 0


cdef inline int require_matrices(str kernel, Py_ssize_t n, Py_ssize_t rows, Py_ssize_t cols) except -1:
    # param's n elements are a whole number of rows x cols matrices (rows, cols >= 1)
    if rows < 1 or cols < 1 or n % cols != 0 or (n // cols) % rows != 0:
        raise ValueError(f"{kernel}: param has {n} elements, not a whole number of {rows} x {cols} matrices")
    return 0
