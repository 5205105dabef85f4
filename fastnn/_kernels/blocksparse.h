/* Micro-kernel of the block-sparse product, in vectors of one block.
 *
 * A block is B consecutive output units of one input row of W (n_in, n_out). For one
 * block column (outputs c*B to c*B+B) and R rows of X:
 *
 *   y[r, 0:B] := bias[0:B] + sum_k x[r, idx[k]] * val[k, 0:B]      (r < R)
 *
 * The R accumulators of B outputs stay in registers for the whole block column; each
 * block costs one vector load of its B contiguous values and, per row, one broadcast
 * of x and one fused multiply-add. Blocks are added in their stored order, one at a
 * time, so every output is the same sum whatever R and the thread count.
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

/* Rows of X per call of the widest kernel. */
#define FASTNN_BSR_ROWS 4

#if defined(__GNUC__) || defined(__clang__)

/* Products and sums stay separate operations (no contraction into fused multiply-adds):
 * compilers contract the kernels of different R differently, and a row's result must
 * not depend on the rows computed with it. */
#if defined(__clang__)
#define FASTNN_BSR_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define FASTNN_BSR_NO_CONTRACT
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

#define FASTNN_BSR_KERNEL(NAME, T, I, B, R)                                                 \
    typedef T NAME##_v __attribute__((vector_size(B * sizeof(T)), aligned(sizeof(T))));     \
    static inline void NAME(const T *x, ptrdiff_t ldx, const I *idx, const T *val,          \
                            ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,              \
                            ptrdiff_t width) {                                              \
        FASTNN_BSR_NO_CONTRACT                                                              \
        NAME##_v acc[R], b0 = {0};                                                          \
        T tmp[B];                                                                           \
        ptrdiff_t k;                                                                        \
        int r;                                                                              \
        if (bias != NULL) {                                                                 \
            memset(tmp, 0, sizeof(tmp));                                                    \
            memcpy(tmp, bias, (size_t)width * sizeof(T));                                   \
            memcpy(&b0, tmp, sizeof(tmp));                                                  \
        }                                                                                   \
        for (r = 0; r < R; r++) acc[r] = b0;                                                \
        for (k = 0; k < nnzb; k++) {                                                        \
            NAME##_v w = *(const NAME##_v *)(val + k * B);                                  \
            const T *xc = x + idx[k];                                                       \
            for (r = 0; r < R; r++) acc[r] += xc[r * ldx] * w;                              \
        }                                                                                   \
        if (width == B) {                                                                   \
            for (r = 0; r < R; r++) *(NAME##_v *)(y + r * ldy) = acc[r];                    \
        } else {                                                                            \
            for (r = 0; r < R; r++) memcpy(y + r * ldy, &acc[r], (size_t)width * sizeof(T)); \
        }                                                                                   \
    }

#else

#define FASTNN_BSR_KERNEL(NAME, T, I, B, R)                                                 \
    static inline void NAME(const T *x, ptrdiff_t ldx, const I *idx, const T *val,          \
                            ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,              \
                            ptrdiff_t width) {                                              \
        T acc[R][B];                                                                        \
        ptrdiff_t k;                                                                        \
        int r, j;                                                                           \
        for (r = 0; r < R; r++)                                                             \
            for (j = 0; j < B; j++) acc[r][j] = (bias != NULL && j < width) ? bias[j] : 0;  \
        for (k = 0; k < nnzb; k++) {                                                        \
            const T *w = val + k * B;                                                       \
            const T *xc = x + idx[k];                                                       \
            for (r = 0; r < R; r++)                                                         \
                for (j = 0; j < B; j++) acc[r][j] += xc[r * ldx] * w[j];                    \
        }                                                                                   \
        for (r = 0; r < R; r++) memcpy(y + r * ldy, acc[r], (size_t)width * sizeof(T));    \
    }

#endif

/* One entry point per (value, index) type: `block` picks B (4, 8 or 16), `rows` the
 * number of rows (FASTNN_BSR_ROWS at once, the rest one by one). */
#define FASTNN_BSR(NAME, T, I)                                                              \
    FASTNN_BSR_KERNEL(NAME##_4_1, T, I, 4, 1)                                               \
    FASTNN_BSR_KERNEL(NAME##_4_R, T, I, 4, FASTNN_BSR_ROWS)                                 \
    FASTNN_BSR_KERNEL(NAME##_8_1, T, I, 8, 1)                                               \
    FASTNN_BSR_KERNEL(NAME##_8_R, T, I, 8, FASTNN_BSR_ROWS)                                 \
    FASTNN_BSR_KERNEL(NAME##_16_1, T, I, 16, 1)                                             \
    FASTNN_BSR_KERNEL(NAME##_16_R, T, I, 16, FASTNN_BSR_ROWS)                               \
    static inline void NAME(const T *x, ptrdiff_t ldx, const I *idx, const T *val,          \
                            ptrdiff_t nnzb, const T *bias, T *y, ptrdiff_t ldy,              \
                            ptrdiff_t width, int block, ptrdiff_t rows) {                   \
        ptrdiff_t r = 0;                                                                    \
        switch (block) {                                                                    \
            case 4:                                                                         \
                for (; r + FASTNN_BSR_ROWS <= rows; r += FASTNN_BSR_ROWS)                   \
                    NAME##_4_R(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy,    \
                               width);                                                      \
                for (; r < rows; r++)                                                       \
                    NAME##_4_1(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy,    \
                               width);                                                      \
                break;                                                                      \
            case 8:                                                                         \
                for (; r + FASTNN_BSR_ROWS <= rows; r += FASTNN_BSR_ROWS)                   \
                    NAME##_8_R(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy,    \
                               width);                                                      \
                for (; r < rows; r++)                                                       \
                    NAME##_8_1(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy,    \
                               width);                                                      \
                break;                                                                      \
            default:                                                                        \
                for (; r + FASTNN_BSR_ROWS <= rows; r += FASTNN_BSR_ROWS)                   \
                    NAME##_16_R(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy,   \
                                width);                                                     \
                for (; r < rows; r++)                                                       \
                    NAME##_16_1(x + r * ldx, ldx, idx, val, nnzb, bias, y + r * ldy, ldy,   \
                                width);                                                     \
                break;                                                                      \
        }                                                                                   \
    }

FASTNN_BSR(fastnn_bsr_f_u16, float, unsigned short)
FASTNN_BSR(fastnn_bsr_f_i32, float, int)
FASTNN_BSR(fastnn_bsr_d_u16, double, unsigned short)
FASTNN_BSR(fastnn_bsr_d_i32, double, int)

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#endif
