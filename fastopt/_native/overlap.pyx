# Built for the baseline instruction set, like every module of fastopt/_native that moves no
# floating-point data.
"""Do any two of many address ranges overlap? In O(n log n), and in one pass when the same
ranges are checked again in the same order.

A multi-tensor step (:mod:`fastopt._native.batch`) writes every parameter and state buffer of a
group in one kernel call; if two of them shared memory, the result would depend on the order of
the rows. The gather records each array's byte range here and asks :func:`first_overlap`.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc


cdef int extents_init(Extents* e, Py_ssize_t rows, Py_ssize_t columns) except -1:
    cdef Py_ssize_t column
    e.rows, e.columns = rows, columns
    e.data = <Extent*> PyMem_Malloc(max(rows * columns, 1) * sizeof(Extent))
    e.filled = <Py_ssize_t*> PyMem_Malloc(max(columns, 1) * sizeof(Py_ssize_t))
    if e.data == NULL or e.filled == NULL:
        extents_free(e)
        raise MemoryError()
    for column in range(columns):
        e.filled[column] = 0
    return 0


cdef void extents_free(Extents* e) noexcept:
    PyMem_Free(e.data)
    PyMem_Free(e.filled)
    e.data, e.filled = NULL, NULL


cdef void order_free(Order* order) noexcept:
    PyMem_Free(order.index)
    order.index, order.n = NULL, 0


cdef void _merge(Extent* src, Py_ssize_t lo, Py_ssize_t mid, Py_ssize_t hi, Extent* dst) noexcept nogil:
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


cdef Extent* _sort(Extent* a, Extent* b, Py_ssize_t n, Py_ssize_t* runs) noexcept nogil:
    """Sort ``a[:n]`` by start address (``b`` and ``runs``, of n and n + 1 entries, are scratch);
    returns ``a`` or ``b``, whichever holds the result.

    A natural merge sort: it finds the runs that are already in order, then merges neighbouring
    runs pairwise, so arrays that lie in memory in the order they are listed cost one pass; in
    the worst case, O(n log n).
    """
    cdef Py_ssize_t count = 1, i, r, out
    cdef Extent* swap
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



cdef Py_ssize_t first_overlap(Extents* e, Order* order) except -2:
    """The smaller row of two overlapping extents, or -1 if they are pairwise disjoint.

    Sorted by start, two extents overlap exactly when some extent overlaps its successor. The
    columns are moved together first. ``order`` remembers the sorted order of the last check that
    found no overlap: the same arrays, checked again, are found in order in one pass, and only a
    changed layout is sorted again."""
    cdef Py_ssize_t column, i, j, n = 0, found = -1
    cdef Extent* ordered
    cdef void* scratch
    for column in range(e.columns):
        for i in range(e.filled[column]):
            e.data[n] = e.data[column * e.rows + i]
            e.data[n].index = n
            n += 1
    if n < 2:
        return -1
    if order.n == n:
        for i in range(1, n):
            j = order.index[i]
            if e.data[j].start < e.data[order.index[i - 1]].start:
                break  # not in the old order any more: sort again
            if e.data[j].start < e.data[order.index[i - 1]].end:
                return min(e.data[j].row, e.data[order.index[i - 1]].row)
        else:
            return -1
    scratch = PyMem_Malloc(n * sizeof(Extent) + (n + 1) * sizeof(Py_ssize_t))
    if scratch == NULL:
        raise MemoryError()
    ordered = _sort(e.data, <Extent*> scratch, n, <Py_ssize_t*> ((<Extent*> scratch) + n))
    for i in range(1, n):
        if ordered[i].start < ordered[i - 1].end:
            found = min(ordered[i].row, ordered[i - 1].row)
            break
    if found < 0:  # remember the order for the next gather
        PyMem_Free(order.index)
        order.n = 0
        order.index = <Py_ssize_t*> PyMem_Malloc(n * sizeof(Py_ssize_t))
        if order.index != NULL:
            for i in range(n):
                order.index[i] = ordered[i].index
            order.n = n
    PyMem_Free(scratch)
    return found

