/* Quantized products: u8 x s8 -> s32 (int8 engines) and bf16 x bf16 -> f32 (bf16 engines).
 *
 *   C[i, j] := sum_k X[i, k] * W[k, j]
 *
 * Weights are packed once into panels of 16 output units. Panels come in groups of
 * up to four; within a group, the weights of one step of the inner dimension (4
 * inputs for int8, 2 for bf16) lie contiguous for the group's panels, 64 bytes a
 * panel, so a product streams one block of memory per group:
 *
 *   byte of W[k, j] (int8):  group g = j / 64, panel p = (j / 16) % 4, lane = j % 16,
 *                            g * 4 * nkb * 64 + ((k / 4) * pg + p) * 64 + lane * 4 + k % 4
 *   (bf16: k / 2 and k % 2, two bytes a value), pg the panels of group g.
 *
 * One step is one instruction per panel and row: vpdpbusd (AVX512-VNNI, or AVX-VNNI
 * in 256 bits) adds four u8 x s8 products into each of 16 int32 lanes; vdpbf16ps
 * (AVX512-BF16) adds two bf16 products into each of 16 float lanes, the odd element
 * first. A tile of up to 4 rows x 4 panels keeps its 16 accumulators in registers.
 *
 * The instruction set is chosen at run time from what the running CPU (and its OS)
 * supports, through functions compiled for that target alone, so a build without
 * -march=native still uses them and a CPU without them never runs them. The portable
 * path computes the same sums in the same order: integer results are identical, and
 * bf16 sums are too (each bf16 product is exact in float, so a fused or separate
 * multiply-add rounds alike), denormals aside (the instruction flushes them).
 *
 * X rows must hold nkb * 4 (int8) or nkb * 2 (bf16) readable elements; C rows
 * n_panels * 16 writable ones.
 *
 * Block-sparse int8 (`fastnn_q8_bsr`): W kept in blocks of B = 4, 8 or 16 consecutive
 * output units of one input row (see fastnn/_kernels/blocksparse.pyx), block column by
 * block column. The blocks of a column are taken four at a time ("quads", the last one
 * completed with zero weights on its first input row): a quad's inputs idx[4 q .. 4 q + 3]
 * (uint16: at most 65536 inputs) and its weights, B x 4 bytes, output unit first and the
 * quad's four inputs contiguous, as one step of the dense layout. Per quad and row, the
 * quad's four u8 inputs make one 32-bit word (gathered byte by byte for one row; for
 * groups of four rows, from the rows interleaved once per call, with one byte shuffle),
 * broadcast, and one vpdpbusd on a B-lane vector adds the quad's 4 x B products into B
 * int32 sums: the same products as the dense product, whose integer sums are the same in
 * any order, so the results are identical.
 */
#ifndef FASTNN_QUANT_H
#define FASTNN_QUANT_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <math.h>

enum { FASTNN_ISA_PORTABLE = 0, FASTNN_ISA_AVX512 = 1, FASTNN_ISA_AVX256 = 2 };

#define FASTNN_PANEL 16
#define FASTNN_GROUP 4
#define FASTNN_MR 4

/* GCC 12 at -O3 vectorizes the bf16 portable loop over k wrongly when it tunes for
 * Sapphire Rapids (x0 counted twice at k = 3, seen with -march=sapphirerapids and in
 * the extension built with -march=native there); its loops stay scalar. */
#if defined(__GNUC__) && !defined(__clang__)
#define FASTNN_NO_LOOP_VECTORIZE __attribute__((optimize("no-tree-loop-vectorize")))
#else
#define FASTNN_NO_LOOP_VECTORIZE
#endif

/* Bytes of the packed form of a (k, n) matrix: `step` inputs per 64-byte panel step. */
static inline size_t fastnn_packed_bytes(ptrdiff_t k, ptrdiff_t n, int step) {
    ptrdiff_t nkb = (k + step - 1) / step, panels = (n + FASTNN_PANEL - 1) / FASTNN_PANEL;
    return (size_t)(nkb * panels * 64);
}

static inline uint16_t fastnn_bf16_from_float(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);  /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);  /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

static inline float fastnn_float_from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ------------------------------------------------------------ row conversions */

/* The scale of one row quantized per call: max |x| over 255 (u8) or 127 (s8), 1 for a
 * row of zeros. */
static inline float fastnn_q8_row_scale(const float *x, ptrdiff_t n, int is_signed) {
    float amax = 0;
    for (ptrdiff_t j = 0; j < n; j++) {
        float a = x[j] < 0 ? -x[j] : x[j];
        amax = a > amax ? a : amax;
    }
    return amax > 0 ? amax / (is_signed ? 127.0f : 255.0f) : 1.0f;
}

/* q := clip(rint(x * inv_scale)) in [0, 255], or in [-127, 127] stored plus 128 when
 * signed (vpdpbusd multiplies unsigned by signed bytes); q[n:n_pad] := 0 (NaN -> low). */
static inline void fastnn_q8_quantize_row(const float *x, ptrdiff_t n, ptrdiff_t n_pad,
                                          float inv_scale, int is_signed, uint8_t *q) {
    float lo = is_signed ? -127.0f : 0.0f, hi = is_signed ? 127.0f : 255.0f;
    int shift = is_signed ? 128 : 0;
    for (ptrdiff_t j = 0; j < n; j++) {
        float v = x[j] * inv_scale;
        v = v >= lo ? v : lo;
        v = v <= hi ? v : hi;
        q[j] = (uint8_t)((int)nearbyintf(v) + shift);
    }
    for (ptrdiff_t j = n; j < n_pad; j++) q[j] = 0;
}

/* y := float(acc - corr) * (x_scale * w_scale), corr used for signed inputs only. */
static inline void fastnn_q8_dequantize_row(const int32_t *acc, const int32_t *corr,
                                            float x_scale, const float *w_scale, ptrdiff_t n,
                                            float *y) {
    if (corr != NULL) {
        for (ptrdiff_t j = 0; j < n; j++) y[j] = (float)(acc[j] - corr[j]) * (x_scale * w_scale[j]);
    } else {
        for (ptrdiff_t j = 0; j < n; j++) y[j] = (float)acc[j] * (x_scale * w_scale[j]);
    }
}

static inline void fastnn_bf16_row(const float *x, ptrdiff_t n, ptrdiff_t n_pad, uint16_t *h) {
    for (ptrdiff_t j = 0; j < n; j++) h[j] = fastnn_bf16_from_float(x[j]);
    for (ptrdiff_t j = n; j < n_pad; j++) h[j] = 0;
}

/* ---------------------------------------------------------------- portable path */

static void fastnn_q8_gemm_portable(const uint8_t *X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t nkb,
                                    const int8_t *P, ptrdiff_t n_panels, int32_t *C,
                                    ptrdiff_t ldc) {
    for (ptrdiff_t q = 0; q < n_panels; q++) {
        ptrdiff_t g = q / FASTNN_GROUP, p = q % FASTNN_GROUP;
        ptrdiff_t pg = n_panels - g * FASTNN_GROUP < FASTNN_GROUP ? n_panels - g * FASTNN_GROUP
                                                                   : FASTNN_GROUP;
        const int8_t *base = P + g * FASTNN_GROUP * nkb * 64 + p * 64;
        for (ptrdiff_t i = 0; i < m; i++) {
            int32_t acc[FASTNN_PANEL] = {0};
            const uint8_t *x = X + i * ldx;
            for (ptrdiff_t kb = 0; kb < nkb; kb++) {
                const int8_t *w = base + kb * pg * 64;
                for (int l = 0; l < FASTNN_PANEL; l++)
                    for (int r = 0; r < 4; r++)
                        acc[l] += (int32_t)x[kb * 4 + r] * (int32_t)w[l * 4 + r];
            }
            memcpy(C + i * ldc + q * FASTNN_PANEL, acc, sizeof acc);
        }
    }
}

FASTNN_NO_LOOP_VECTORIZE static void fastnn_bf16_gemm_portable(const uint16_t *X, ptrdiff_t ldx, ptrdiff_t m,
                                      ptrdiff_t nkb, const uint16_t *P, ptrdiff_t n_panels,
                                      float *C, ptrdiff_t ldc) {
    for (ptrdiff_t q = 0; q < n_panels; q++) {
        ptrdiff_t g = q / FASTNN_GROUP, p = q % FASTNN_GROUP;
        ptrdiff_t pg = n_panels - g * FASTNN_GROUP < FASTNN_GROUP ? n_panels - g * FASTNN_GROUP
                                                                   : FASTNN_GROUP;
        const uint16_t *base = P + (g * FASTNN_GROUP * nkb * 64 + p * 64) / 2;
        for (ptrdiff_t i = 0; i < m; i++) {
            float acc[FASTNN_PANEL] = {0};
            const uint16_t *x = X + i * ldx;
            for (ptrdiff_t kb = 0; kb < nkb; kb++) {
                const uint16_t *w = base + kb * pg * 32;
                float x0 = fastnn_float_from_bf16(x[kb * 2]);
                float x1 = fastnn_float_from_bf16(x[kb * 2 + 1]);
                for (int l = 0; l < FASTNN_PANEL; l++) {
                    acc[l] += fastnn_float_from_bf16(w[l * 2 + 1]) * x1;
                    acc[l] += fastnn_float_from_bf16(w[l * 2]) * x0;
                }
            }
            memcpy(C + i * ldc + q * FASTNN_PANEL, acc, sizeof acc);
        }
    }
}

/* xt[g * n_in + k] := the bytes X[4 g + r, k] of rows 4 g to 4 g + 3 (byte r, rows past
 * m repeat row 4 g), for the row groups of the block-sparse fast paths. */
static inline void fastnn_q8_interleave(const uint8_t *X, ptrdiff_t ldx, ptrdiff_t m,
                                        ptrdiff_t n_in, uint32_t *xt) {
    for (ptrdiff_t i0 = 0; i0 < m; i0 += 4) {
        const uint8_t *x0 = X + i0 * ldx;
        const uint8_t *x1 = i0 + 1 < m ? x0 + ldx : x0;
        const uint8_t *x2 = i0 + 2 < m ? x0 + 2 * ldx : x0;
        const uint8_t *x3 = i0 + 3 < m ? x0 + 3 * ldx : x0;
        uint32_t *t = xt + i0 / 4 * n_in;
        for (ptrdiff_t k = 0; k < n_in; k++)
            t[k] = (uint32_t)x0[k] | ((uint32_t)x1[k] << 8) | ((uint32_t)x2[k] << 16)
                   | ((uint32_t)x3[k] << 24);
    }
}

/* C[:, c B : c B + B] := sum over the quads q of block column c of
 *   X[:, idx[4 q + r]] * val[q, j, r]   (r < 4, j < B), for the n_cols block columns. */
static void fastnn_q8_bsr_portable(const uint8_t *X, ptrdiff_t ldx, ptrdiff_t m,
                                   const int64_t *qptr, const uint16_t *idx, const int8_t *val,
                                   ptrdiff_t n_cols, int block, int32_t *C, ptrdiff_t ldc) {
    for (ptrdiff_t c = 0; c < n_cols; c++) {
        for (ptrdiff_t i = 0; i < m; i++) {
            int32_t acc[16] = {0};
            const uint8_t *x = X + i * ldx;
            for (int64_t q = qptr[c]; q < qptr[c + 1]; q++) {
                const int8_t *w = val + q * block * 4;
                for (int j = 0; j < block; j++)
                    for (int r = 0; r < 4; r++)
                        acc[j] += (int32_t)x[idx[q * 4 + r]] * (int32_t)w[j * 4 + r];
            }
            memcpy(C + i * ldc + c * block, acc, (size_t)block * sizeof(int32_t));
        }
    }
}

/* ------------------------------------------------------------- x86 fast paths */

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FASTNN_X86_DISPATCH 1
#include <immintrin.h>

#define FASTNN_T512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define FASTNN_TBF16 __attribute__((target("avx512f,avx512bw,avx512vl,avx512bf16")))
#define FASTNN_TAVXVNNI __attribute__((target("avx2,fma,avxvnni")))
#define FASTNN_INLINE static inline __attribute__((always_inline))

static inline int32_t fastnn_load4(const void *p) {
    int32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* One tile: MR rows x PG panels over the whole inner dimension, in zmm registers. */
#define FASTNN_TILE(NAME, TARGET, VEC, WVEC, ZERO, DOT, BCAST, LOAD, STORE, ELEM, T)              \
    TARGET FASTNN_INLINE void NAME(const T *X, ptrdiff_t ldx, int mr, int pg, ptrdiff_t nkb,  \
                                   const void *P, ELEM *C, ptrdiff_t ldc) {                    \
        VEC acc[FASTNN_MR][FASTNN_GROUP];                                                     \
        const char *w = (const char *)P;                                                       \
        const char *x = (const char *)X;                                                       \
        _Pragma("GCC unroll 4") for (int i = 0; i < FASTNN_MR; i++)                            \
            _Pragma("GCC unroll 4") for (int p = 0; p < FASTNN_GROUP; p++) acc[i][p] = ZERO;    \
        for (ptrdiff_t kb = 0; kb < nkb; kb++) {                                               \
            WVEC wv[FASTNN_GROUP];                                                             \
            _Pragma("GCC unroll 4") for (int p = 0; p < FASTNN_GROUP; p++)                     \
                if (p < pg) wv[p] = LOAD(w + p * 64);                                          \
            _Pragma("GCC unroll 4") for (int i = 0; i < FASTNN_MR; i++) {                      \
                if (i < mr) {                                                                  \
                    WVEC xb = BCAST(fastnn_load4(x + i * ldx * (ptrdiff_t)sizeof(T) + kb * 4)); \
                    _Pragma("GCC unroll 4") for (int p = 0; p < FASTNN_GROUP; p++)             \
                        if (p < pg) acc[i][p] = DOT(acc[i][p], xb, wv[p]);                     \
                }                                                                              \
            }                                                                                  \
            w += pg * 64;                                                                      \
        }                                                                                      \
        _Pragma("GCC unroll 4") for (int i = 0; i < FASTNN_MR; i++)                            \
            _Pragma("GCC unroll 4") for (int p = 0; p < FASTNN_GROUP; p++)                     \
                if (i < mr && p < pg) STORE(C + i * ldc + p * FASTNN_PANEL, acc[i][p]);         \
    }

/* The whole product: row blocks of up to MR rows inside each group of panels (the
 * group's weights stay in cache across the row blocks); every (mr, pg) pair is a
 * separate unrolled instance. */
#define FASTNN_GEMM(NAME, TILE, TARGET, ELEM, T, BYTES_PER_STEP)                               \
    TARGET static void NAME(const T *X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t nkb,             \
                            const void *P, ptrdiff_t n_panels, ELEM *C, ptrdiff_t ldc) {       \
        for (ptrdiff_t g = 0; g * FASTNN_GROUP < n_panels; g++) {                               \
            int pg = (int)(n_panels - g * FASTNN_GROUP < FASTNN_GROUP                           \
                               ? n_panels - g * FASTNN_GROUP : FASTNN_GROUP);                   \
            const char *Pg = (const char *)P + g * FASTNN_GROUP * nkb * 64;                     \
            ELEM *Cg = C + g * FASTNN_GROUP * FASTNN_PANEL;                                     \
            for (ptrdiff_t i0 = 0; i0 < m; i0 += FASTNN_MR) {                                   \
                int mr = (int)(m - i0 < FASTNN_MR ? m - i0 : FASTNN_MR);                        \
                const T *Xi = X + i0 * ldx;                                                     \
                ELEM *Ci = Cg + i0 * ldc;                                                       \
                switch (mr * 8 + pg) {                                                          \
                case 9: TILE(Xi, ldx, 1, 1, nkb, Pg, Ci, ldc); break;                           \
                case 10: TILE(Xi, ldx, 1, 2, nkb, Pg, Ci, ldc); break;                          \
                case 11: TILE(Xi, ldx, 1, 3, nkb, Pg, Ci, ldc); break;                          \
                case 12: TILE(Xi, ldx, 1, 4, nkb, Pg, Ci, ldc); break;                          \
                case 17: TILE(Xi, ldx, 2, 1, nkb, Pg, Ci, ldc); break;                          \
                case 18: TILE(Xi, ldx, 2, 2, nkb, Pg, Ci, ldc); break;                          \
                case 19: TILE(Xi, ldx, 2, 3, nkb, Pg, Ci, ldc); break;                          \
                case 20: TILE(Xi, ldx, 2, 4, nkb, Pg, Ci, ldc); break;                          \
                case 25: TILE(Xi, ldx, 3, 1, nkb, Pg, Ci, ldc); break;                          \
                case 26: TILE(Xi, ldx, 3, 2, nkb, Pg, Ci, ldc); break;                          \
                case 27: TILE(Xi, ldx, 3, 3, nkb, Pg, Ci, ldc); break;                          \
                case 28: TILE(Xi, ldx, 3, 4, nkb, Pg, Ci, ldc); break;                          \
                case 33: TILE(Xi, ldx, 4, 1, nkb, Pg, Ci, ldc); break;                          \
                case 34: TILE(Xi, ldx, 4, 2, nkb, Pg, Ci, ldc); break;                          \
                case 35: TILE(Xi, ldx, 4, 3, nkb, Pg, Ci, ldc); break;                          \
                default: TILE(Xi, ldx, 4, 4, nkb, Pg, Ci, ldc); break;                          \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

/* AVX512-VNNI, 512 bits */
#define FASTNN_Q8_LOAD512(p) _mm512_loadu_si512((const void *)(p))
#define FASTNN_Q8_STORE512(c, v) _mm512_storeu_si512((void *)(c), v)
FASTNN_TILE(fastnn_q8_tile512, FASTNN_T512, __m512i, __m512i, _mm512_setzero_si512(),
               _mm512_dpbusd_epi32, _mm512_set1_epi32, FASTNN_Q8_LOAD512, FASTNN_Q8_STORE512,
               int32_t, uint8_t)
FASTNN_GEMM(fastnn_q8_gemm_avx512, fastnn_q8_tile512, FASTNN_T512, int32_t, uint8_t, 4)

/* 256 bits, a panel as two ymm halves: AVX-VNNI (VEX) for CPUs without AVX-512. The
 * same tile is built for AVX512-VNNI+VL (EVEX), so that its code is tested on CPUs
 * that have AVX-512; the two differ only in the instruction's encoding. */
typedef struct { __m256i lo, hi; } fastnn_y2;
#define FASTNN_Y2_ZERO ((fastnn_y2){_mm256_setzero_si256(), _mm256_setzero_si256()})
#define FASTNN_Y2_LOAD(p) ((fastnn_y2){_mm256_loadu_si256((const __m256i *)(p)),               \
                                       _mm256_loadu_si256((const __m256i *)(p) + 1)})
#define FASTNN_Y2_STORE(c, v) (_mm256_storeu_si256((__m256i *)(c), (v).lo),                     \
                               _mm256_storeu_si256((__m256i *)(c) + 1, (v).hi))
#define FASTNN_Y2_BCAST(s) ((fastnn_y2){_mm256_set1_epi32(s), _mm256_set1_epi32(s)})
#define FASTNN_Y2_DOT_VEX(a, x, w) ((fastnn_y2){_mm256_dpbusd_avx_epi32((a).lo, (x).lo, (w).lo), \
                                               _mm256_dpbusd_avx_epi32((a).hi, (x).hi, (w).hi)})
#define FASTNN_Y2_DOT_EVEX(a, x, w) ((fastnn_y2){_mm256_dpbusd_epi32((a).lo, (x).lo, (w).lo),  \
                                                _mm256_dpbusd_epi32((a).hi, (x).hi, (w).hi)})
FASTNN_TILE(fastnn_q8_tile_vex, FASTNN_TAVXVNNI, fastnn_y2, fastnn_y2, FASTNN_Y2_ZERO, FASTNN_Y2_DOT_VEX,
               FASTNN_Y2_BCAST, FASTNN_Y2_LOAD, FASTNN_Y2_STORE, int32_t, uint8_t)
FASTNN_GEMM(fastnn_q8_gemm_avxvnni, fastnn_q8_tile_vex, FASTNN_TAVXVNNI, int32_t, uint8_t, 4)
FASTNN_TILE(fastnn_q8_tile_evex256, FASTNN_T512, fastnn_y2, fastnn_y2, FASTNN_Y2_ZERO, FASTNN_Y2_DOT_EVEX,
               FASTNN_Y2_BCAST, FASTNN_Y2_LOAD, FASTNN_Y2_STORE, int32_t, uint8_t)
FASTNN_GEMM(fastnn_q8_gemm_evex256, fastnn_q8_tile_evex256, FASTNN_T512, int32_t, uint8_t, 4)

/* AVX512-BF16 */
#define FASTNN_BF_LOAD(p) ((__m512bh)_mm512_loadu_si512((const void *)(p)))
#define FASTNN_BF_BCAST(s) ((__m512bh)_mm512_set1_epi32(s))
#define FASTNN_BF_STORE(c, v) _mm512_storeu_ps((void *)(c), v)
FASTNN_TILE(fastnn_bf16_tile512, FASTNN_TBF16, __m512, __m512bh, _mm512_setzero_ps(), _mm512_dpbf16_ps,
               FASTNN_BF_BCAST, FASTNN_BF_LOAD, FASTNN_BF_STORE, float, uint16_t)
FASTNN_GEMM(fastnn_bf16_gemm_avx512, fastnn_bf16_tile512, FASTNN_TBF16, float, uint16_t, 2)

/* Block-sparse int8, one row: per quad, its four u8 inputs gathered into one word and
 * broadcast; two accumulators take alternate quads, so that two vpdpbusd chains are in
 * flight. */
static inline uint32_t fastnn_q8_gather4(const uint8_t *x, const uint16_t *i) {
    return (uint32_t)x[i[0]] | ((uint32_t)x[i[1]] << 8) | ((uint32_t)x[i[2]] << 16)
           | ((uint32_t)x[i[3]] << 24);
}

#define FASTNN_Q8B_ONE(NAME, TARGET, VEC, ZERO, DOT, ADD, BCAST, LOAD, STORE, B)              \
    TARGET FASTNN_INLINE void NAME(const uint8_t *x, int64_t q0, int64_t q1,                 \
                                   const uint16_t *idx, const int8_t *val, int32_t *c) {      \
        VEC a0 = ZERO, a1 = ZERO;                                                              \
        int64_t q = q0;                                                                        \
        for (; q + 2 <= q1; q += 2) {                                                          \
            a0 = DOT(a0, BCAST((int)fastnn_q8_gather4(x, idx + 4 * q)), LOAD(val + q * (B * 4))); \
            a1 = DOT(a1, BCAST((int)fastnn_q8_gather4(x, idx + 4 * q + 4)),                    \
                     LOAD(val + (q + 1) * (B * 4)));                                           \
        }                                                                                      \
        if (q < q1)                                                                            \
            a0 = DOT(a0, BCAST((int)fastnn_q8_gather4(x, idx + 4 * q)), LOAD(val + q * (B * 4))); \
        STORE(c, ADD(a0, a1)); /* integer sums: the order does not change them */             \
    }

/* Groups of up to four rows, from their inputs interleaved (`fastnn_q8_interleave`): per
 * quad, four 32-bit loads give its four inputs' bytes of the four rows, a byte shuffle
 * turns them into one word per row, and LANE broadcasts row r's word. */
#define FASTNN_Q8B_GROUP(NAME, TARGET, VEC, ZERO, DOT, LANE, LOAD, STORE, B)                  \
    TARGET FASTNN_INLINE void NAME(const uint32_t *xt, int mr, int64_t q0, int64_t q1,        \
                                   const uint16_t *idx, const int8_t *val, int32_t *C,        \
                                   ptrdiff_t ldc) {                                            \
        const __m128i rows = _mm_setr_epi8(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15); \
        VEC acc[FASTNN_MR];                                                                    \
        _Pragma("GCC unroll 4") for (int r = 0; r < FASTNN_MR; r++) acc[r] = ZERO;             \
        for (int64_t q = q0; q < q1; q++) {                                                    \
            const uint16_t *i = idx + 4 * q;                                                   \
            __m128i t = _mm_shuffle_epi8(_mm_setr_epi32((int)xt[i[0]], (int)xt[i[1]],          \
                                                        (int)xt[i[2]], (int)xt[i[3]]), rows);  \
            VEC w = LOAD(val + q * (B * 4));                                                   \
            _Pragma("GCC unroll 4") for (int r = 0; r < FASTNN_MR; r++)                        \
                if (r < mr) acc[r] = DOT(acc[r], LANE(t, r), w);                               \
        }                                                                                      \
        _Pragma("GCC unroll 4") for (int r = 0; r < FASTNN_MR; r++)                            \
            if (r < mr) STORE(C + r * ldc, acc[r]);                                            \
    }

/* Every block column: one row alone, or groups of rows (a column's quads stay in cache
 * across the groups), each group size an unrolled instance. */
#define FASTNN_Q8B(NAME, TARGET, VEC, ZERO, DOT, ADD, BCAST, LANE, LOAD, STORE, B)             \
    FASTNN_Q8B_ONE(NAME##_one, TARGET, VEC, ZERO, DOT, ADD, BCAST, LOAD, STORE, B)             \
    FASTNN_Q8B_GROUP(NAME##_group, TARGET, VEC, ZERO, DOT, LANE, LOAD, STORE, B)               \
    TARGET static void NAME(const uint8_t *X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t n_in,      \
                            const int64_t *qptr, const uint16_t *idx, const int8_t *val,       \
                            ptrdiff_t n_cols, int32_t *C, ptrdiff_t ldc, uint32_t *xt) {       \
        if (m == 1) {                                                                          \
            for (ptrdiff_t c = 0; c < n_cols; c++)                                             \
                NAME##_one(X, qptr[c], qptr[c + 1], idx, val, C + c * B);                      \
            return;                                                                            \
        }                                                                                      \
        fastnn_q8_interleave(X, ldx, m, n_in, xt);                                             \
        for (ptrdiff_t c = 0; c < n_cols; c++) {                                               \
            for (ptrdiff_t i0 = 0; i0 < m; i0 += FASTNN_MR) {                                  \
                const uint32_t *t = xt + i0 / FASTNN_MR * n_in;                                \
                int32_t *Ci = C + i0 * ldc + c * B;                                            \
                switch (m - i0 < FASTNN_MR ? (int)(m - i0) : FASTNN_MR) {                      \
                case 1: NAME##_group(t, 1, qptr[c], qptr[c + 1], idx, val, Ci, ldc); break;    \
                case 2: NAME##_group(t, 2, qptr[c], qptr[c + 1], idx, val, Ci, ldc); break;    \
                case 3: NAME##_group(t, 3, qptr[c], qptr[c + 1], idx, val, Ci, ldc); break;    \
                default: NAME##_group(t, 4, qptr[c], qptr[c + 1], idx, val, Ci, ldc); break;   \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

#define FASTNN_X_LOAD(p) _mm_loadu_si128((const __m128i *)(p))
#define FASTNN_X_STORE(c, v) _mm_storeu_si128((__m128i *)(c), v)
#define FASTNN_X_LANE(t, r) _mm_castps_si128(_mm_permutevar_ps(_mm_castsi128_ps(t), _mm_set1_epi32(r)))
#define FASTNN_Y_LOAD(p) _mm256_loadu_si256((const __m256i *)(p))
#define FASTNN_Y_STORE(c, v) _mm256_storeu_si256((__m256i *)(c), v)
#define FASTNN_Y_LANE(t, r) _mm256_permutevar8x32_epi32(_mm256_castsi128_si256(t), _mm256_set1_epi32(r))
#define FASTNN_Z_LANE(t, r) _mm512_permutexvar_epi32(_mm512_set1_epi32(r), _mm512_castsi128_si512(t))
#define FASTNN_Y2_LANE(t, r) fastnn_y2_dup(FASTNN_Y_LANE(t, r))
#define FASTNN_Y2_ADD(a, b) ((fastnn_y2){_mm256_add_epi32((a).lo, (b).lo),                       \
                                         _mm256_add_epi32((a).hi, (b).hi)})
static inline __attribute__((always_inline)) fastnn_y2 fastnn_y2_dup(__m256i v) {
    fastnn_y2 y = {v, v};
    return y;
}
/* EVEX (AVX512-VNNI with VL): 1x4 in xmm, 1x8 in ymm, 1x16 in zmm or two ymm. */
FASTNN_Q8B(fastnn_q8b4_evex, FASTNN_T512, __m128i, _mm_setzero_si128(), _mm_dpbusd_epi32,
           _mm_add_epi32, _mm_set1_epi32, FASTNN_X_LANE, FASTNN_X_LOAD, FASTNN_X_STORE, 4)
FASTNN_Q8B(fastnn_q8b8_evex, FASTNN_T512, __m256i, _mm256_setzero_si256(), _mm256_dpbusd_epi32,
           _mm256_add_epi32, _mm256_set1_epi32, FASTNN_Y_LANE, FASTNN_Y_LOAD, FASTNN_Y_STORE, 8)
FASTNN_Q8B(fastnn_q8b16_avx512, FASTNN_T512, __m512i, _mm512_setzero_si512(),
           _mm512_dpbusd_epi32, _mm512_add_epi32, _mm512_set1_epi32, FASTNN_Z_LANE,
           FASTNN_Q8_LOAD512, FASTNN_Q8_STORE512, 16)
FASTNN_Q8B(fastnn_q8b16_evex, FASTNN_T512, fastnn_y2, FASTNN_Y2_ZERO, FASTNN_Y2_DOT_EVEX,
           FASTNN_Y2_ADD, FASTNN_Y2_BCAST, FASTNN_Y2_LANE, FASTNN_Y2_LOAD, FASTNN_Y2_STORE, 16)
/* VEX (AVX-VNNI): the same in 128 and 256 bits. */
FASTNN_Q8B(fastnn_q8b4_vex, FASTNN_TAVXVNNI, __m128i, _mm_setzero_si128(), _mm_dpbusd_avx_epi32,
           _mm_add_epi32, _mm_set1_epi32, FASTNN_X_LANE, FASTNN_X_LOAD, FASTNN_X_STORE, 4)
FASTNN_Q8B(fastnn_q8b8_vex, FASTNN_TAVXVNNI, __m256i, _mm256_setzero_si256(),
           _mm256_dpbusd_avx_epi32, _mm256_add_epi32, _mm256_set1_epi32, FASTNN_Y_LANE,
           FASTNN_Y_LOAD, FASTNN_Y_STORE, 8)
FASTNN_Q8B(fastnn_q8b16_vex, FASTNN_TAVXVNNI, fastnn_y2, FASTNN_Y2_ZERO, FASTNN_Y2_DOT_VEX,
           FASTNN_Y2_ADD, FASTNN_Y2_BCAST, FASTNN_Y2_LANE, FASTNN_Y2_LOAD, FASTNN_Y2_STORE, 16)

/* What the running CPU and OS support (the compiler's runtime checks XCR0 too). */
static int fastnn_cpu_q8_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl"))
        return FASTNN_ISA_AVX512;
#if defined(__clang__) || __GNUC__ >= 11
    if (__builtin_cpu_supports("avxvnni")) return FASTNN_ISA_AVX256;
#endif
    return FASTNN_ISA_PORTABLE;
}

static int fastnn_cpu_bf16_isa(void) {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw")
        && __builtin_cpu_supports("avx512vl"))
        return FASTNN_ISA_AVX512;
    return FASTNN_ISA_PORTABLE;
}

#else
#define FASTNN_X86_DISPATCH 0
static int fastnn_cpu_q8_isa(void) { return FASTNN_ISA_PORTABLE; }
static int fastnn_cpu_bf16_isa(void) { return FASTNN_ISA_PORTABLE; }
#endif

/* C := X @ W for u8 X (m, nkb * 4) and packed s8 W, on the path `isa` (which the caller
 * has checked the CPU supports); FASTNN_ISA_AVX256 on an AVX-512 CPU runs the EVEX form
 * of the 256-bit tile. */
static inline void fastnn_q8_gemm(int isa, int has_avx512, const uint8_t *X, ptrdiff_t ldx,
                                  ptrdiff_t m, ptrdiff_t nkb, const int8_t *P,
                                  ptrdiff_t n_panels, int32_t *C, ptrdiff_t ldc) {
#if FASTNN_X86_DISPATCH
    if (isa == FASTNN_ISA_AVX512) {
        fastnn_q8_gemm_avx512(X, ldx, m, nkb, P, n_panels, C, ldc);
        return;
    }
    if (isa == FASTNN_ISA_AVX256) {
        if (has_avx512)
            fastnn_q8_gemm_evex256(X, ldx, m, nkb, P, n_panels, C, ldc);
        else
            fastnn_q8_gemm_avxvnni(X, ldx, m, nkb, P, n_panels, C, ldc);
        return;
    }
#endif
    (void)isa;
    (void)has_avx512;
    fastnn_q8_gemm_portable(X, ldx, m, nkb, P, n_panels, C, ldc);
}

/* C := X @ W for bf16 X (m, nkb * 2) and packed bf16 W, float sums. */
static inline void fastnn_bf16_gemm(int isa, const uint16_t *X, ptrdiff_t ldx, ptrdiff_t m,
                                    ptrdiff_t nkb, const uint16_t *P, ptrdiff_t n_panels,
                                    float *C, ptrdiff_t ldc) {
#if FASTNN_X86_DISPATCH
    if (isa == FASTNN_ISA_AVX512) {
        fastnn_bf16_gemm_avx512(X, ldx, m, nkb, P, n_panels, C, ldc);
        return;
    }
#endif
    (void)isa;
    fastnn_bf16_gemm_portable(X, ldx, m, nkb, P, n_panels, C, ldc);
}

/* C[:, :n_cols * block] := X @ W for u8 X (m, n_in) and W in int8 quads of blocks (see
 * the top), on the path `isa`, as `fastnn_q8_gemm`; xt is scratch of ceil(m / 4) * n_in
 * words. */
static inline void fastnn_q8_bsr(int isa, int has_avx512, const uint8_t *X, ptrdiff_t ldx,
                                 ptrdiff_t m, ptrdiff_t n_in, const int64_t *qptr,
                                 const uint16_t *idx, const int8_t *val, ptrdiff_t n_cols,
                                 int block, int32_t *C, ptrdiff_t ldc, uint32_t *xt) {
#if FASTNN_X86_DISPATCH
#define FASTNN_Q8B_CALL(F) F(X, ldx, m, n_in, qptr, idx, val, n_cols, C, ldc, xt)
    if (isa == FASTNN_ISA_AVX512 || (isa == FASTNN_ISA_AVX256 && has_avx512)) {
        if (block == 4) FASTNN_Q8B_CALL(fastnn_q8b4_evex);
        else if (block == 8) FASTNN_Q8B_CALL(fastnn_q8b8_evex);
        else if (isa == FASTNN_ISA_AVX512) FASTNN_Q8B_CALL(fastnn_q8b16_avx512);
        else FASTNN_Q8B_CALL(fastnn_q8b16_evex);
        return;
    }
    if (isa == FASTNN_ISA_AVX256) {
        if (block == 4) FASTNN_Q8B_CALL(fastnn_q8b4_vex);
        else if (block == 8) FASTNN_Q8B_CALL(fastnn_q8b8_vex);
        else FASTNN_Q8B_CALL(fastnn_q8b16_vex);
        return;
    }
#undef FASTNN_Q8B_CALL
#endif
    (void)isa;
    (void)has_avx512;
    (void)n_in;
    (void)xt;
    fastnn_q8_bsr_portable(X, ldx, m, qptr, idx, val, n_cols, block, C, ldc);
}

#endif
