/* Micro-kernels of the sparse products, in 32-byte vectors.
 *
 * Block (batched product, batch-contiguous layout):
 *
 *   y[0:w] := bias + sum_k val[k] * xt[idx[k] * ldx + (0:w)]
 *
 * for one output row and a block of w = nv * 32 / sizeof(T) batch columns: nv
 * (1, 2, 4 or 8) accumulators stay in registers for the whole row, and each
 * nonzero costs one broadcast and nv fused multiply-adds.
 *
 * Dot (one input row):
 *
 *   sum_k val[k] * x[idx[k]]
 *
 * eight (float) or four (double) nonzeros at a time: the gathered x values are
 * assembled into one vector and multiplied by one vector load of val; the tail
 * takes a half vector and single products, all summed in a fixed order. On Zen 4
 * this runs at about 0.33 ns per nonzero, bound by the loads of the indices and
 * of the gathered x (AVX2 and AVX-512 gather instructions measured slower).
 *
 * Both are written with GCC/Clang vector extensions because neither compiler
 * keeps a Cython-level accumulator array in registers (it spills it to the stack
 * on every nonzero); other compilers get the same sums as plain loops.
 */
#ifndef FASTNN_SPARSE_BLOCK_H
#define FASTNN_SPARSE_BLOCK_H
#include <stddef.h>

#define FASTNN_VEC_BYTES 32

#if defined(__GNUC__) || defined(__clang__)

typedef float fastnn_vf __attribute__((vector_size(FASTNN_VEC_BYTES), aligned(4), may_alias));
typedef double fastnn_vd __attribute__((vector_size(FASTNN_VEC_BYTES), aligned(8), may_alias));
typedef float fastnn_hf __attribute__((vector_size(FASTNN_VEC_BYTES / 2), aligned(4), may_alias));
typedef double fastnn_hd __attribute__((vector_size(FASTNN_VEC_BYTES / 2), aligned(8), may_alias));

#define FASTNN_DOT_F(NAME, I)                                                               \
    static inline float NAME(const float *x, const I *idx, const float *val, ptrdiff_t nnz) { \
        fastnn_vf acc = {0};                                                                \
        fastnn_hf h;                                                                        \
        float t0 = 0, t1 = 0, t2 = 0;                                                       \
        ptrdiff_t k = 0;                                                                    \
        for (; k + 8 <= nnz; k += 8) {                                                      \
            fastnn_vf xv = {x[idx[k]], x[idx[k + 1]], x[idx[k + 2]], x[idx[k + 3]],        \
                            x[idx[k + 4]], x[idx[k + 5]], x[idx[k + 6]], x[idx[k + 7]]};    \
            acc += *(const fastnn_vf *)(val + k) * xv;                                      \
        }                                                                                   \
        h = (fastnn_hf){acc[0] + acc[4], acc[1] + acc[5], acc[2] + acc[6], acc[3] + acc[7]}; \
        if (k + 4 <= nnz) {                                                                 \
            fastnn_hf xv = {x[idx[k]], x[idx[k + 1]], x[idx[k + 2]], x[idx[k + 3]]};        \
            h += *(const fastnn_hf *)(val + k) * xv;                                        \
            k += 4;                                                                         \
        }                                                                                   \
        if (k < nnz) t0 = val[k] * x[idx[k]];                                               \
        if (k + 1 < nnz) t1 = val[k + 1] * x[idx[k + 1]];                                   \
        if (k + 2 < nnz) t2 = val[k + 2] * x[idx[k + 2]];                                   \
        return ((h[0] + h[1]) + (h[2] + h[3])) + ((t0 + t1) + t2);                          \
    }

#define FASTNN_DOT_D(NAME, I)                                                               \
    static inline double NAME(const double *x, const I *idx, const double *val,             \
                              ptrdiff_t nnz) {                                              \
        fastnn_vd acc = {0};                                                                \
        fastnn_hd h;                                                                        \
        double t0 = 0;                                                                      \
        ptrdiff_t k = 0;                                                                    \
        for (; k + 4 <= nnz; k += 4) {                                                      \
            fastnn_vd xv = {x[idx[k]], x[idx[k + 1]], x[idx[k + 2]], x[idx[k + 3]]};        \
            acc += *(const fastnn_vd *)(val + k) * xv;                                      \
        }                                                                                   \
        h = (fastnn_hd){acc[0] + acc[2], acc[1] + acc[3]};                                  \
        if (k + 2 <= nnz) {                                                                 \
            fastnn_hd xv = {x[idx[k]], x[idx[k + 1]]};                                      \
            h += *(const fastnn_hd *)(val + k) * xv;                                        \
            k += 2;                                                                         \
        }                                                                                   \
        if (k < nnz) t0 = val[k] * x[idx[k]];                                               \
        return (h[0] + h[1]) + t0;                                                          \
    }

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

#define FASTNN_DOT_PLAIN(NAME, T, I)                                                        \
    static inline T NAME(const T *x, const I *idx, const T *val, ptrdiff_t nnz) {           \
        T s0 = 0, s1 = 0, s2 = 0, s3 = 0;                                                   \
        ptrdiff_t k = 0;                                                                    \
        for (; k + 4 <= nnz; k += 4) {                                                      \
            s0 += val[k] * x[idx[k]];                                                       \
            s1 += val[k + 1] * x[idx[k + 1]];                                               \
            s2 += val[k + 2] * x[idx[k + 2]];                                               \
            s3 += val[k + 3] * x[idx[k + 3]];                                               \
        }                                                                                   \
        for (; k < nnz; k++) s0 += val[k] * x[idx[k]];                                      \
        return (s0 + s1) + (s2 + s3);                                                       \
    }
#define FASTNN_DOT_F(NAME, I) FASTNN_DOT_PLAIN(NAME, float, I)
#define FASTNN_DOT_D(NAME, I) FASTNN_DOT_PLAIN(NAME, double, I)

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
FASTNN_DOT_F(fastnn_dot_f_u16, unsigned short)
FASTNN_DOT_F(fastnn_dot_f_i32, int)
FASTNN_DOT_D(fastnn_dot_d_u16, unsigned short)
FASTNN_DOT_D(fastnn_dot_d_i32, int)

#endif
