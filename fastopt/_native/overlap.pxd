# Overlap between the arrays a step writes (used by fastopt/_native/batch.pyx; see overlap.pyx).

ctypedef struct Extent:
    char* start       # first byte
    char* end         # one past the last byte
    Py_ssize_t row    # the parameter it belongs to
    Py_ssize_t index  # its position in the list of extents


cdef struct Extents:
    # The address ranges a gather records, one column per kind of array (parameters, then each
    # state slot, then each counter), each column in row order.
    Extent* data
    Py_ssize_t* filled  # entries used per column
    Py_ssize_t rows     # capacity of a column
    Py_ssize_t columns


cdef struct Order:
    # The sorted order of the extents at the last check that found no overlap: the same arrays,
    # checked again, are then confirmed in one pass instead of a sort.
    Py_ssize_t* index
    Py_ssize_t n


cdef int extents_init(Extents* e, Py_ssize_t rows, Py_ssize_t columns) except -1
cdef void extents_free(Extents* e) noexcept
cdef Py_ssize_t first_overlap(Extents* e, Order* order) except -2
cdef void order_free(Order* order) noexcept


cdef inline void extents_add(Extents* e, Py_ssize_t column, void* data, Py_ssize_t nbytes, Py_ssize_t row) noexcept:
    cdef Extent* entry
    if nbytes > 0:
        entry = e.data + column * e.rows + e.filled[column]
        entry.start = <char*> data
        entry.end = <char*> data + nbytes
        entry.row = row
        e.filled[column] += 1


cdef inline bint ranges_overlap(void* a, Py_ssize_t a_bytes, void* b, Py_ssize_t b_bytes) noexcept nogil:
    return (a_bytes > 0 and b_bytes > 0 and <char*> a < <char*> b + b_bytes
            and <char*> b < <char*> a + a_bytes)
