/* Micro-kernels of the block-sparse product, in vectors of one block.
 *
 * A block is B consecutive output units of one input row of W (n_in, n_out). For one
 * block column (outputs c*B to c*B+B) and rows of X:
 *
 *   y[r, 0:B] := bias[0:B] + sum_k x[r, idx[k]] * val[k, 0:B]
 *
 * Each block costs one vector load of its B contiguous values and, per row, one
 * broadcast of x and one multiply-add into accumulators kept in registers:
 *
 * - one row (`_1`): four accumulators take every fourth block, so that four
 *   multiply-adds are in flight instead of one chain waiting on the adder's latency;
 *   they are summed in a fixed order at the end;
 * - R rows at once (`_R`): one accumulator per row, the rows being independent
 *   chains; R is chosen so that the accumulators fill about eight 32-byte registers.
 *   A short group (3 to R - 1 rows) runs it too, repeating its last row, whose extra
 *   sums are not written.
 *
 * Rows go to the R-row kernel in groups, the last one or two one by one; the grouping
 * depends on the batch alone, so results are the same for any thread count.
 *
 * `width` (at most B) is the number of outputs written: the last block column of a
 * layer whose width B does not divide is partial (its stored values are padded with
 * zeros, so the padded lanes hold sums that are never written).
 *
 * Written with GCC/Clang vector extensions, like sparse_block.h, because compilers do
 * not keep a Cython-level accumulator array in registers; other compilers get the same
 * sums as plain loops.
 */
#ifndef FASTNN_BLOCKSPARSE_H
#define FASTNN_BLOCKSPARSE_H
#include <stddef.h>
#include <string.h>

/* Rows per call of the R-row kernel: accumulators of about 256 bytes in all. */
#define FASTNN_BSR_R(T, B) ((B) * sizeof(T) >= 128 ? 2 : (B) * sizeof(T) >= 64 ? 4 : 8)

#if defined(__GNUC__) || defined(__clang__)

#define FASTNN_BSR_VEC(NAME, T, B)                                                          \
    typedef T NAME##_v __attribute__((vector_size(B * sizeof(T)), aligned(sizeof(T))));     \
    static inline NAME##_v NAME##_bias(const T *bias, ptrdiff_t width) {                    \
        NAME##_v b0 = {0};                                                                  \
        T tmp[B];                                                                           \
        if (bias != NULL) {                                                                 \
            memset(tmp, 0, sizeof(tmp));                                                    \
            memcpy(tmp, bias, (size_t)width * sizeof(T));                                   \
            memcpy(&b0, tmp, sizeof(tmp));                                                  \
        }                                                                                   \
        return b0;                                                                          \
    }                                                                                       \
    static inline void NAME##_store(T *y, NAME##_v acc, ptrdiff_t width) {                  \
        if (width == B) *(NAME##_v *)y = acc;                                               \
        else memcpy(y, &acc, (size_t)width * sizeof(T));                                    \
    }

#define FASTNN_BSR_ONE(NAME, V, T, I, B)                                                    \
    static inline void NAME##_1(const T *x, ptrdiff_t ldx, const I *idx, const T *val,      \
                                ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,          \
                                ptrdiff_t width) {                                          \
        V##_v a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};                                       \
        ptrdiff_t k = 0;                                                                    \
        (void)ldx; (void)ldy;                                                               \
        for (; k + 4 <= nnzb; k += 4) {                                                     \
            a0 += x[idx[k]] * *(const V##_v *)(val + k * B);                                \
            a1 += x[idx[k + 1]] * *(const V##_v *)(val + (k + 1) * B);                      \
            a2 += x[idx[k + 2]] * *(const V##_v *)(val + (k + 2) * B);                      \
            a3 += x[idx[k + 3]] * *(const V##_v *)(val + (k + 3) * B);                      \
        }                                                                                   \
        for (; k < nnzb; k++) a0 += x[idx[k]] * *(const V##_v *)(val + k * B);             \
        V##_store(y, V##_bias(bias, width) + ((a0 + a1) + (a2 + a3)), width);               \
    }

#define FASTNN_BSR_ROWS_KERNEL(NAME, V, T, I, B)                                            \
    static inline void NAME##_R(const T *x, ptrdiff_t ldx, const I *idx, const T *val,      \
                                ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,          \
                                ptrdiff_t width, ptrdiff_t rows) {                          \
        enum { R = FASTNN_BSR_R(T, B) };                                                    \
        V##_v acc[R], b0 = V##_bias(bias, width);                                           \
        ptrdiff_t k, off[R];                                                                \
        int r;                                                                              \
        for (r = 0; r < R; r++) {                                                           \
            acc[r] = b0;                                                                    \
            off[r] = (r < rows ? r : rows - 1) * ldx; /* short groups repeat a row */       \
        }                                                                                   \
        for (k = 0; k < nnzb; k++) {                                                        \
            V##_v w = *(const V##_v *)(val + k * B);                                        \
            const T *xc = x + idx[k];                                                       \
            for (r = 0; r < R; r++) acc[r] += xc[off[r]] * w;                               \
        }                                                                                   \
        for (r = 0; r < rows; r++) V##_store(y + r * ldy, acc[r], width);                   \
    }

#else

#define FASTNN_BSR_VEC(NAME, T, B)

#define FASTNN_BSR_ONE(NAME, V, T, I, B)                                                    \
    static inline void NAME##_1(const T *x, ptrdiff_t ldx, const I *idx, const T *val,      \
                                ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,          \
                                ptrdiff_t width) {                                          \
        T acc[B];                                                                           \
        ptrdiff_t k;                                                                        \
        int j;                                                                              \
        (void)ldx; (void)ldy;                                                               \
        for (j = 0; j < B; j++) acc[j] = 0;                                                 \
        for (k = 0; k < nnzb; k++)                                                          \
            for (j = 0; j < B; j++) acc[j] += x[idx[k]] * val[k * B + j];                   \
        for (j = 0; j < width; j++) y[j] = (bias != NULL ? bias[j] : 0) + acc[j];           \
    }

#define FASTNN_BSR_ROWS_KERNEL(NAME, V, T, I, B)                                            \
    static inline void NAME##_R(const T *x, ptrdiff_t ldx, const I *idx, const T *val,      \
                                ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,          \
                                ptrdiff_t width, ptrdiff_t rows) {                          \
        ptrdiff_t r;                                                                        \
        for (r = 0; r < rows; r++)                                                          \
            NAME##_1(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy, width);      \
    }

#endif

#define FASTNN_BSR_WIDTH(NAME, V, T, I, B)                                                  \
    FASTNN_BSR_ONE(NAME##_##B, V, T, I, B)                                                  \
    FASTNN_BSR_ROWS_KERNEL(NAME##_##B, V, T, I, B)                                          \
    static inline void NAME##_##B(const T *x, ptrdiff_t ldx, const I *idx, const T *val,    \
                                  ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,        \
                                  ptrdiff_t width, ptrdiff_t rows) {                        \
        enum { R = FASTNN_BSR_R(T, B) };                                                    \
        ptrdiff_t r = 0;                                                                    \
        for (; r + R <= rows; r += R)                                                       \
            NAME##_##B##_R(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy, width, \
                           R);                                                              \
        if (rows - r >= 3) /* a short group: R rows cost less than three single ones */    \
            NAME##_##B##_R(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy, width, \
                           rows - r);                                                       \
        else                                                                                \
            for (; r < rows; r++)                                                           \
                NAME##_##B##_1(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy,    \
                               width);                                                      \
    }

/* One entry point per (value, index) type: `block` picks B (4, 8 or 16). */
#define FASTNN_BSR(NAME, T, I, VNAME)                                                       \
    FASTNN_BSR_WIDTH(NAME, VNAME##_4, T, I, 4)                                              \
    FASTNN_BSR_WIDTH(NAME, VNAME##_8, T, I, 8)                                              \
    FASTNN_BSR_WIDTH(NAME, VNAME##_16, T, I, 16)                                            \
    static inline void NAME(const T *x, ptrdiff_t ldx, const I *idx, const T *val,          \
                            ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,              \
                            ptrdiff_t width, int block, ptrdiff_t rows) {                   \
        switch (block) {                                                                    \
            case 4: NAME##_4(x, ldx, idx, val, nnzb, bias, y, ldy, width, rows); break;     \
            case 8: NAME##_8(x, ldx, idx, val, nnzb, bias, y, ldy, width, rows); break;     \
            default: NAME##_16(x, ldx, idx, val, nnzb, bias, y, ldy, width, rows); break;   \
        }                                                                                   \
    }

FASTNN_BSR_VEC(fastnn_bsr_vf_4, float, 4)
FASTNN_BSR_VEC(fastnn_bsr_vf_8, float, 8)
FASTNN_BSR_VEC(fastnn_bsr_vf_16, float, 16)
FASTNN_BSR_VEC(fastnn_bsr_vd_4, double, 4)
FASTNN_BSR_VEC(fastnn_bsr_vd_8, double, 8)
FASTNN_BSR_VEC(fastnn_bsr_vd_16, double, 16)
FASTNN_BSR(fastnn_bsr_f_u16, float, unsigned short, fastnn_bsr_vf)
FASTNN_BSR(fastnn_bsr_f_i32, float, int, fastnn_bsr_vf)
FASTNN_BSR(fastnn_bsr_d_u16, double, unsigned short, fastnn_bsr_vd)
FASTNN_BSR(fastnn_bsr_d_i32, double, int, fastnn_bsr_vd)

#endif
