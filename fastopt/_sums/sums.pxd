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


cdef extern from *:
    # Four elements of rule 4 at once, in C with GCC's vector types (so that every ISA build keeps
    # the 8 lanes of each element in registers: two vectors of 4 float64): rows a0, a1 against rows
    # b0, b1, each output with its own 8 lanes (vector position j of block k is lane j), every
    # loaded block of 8 values used twice. Element-wise vector arithmetic is IEEE per element, and
    # -ffp-contract=off keeps each product and sum rounded on its own: the rule's bits.
    """
    #include <string.h>
    typedef double fastopt_lanes4 __attribute__((vector_size(32)));

    typedef float fastopt_floats4 __attribute__((vector_size(16)));

    static inline fastopt_lanes4 fastopt_wide4_float(const float* p) {  /* each float widened exactly */
    #ifdef __AVX__
        fastopt_lanes4 wide = {(double)p[0], (double)p[1], (double)p[2], (double)p[3]};  /* one vcvtps2pd */
        return wide;
    #else
        fastopt_floats4 v;  /* SSE2: two cvtps2pd, which the element-wise form does not become */
        memcpy(&v, p, sizeof v);
        return __builtin_convertvector(v, fastopt_lanes4);
    #endif
    }
    static inline fastopt_lanes4 fastopt_wide4_double(const double* p) {
        fastopt_lanes4 v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    static inline double fastopt_tree(fastopt_lanes4 lo, fastopt_lanes4 hi) {
        return ((lo[0] + lo[1]) + (lo[2] + lo[3])) + ((hi[0] + hi[1]) + (hi[2] + hi[3]));
    }
    #define FASTOPT_DOT_2X2(T)                                                                     \
    static void fastopt_dot_2x2_##T(const T* a0, const T* a1, const T* b0, const T* b1,            \
                                    Py_ssize_t count, T* out0, T* out1) {                          \
        fastopt_lanes4 s00l = {0, 0, 0, 0}, s00h = s00l, s01l = s00l, s01h = s00l;                 \
        fastopt_lanes4 s10l = s00l, s10h = s00l, s11l = s00l, s11h = s00l;                         \
        Py_ssize_t k, whole = count - count % 8;                                                   \
        for (k = 0; k < whole; k += 8) {                                                           \
            fastopt_lanes4 a0l = fastopt_wide4_##T(a0 + k), a0h = fastopt_wide4_##T(a0 + k + 4);   \
            fastopt_lanes4 a1l = fastopt_wide4_##T(a1 + k), a1h = fastopt_wide4_##T(a1 + k + 4);   \
            fastopt_lanes4 b0l = fastopt_wide4_##T(b0 + k), b0h = fastopt_wide4_##T(b0 + k + 4);   \
            fastopt_lanes4 b1l = fastopt_wide4_##T(b1 + k), b1h = fastopt_wide4_##T(b1 + k + 4);   \
            s00l += a0l * b0l; s00h += a0h * b0h; s01l += a0l * b1l; s01h += a0h * b1h;            \
            s10l += a1l * b0l; s10h += a1h * b0h; s11l += a1l * b1l; s11h += a1h * b1h;            \
        }                                                                                          \
        for (k = whole; k < count; k++) { /* the last, partial block: lane k - whole */           \
            Py_ssize_t lane = k - whole;                                                           \
            double x0 = (double)a0[k], x1 = (double)a1[k], y0 = (double)b0[k], y1 = (double)b1[k];  \
            if (lane < 4) {                                                                        \
                s00l[lane] += x0 * y0; s01l[lane] += x0 * y1;                                      \
                s10l[lane] += x1 * y0; s11l[lane] += x1 * y1;                                      \
            } else {                                                                               \
                s00h[lane - 4] += x0 * y0; s01h[lane - 4] += x0 * y1;                              \
                s10h[lane - 4] += x1 * y0; s11h[lane - 4] += x1 * y1;                              \
            }                                                                                      \
        }                                                                                          \
        out0[0] = (T)fastopt_tree(s00l, s00h); out0[1] = (T)fastopt_tree(s01l, s01h);               \
        out1[0] = (T)fastopt_tree(s10l, s10h); out1[1] = (T)fastopt_tree(s11l, s11h);               \
    }
    FASTOPT_DOT_2X2(float)
    FASTOPT_DOT_2X2(double)

    /* 2 x 4 outputs where the ISA has 32 vector registers (AVX-512's, used at 256 bits): 16
       accumulators and the loads fit, and every loaded block of the left rows serves 4 outputs */
    #ifdef __AVX512F__
    #define FASTOPT_WIDE_TILES 1
    #else
    #define FASTOPT_WIDE_TILES 0
    #endif
    #define FASTOPT_DOT_2X4(T)                                                                     \
    static void fastopt_dot_2x4_##T(const T* a0, const T* a1, const T* b, Py_ssize_t stride,       \
                                    Py_ssize_t count, T* out0, T* out1) {                          \
        fastopt_lanes4 s[2][4][2];                                                                 \
        Py_ssize_t k, r, c, whole = count - count % 8;                                             \
        const T* rows[2] = {a0, a1};                                                               \
        T* outs[2] = {out0, out1};                                                                 \
        for (r = 0; r < 2; r++) for (c = 0; c < 4; c++) {                                          \
            fastopt_lanes4 zero = {0, 0, 0, 0}; s[r][c][0] = zero; s[r][c][1] = zero; }            \
        for (k = 0; k < whole; k += 8) {                                                           \
            fastopt_lanes4 al[2], ah[2], bl[4], bh[4];                                             \
            for (r = 0; r < 2; r++) {                                                              \
                al[r] = fastopt_wide4_##T(rows[r] + k); ah[r] = fastopt_wide4_##T(rows[r] + k + 4); } \
            for (c = 0; c < 4; c++) {                                                              \
                bl[c] = fastopt_wide4_##T(b + c * stride + k);                                     \
                bh[c] = fastopt_wide4_##T(b + c * stride + k + 4); }                               \
            for (r = 0; r < 2; r++) for (c = 0; c < 4; c++) {                                      \
                s[r][c][0] += al[r] * bl[c]; s[r][c][1] += ah[r] * bh[c]; }                        \
        }                                                                                          \
        for (k = whole; k < count; k++) { /* the last, partial block: lane k - whole */           \
            Py_ssize_t lane = k - whole;                                                           \
            for (r = 0; r < 2; r++) for (c = 0; c < 4; c++) {                                      \
                double product = (double)rows[r][k] * (double)b[c * stride + k];                   \
                s[r][c][lane / 4][lane % 4] += product; }                                          \
        }                                                                                          \
        for (r = 0; r < 2; r++) for (c = 0; c < 4; c++)                                            \
            outs[r][c] = (T)fastopt_tree(s[r][c][0], s[r][c][1]);                                  \
    }
    FASTOPT_DOT_2X4(float)
    FASTOPT_DOT_2X4(double)
    """
    const bint FASTOPT_WIDE_TILES
    void fastopt_dot_2x4_float(const float* a0, const float* a1, const float* b, Py_ssize_t stride,
                               Py_ssize_t count, float* out0, float* out1) noexcept nogil
    void fastopt_dot_2x4_double(const double* a0, const double* a1, const double* b, Py_ssize_t stride,
                                Py_ssize_t count, double* out0, double* out1) noexcept nogil
    void fastopt_dot_2x2_float(const float* a0, const float* a1, const float* b0, const float* b1,
                               Py_ssize_t count, float* out0, float* out1) noexcept nogil
    void fastopt_dot_2x2_double(const double* a0, const double* a1, const double* b0, const double* b1,
                                Py_ssize_t count, double* out0, double* out1) noexcept nogil


cdef inline void dot_2x2(const floating* left0, const floating* left1, const floating* right0,
                         const floating* right1, Py_ssize_t count, floating* out0, floating* out1) noexcept nogil:
    # four elements of rule 4 at once (rows left0, left1 against right0, right1), each with its own
    # 8 lanes: out0[0], out0[1] = left0 . right0, left0 . right1; out1[0], out1[1] = left1 . right0,
    # left1 . right1 (the C above)
    if floating is float:
        fastopt_dot_2x2_float(left0, left1, right0, right1, count, out0, out1)
    else:
        fastopt_dot_2x2_double(left0, left1, right0, right1, count, out0, out1)


cdef inline void matmul_rows(const floating* left, const floating* right, Py_ssize_t rows, Py_ssize_t cols,
                             Py_ssize_t depth, floating* out, bint symmetric) noexcept nogil:
    # out (rows x cols) = left (rows x depth) @ right.T (right: cols x depth), 2 x 4 or 2 x 2 outputs at a
    # time; symmetric (left is right): the tiles on or above the diagonal, then the upper triangle
    # copied to the lower one (the same sums, the same bits)
    cdef Py_ssize_t i, j
    cdef Py_ssize_t even_rows = rows - rows % 2, even_cols = cols - cols % 2
    for i in range(0, even_rows, 2):
        j = i if symmetric else 0
        if FASTOPT_WIDE_TILES:  # 2 x 4 outputs at a time (AVX-512 builds), then 2 x 2
            while j + 4 <= even_cols:
                if floating is float:
                    fastopt_dot_2x4_float(left + i * depth, left + (i + 1) * depth, right + j * depth, depth,
                                          depth, out + i * cols + j, out + (i + 1) * cols + j)
                else:
                    fastopt_dot_2x4_double(left + i * depth, left + (i + 1) * depth, right + j * depth, depth,
                                           depth, out + i * cols + j, out + (i + 1) * cols + j)
                j += 4
        while j < even_cols:
            dot_2x2(left + i * depth, left + (i + 1) * depth, right + j * depth, right + (j + 1) * depth,
                    depth, out + i * cols + j, out + (i + 1) * cols + j)
            j += 2
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
