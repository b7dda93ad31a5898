# The Cython twin of fastopt/_checks.py (same message): each array a kernel touches must have
# param's length, checked once before the unchecked loop runs.

cdef inline int require_length(str kernel, str name, Py_ssize_t length, Py_ssize_t n) except -1:
    if length != n:
        raise ValueError(f"{kernel}: {name} has {length} elements, but param has {n}")
    return 0
