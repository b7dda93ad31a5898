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


# Rule 4, a matrix product: out[i, j] = sum over k of left[i, k] * right[j, k] (left @ right.T, both
# read along k), each product of two values widened to float64, in lane k % 8, the lanes combined
# by the tree, rounded once to floating where stored.

cdef inline void add_products(const floating* left, const floating* right, Py_ssize_t count,
                              double* lanes) noexcept nogil:
    # left[k] * right[k] into lanes[k % 8]: whole blocks of 8, then the rest
    cdef Py_ssize_t k, lane, whole = count - count % 8
    for k in range(0, whole, 8):
        for lane in range(8):
            lanes[lane] += <double>left[k + lane] * <double>right[k + lane]
    for k in range(whole, count):
        lanes[k - whole] += <double>left[k] * <double>right[k]


cdef inline floating dot(const floating* left, const floating* right, Py_ssize_t count) noexcept nogil:
    # one element of rule 4, rounded to floating
    cdef double lanes[8]
    cdef Py_ssize_t k
    for k in range(8):
        lanes[k] = 0.0
    add_products(left, right, count, lanes)
    return <floating>combine_lanes(lanes)


cdef inline void dot_2x2(const floating* left0, const floating* left1, const floating* right0,
                         const floating* right1, Py_ssize_t count, floating* out0, floating* out1) noexcept nogil:
    # four elements of rule 4 at once (rows left0, left1 against right0, right1), each with its own
    # 8 lanes: every loaded block of 8 values is used twice. out0[0], out0[1] = left0 . right0,
    # left0 . right1; out1[0], out1[1] = left1 . right0, left1 . right1
    cdef double lanes00[8]
    cdef double lanes01[8]
    cdef double lanes10[8]
    cdef double lanes11[8]
    cdef double a0, a1, b0, b1
    cdef Py_ssize_t k, lane, whole = count - count % 8
    for lane in range(8):
        lanes00[lane] = 0.0
        lanes01[lane] = 0.0
        lanes10[lane] = 0.0
        lanes11[lane] = 0.0
    for k in range(0, whole, 8):
        for lane in range(8):
            a0 = <double>left0[k + lane]
            a1 = <double>left1[k + lane]
            b0 = <double>right0[k + lane]
            b1 = <double>right1[k + lane]
            lanes00[lane] += a0 * b0
            lanes01[lane] += a0 * b1
            lanes10[lane] += a1 * b0
            lanes11[lane] += a1 * b1
    for k in range(whole, count):
        lane = k - whole
        a0 = <double>left0[k]
        a1 = <double>left1[k]
        b0 = <double>right0[k]
        b1 = <double>right1[k]
        lanes00[lane] += a0 * b0
        lanes01[lane] += a0 * b1
        lanes10[lane] += a1 * b0
        lanes11[lane] += a1 * b1
    out0[0] = <floating>combine_lanes(lanes00)
    out0[1] = <floating>combine_lanes(lanes01)
    out1[0] = <floating>combine_lanes(lanes10)
    out1[1] = <floating>combine_lanes(lanes11)


cdef inline void matmul_rows(const floating* left, const floating* right, Py_ssize_t rows, Py_ssize_t cols,
                             Py_ssize_t depth, floating* out, bint symmetric) noexcept nogil:
    # out (rows x cols) = left (rows x depth) @ right.T (right: cols x depth), 2 x 2 outputs at a
    # time; symmetric (left is right): the tiles on or above the diagonal, then the upper triangle
    # copied to the lower one (the same sums, the same bits)
    cdef Py_ssize_t i, j, first
    cdef Py_ssize_t even_rows = rows - rows % 2, even_cols = cols - cols % 2
    for i in range(0, even_rows, 2):
        first = i if symmetric else 0
        for j in range(first, even_cols, 2):
            dot_2x2(left + i * depth, left + (i + 1) * depth, right + j * depth, right + (j + 1) * depth,
                    depth, out + i * cols + j, out + (i + 1) * cols + j)
        if even_cols < cols:  # the last, odd column
            j = even_cols
            out[i * cols + j] = dot(left + i * depth, right + j * depth, depth)
            out[(i + 1) * cols + j] = dot(left + (i + 1) * depth, right + j * depth, depth)
    if even_rows < rows:  # the last, odd row
        i = even_rows
        for j in range(i if symmetric else 0, cols):
            out[i * cols + j] = dot(left + i * depth, right + j * depth, depth)
    if symmetric:
        for i in range(rows):
            for j in range(i):
                out[i * cols + j] = out[j * cols + i]
