# The summation order of fastopt._sums (see its docstring), for the Cython loops: value k of a run
# into lane k % 8, each lane added in order in float64 from +0.0, the lanes combined by one tree.
# The loops over whole blocks of 8 have a fixed inner trip count, which gcc vectorises (8 float64
# lanes: one AVX-512 register, two AVX2 ones) without reordering a single addition.

from cython cimport floating


cdef inline double combine_lanes(const double* lanes) noexcept nogil:
    # rule 2's tree: ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7))
    return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]))


cdef inline void add_values(const floating* values, Py_ssize_t count, double* lanes) noexcept nogil:
    # values[k] into lanes[k % 8], widened to float64: whole blocks of 8, then the rest
    cdef Py_ssize_t k, lane, whole = count - count % 8
    for k in range(0, whole, 8):
        for lane in range(8):
            lanes[lane] += <double>values[k + lane]
    for k in range(whole, count):
        lanes[k - whole] += <double>values[k]


cdef inline void add_squares(const floating* values, Py_ssize_t count, double* lanes) noexcept nogil:
    # values[k] ** 2 into lanes[k % 8], each value widened to float64 first
    cdef Py_ssize_t k, lane, whole = count - count % 8
    cdef double wide
    for k in range(0, whole, 8):
        for lane in range(8):
            wide = <double>values[k + lane]
            lanes[lane] += wide * wide
    for k in range(whole, count):
        wide = <double>values[k]
        lanes[k - whole] += wide * wide


cdef inline double run_sum(const floating* values, Py_ssize_t count) noexcept nogil:
    # rule 2 over values[0:count], each widened to float64
    cdef double lanes[8]
    cdef Py_ssize_t k
    for k in range(8):
        lanes[k] = 0.0
    add_values(values, count, lanes)
    return combine_lanes(lanes)


cdef inline double run_sum_of_squares(const floating* values, Py_ssize_t count) noexcept nogil:
    # rule 2 over the squares of values[0:count], each widened to float64 first
    cdef double lanes[8]
    cdef Py_ssize_t k
    for k in range(8):
        lanes[k] = 0.0
    add_squares(values, count, lanes)
    return combine_lanes(lanes)
