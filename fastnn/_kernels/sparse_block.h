/* Register-blocked micro-kernel of the batched sparse product.
 *
 *   y[0:w] := bias + sum_k val[k] * xt[idx[k] * ldx + (0:w)]
 *
 * for one output row and a block of w = nv * 32 / sizeof(T) batch columns: nv
 * (1, 2, 4 or 8) 32-byte accumulators stay in registers for the whole row, and
 * each nonzero costs one broadcast and nv fused multiply-adds. The loop is written
 * with GCC/Clang vector extensions because neither compiler keeps a Cython-level
 * accumulator array in registers (it spills it to the stack on every nonzero);
 * other compilers get the same arithmetic as a plain loop.
 */
#ifndef FASTNN_SPARSE_BLOCK_H
#define FASTNN_SPARSE_BLOCK_H
#include <stddef.h>

#define FASTNN_VEC_BYTES 32

#if defined(__GNUC__) || defined(__clang__)

typedef float fastnn_vf __attribute__((vector_size(FASTNN_VEC_BYTES), aligned(4), may_alias));
typedef double fastnn_vd __attribute__((vector_size(FASTNN_VEC_BYTES), aligned(8), may_alias));

#define FASTNN_BLOCK_NV(NAME, T, V, I, NV)                                                  \
    static inline void NAME##_##NV(const T *xt, ptrdiff_t ldx, const I *idx, const T *val,  \
                                   ptrdiff_t nnz, T bias, T *y) {                           \
        V acc[NV];                                                                          \
        ptrdiff_t k;                                                                        \
        int v;                                                                              \
        for (v = 0; v < NV; v++) acc[v] = (V){0} + bias;                                    \
        for (k = 0; k < nnz; k++) {                                                         \
            const V *xr = (const V *)(xt + (ptrdiff_t)idx[k] * ldx);                        \
            T w = val[k];                                                                   \
            for (v = 0; v < NV; v++) acc[v] += w * xr[v];                                   \
        }                                                                                   \
        for (v = 0; v < NV; v++) ((V *)y)[v] = acc[v];                                      \
    }

#else

#define FASTNN_BLOCK_NV(NAME, T, V, I, NV)                                                  \
    static inline void NAME##_##NV(const T *xt, ptrdiff_t ldx, const I *idx, const T *val,  \
                                   ptrdiff_t nnz, T bias, T *y) {                           \
        enum { W = NV * FASTNN_VEC_BYTES / sizeof(T) };                                     \
        T acc[NV * FASTNN_VEC_BYTES / sizeof(T)];                                           \
        ptrdiff_t k;                                                                        \
        int j;                                                                              \
        for (j = 0; j < W; j++) acc[j] = bias;                                              \
        for (k = 0; k < nnz; k++) {                                                         \
            const T *xr = xt + (ptrdiff_t)idx[k] * ldx;                                     \
            T w = val[k];                                                                   \
            for (j = 0; j < W; j++) acc[j] += w * xr[j];                                    \
        }                                                                                   \
        for (j = 0; j < W; j++) y[j] = acc[j];                                              \
    }

#endif

/* One entry point per (value, index) type: nv picks the width. */
#define FASTNN_BLOCK(NAME, T, V, I)                                                         \
    FASTNN_BLOCK_NV(NAME, T, V, I, 1)                                                       \
    FASTNN_BLOCK_NV(NAME, T, V, I, 2)                                                       \
    FASTNN_BLOCK_NV(NAME, T, V, I, 4)                                                       \
    FASTNN_BLOCK_NV(NAME, T, V, I, 8)                                                       \
    static inline void NAME(const T *xt, ptrdiff_t ldx, const I *idx, const T *val,         \
                            ptrdiff_t nnz, T bias, T *y, int nv) {                          \
        switch (nv) {                                                                       \
            case 8: NAME##_8(xt, ldx, idx, val, nnz, bias, y); break;                       \
            case 4: NAME##_4(xt, ldx, idx, val, nnz, bias, y); break;                       \
            case 2: NAME##_2(xt, ldx, idx, val, nnz, bias, y); break;                       \
            default: NAME##_1(xt, ldx, idx, val, nnz, bias, y); break;                      \
        }                                                                                   \
    }

FASTNN_BLOCK(fastnn_block_f_u16, float, fastnn_vf, unsigned short)
FASTNN_BLOCK(fastnn_block_f_i32, float, fastnn_vf, int)
FASTNN_BLOCK(fastnn_block_d_u16, double, fastnn_vd, unsigned short)
FASTNN_BLOCK(fastnn_block_d_i32, double, fastnn_vd, int)

#endif
