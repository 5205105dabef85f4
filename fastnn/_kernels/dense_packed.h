/* Y := X @ W + b (then max(Y, 0) on request) for float32, with W packed once into
 * column panels: the large-batch product of the inference engine and the three products
 * of a training step (X @ W, dZ @ W.T on W.T's panels, X.T @ dZ); and the softmax of
 * rows of at most 16 units that follows it in a classifier's last layer.
 *
 * A panel holds PANEL (32) consecutive columns of W as k rows of 32 floats, the last
 * panel padded with zeros. A register tile of up to TILE_ROWS (12) rows of X by one
 * panel keeps its 24 sixteen-float sums in registers over the whole of k: per step of k
 * two vector loads of the panel, one broadcast per row and 24 fused multiply-adds, so
 * the loop is bound by the multiply-adds, not by memory (a panel, 100 KB at k = 784,
 * stays in L2). Bias and ReLU are applied to the sums before the one store of Y.
 *
 * Every element of Y is the sum over k in order, whatever the tile, the block of rows
 * or the thread that computes it: results never depend on the thread count.
 *
 * The kernel also says whether any sum X @ W + b (before the activation) is NaN or
 * infinite. A NaN or an infinity in a row of X makes every sum of that row NaN or
 * infinite (x * w is then NaN or infinite for every w, and a non-finite sum stays
 * non-finite), so a kernel that saw only finite sums has proved its X finite, without a
 * pass of its own over X; finite X whose sums overflow is flagged too, and a caller that
 * needs to tell the two apart scans X then.
 *
 * The same kernel reads W unpacked, in its own rows (`fastnn_unpacked_rows`), for the
 * products of a few rows (`dense_forward_core`: the layers of Sequential.predict), where
 * packing would cost more than the product: the same sums in the same order, so the
 * same bits.
 *
 * The kernel is compiled for AVX-512F and FMA alone (a target attribute), whatever the
 * build's -march, and runs only where fastnn_cpu_packed() says the CPU has them;
 * elsewhere the engine and the training step call BLAS.
 */
#ifndef FASTNN_DENSE_PACKED_H
#define FASTNN_DENSE_PACKED_H

#include <stddef.h>
#include <string.h>

#define FASTNN_PANEL 32
#define FASTNN_TILE_ROWS 12

/* Panels p0 to p1 - 1 of W (k x n, C order), or of W.T when t, into Wp, as
 * fastnn_packed_rows reads them (the layout of dense.pack_panels): panel p holds columns
 * 32 p to 32 p + 31 of the matrix as its rows of 32 floats, zero padded; a panel of W.T
 * holds rows 32 p to 32 p + 31 of W, its row j being W[32 p + c, j] for c < 32. Training
 * packs W and W.T before each step, for X @ W and the dZ @ W.T of its backward pass. */
static void fastnn_pack_panels(const float* W, ptrdiff_t k, ptrdiff_t n, float* Wp,
                               ptrdiff_t p0, ptrdiff_t p1, int t) {
    ptrdiff_t rows = t ? n : k, cols = t ? k : n;  /* the packed matrix's shape */
    ptrdiff_t p, r, c, c0, w;
    float* dst;
    for (p = p0; p < p1; p++) {
        c0 = p * FASTNN_PANEL;
        w = cols - c0 < FASTNN_PANEL ? cols - c0 : FASTNN_PANEL;
        dst = Wp + p * rows * FASTNN_PANEL;
        if (w < FASTNN_PANEL)
            memset(dst, 0, (size_t)rows * FASTNN_PANEL * sizeof(float));
        if (!t) {
            for (r = 0; r < rows; r++)
                memcpy(dst + r * FASTNN_PANEL, W + r * n + c0, (size_t)w * sizeof(float));
            continue;
        }
        for (c = 0; c < w; c++)  /* row c0 + c of W is column c of every row of the panel */
            for (r = 0; r < rows; r++)
                dst[r * FASTNN_PANEL + c] = W[(c0 + c) * n + r];
    }
}

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>

#define FASTNN_T512F __attribute__((target("avx512f,fma")))

static int fastnn_cpu_packed(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
}

/* One tile: rows [0, mr) of X by one panel, of which the first nv (0, 1 or 2) sixteen-
 * column halves hold columns of W, nv = 0 for a panel of at most 8 columns; mr and nv are
 * constants after inlining, so the sums stay in registers. A last panel of at most 16
 * columns (nv = 1) skips its zero half, and one of at most 8 (nv = 0: a 5-class output
 * layer) works in 8-float vectors, which cost half a 16-float multiply-add where the CPU
 * runs a 16-float one as two halves (Zen 4). With xt (a constant too), the tile's rows are
 * the columns of X: row r of the tile is X[:, r] (X.T @ W: a weight gradient). Returns
 * nonzero when a sum of the tile (bias added) is NaN or infinite: the first 16 columns
 * tell for the whole row. */
static inline __attribute__((always_inline)) FASTNN_T512F int
fastnn_packed_tile(const float* X, ptrdiff_t ldx, ptrdiff_t k, const float* panel,
                   ptrdiff_t ldw, const float* b, int relu, float* Y, ptrdiff_t ldy,
                   const int mr, const int nv, const int xt, __mmask16 mask0,
                   __mmask16 mask1) {
    __m512 c0[FASTNN_TILE_ROWS], c1[FASTNN_TILE_ROWS];
    __m256 h[FASTNN_TILE_ROWS];
    __m512 w0 = _mm512_setzero_ps(), w1 = _mm512_setzero_ps(), x, y0, y1, b0, b1;
    __m256 wh = _mm256_setzero_ps();
    __mmask16 bad = 0;
    ptrdiff_t p;
    int r;
    for (r = 0; r < mr; r++) {
        c0[r] = _mm512_setzero_ps();
        c1[r] = _mm512_setzero_ps();
        h[r] = _mm256_setzero_ps();
    }
    for (p = 0; p < k; p++) {
        if (nv == 0) {
            wh = _mm256_loadu_ps(panel + p * ldw);
        } else {
            w0 = _mm512_loadu_ps(panel + p * ldw);
            if (nv == 2)
                w1 = _mm512_loadu_ps(panel + p * ldw + 16);
        }
        for (r = 0; r < mr; r++) {
            if (nv == 0) {
                h[r] = _mm256_fmadd_ps(_mm256_set1_ps(xt ? X[p * ldx + r] : X[r * ldx + p]),
                                       wh, h[r]);
                continue;
            }
            x = _mm512_set1_ps(xt ? X[p * ldx + r] : X[r * ldx + p]);
            c0[r] = _mm512_fmadd_ps(x, w0, c0[r]);
            if (nv == 2)
                c1[r] = _mm512_fmadd_ps(x, w1, c1[r]);
        }
    }
    b0 = b ? _mm512_maskz_loadu_ps(mask0, b) : _mm512_setzero_ps();
    b1 = b && nv == 2 ? _mm512_maskz_loadu_ps(mask1, b + 16) : _mm512_setzero_ps();
    for (r = 0; r < mr; r++) {
        if (nv == 0)  /* the upper half is masked off below */
            c0[r] = _mm512_castps256_ps512(h[r]);
        y0 = b ? _mm512_add_ps(c0[r], b0) : c0[r];
        /* y - y is 0 for a finite y, NaN otherwise */
        bad |= _mm512_mask_cmp_ps_mask(mask0, _mm512_sub_ps(y0, y0), _mm512_setzero_ps(),
                                       _CMP_NEQ_UQ);
        if (relu)
            y0 = _mm512_max_ps(y0, _mm512_setzero_ps());
        _mm512_mask_storeu_ps(Y + r * ldy, mask0, y0);
        if (nv == 2) {
            y1 = b ? _mm512_add_ps(c1[r], b1) : c1[r];
            if (relu)
                y1 = _mm512_max_ps(y1, _mm512_setzero_ps());
            _mm512_mask_storeu_ps(Y + r * ldy + 16, mask1, y1);
        }
    }
    return bad != 0;
}

#define FASTNN_TILE_CASE(N, XT) \
    case N: \
        if (nv == 2) \
            return fastnn_packed_tile(X, ldx, k, panel, ldw, b, relu, Y, ldy, N, 2, XT, \
                                      mask0, mask1); \
        if (nv == 1) \
            return fastnn_packed_tile(X, ldx, k, panel, ldw, b, relu, Y, ldy, N, 1, XT, \
                                      mask0, mask1); \
        return fastnn_packed_tile(X, ldx, k, panel, ldw, b, relu, Y, ldy, N, 0, XT, mask0, \
                                  mask1);

#define FASTNN_TILE_CASES(XT) \
    switch (mr) { \
        FASTNN_TILE_CASE(1, XT) FASTNN_TILE_CASE(2, XT) FASTNN_TILE_CASE(3, XT) \
        FASTNN_TILE_CASE(4, XT) FASTNN_TILE_CASE(5, XT) FASTNN_TILE_CASE(6, XT) \
        FASTNN_TILE_CASE(7, XT) FASTNN_TILE_CASE(8, XT) FASTNN_TILE_CASE(9, XT) \
        FASTNN_TILE_CASE(10, XT) FASTNN_TILE_CASE(11, XT) FASTNN_TILE_CASE(12, XT) \
        default: return 0; \
    }

static FASTNN_T512F int
fastnn_packed_tile_rows(const float* X, ptrdiff_t ldx, ptrdiff_t k, const float* panel,
                        ptrdiff_t ldw, const float* b, int relu, float* Y, ptrdiff_t ldy,
                        int mr, int nv, __mmask16 mask0, __mmask16 mask1) {
    FASTNN_TILE_CASES(0)
}

/* fastnn_packed_tile_rows with the tile's rows taken from the columns of X (xt). */
static FASTNN_T512F int
fastnn_packed_tile_cols(const float* X, ptrdiff_t ldx, ptrdiff_t k, const float* panel,
                        ptrdiff_t ldw, const float* b, int relu, float* Y, ptrdiff_t ldy,
                        int mr, int nv, __mmask16 mask0, __mmask16 mask1) {
    FASTNN_TILE_CASES(1)
}

/* Y[:m] := X[:m] @ W + b (ReLU when relu), X rows ldx apart, Y rows ldy apart, b may be
 * NULL; W (k x n) read in panels of 32 columns: packed (ldw = 32, `fastnn_packed_rows`)
 * or in W itself (ldw = n, `fastnn_unpacked_rows`). With xt, Y[:m] := X[:, :m].T @ W
 * instead: X is k rows ldx apart, of which the first m columns are read.
 * Returns nonzero when a sum X @ W + b is NaN or infinite (always when X holds a NaN or
 * an infinity; see the top of this file). */
static FASTNN_T512F int
fastnn_panel_rows(const float* X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t k, const float* W,
                  ptrdiff_t ldw, ptrdiff_t n, const float* b, int relu, float* Y,
                  ptrdiff_t ldy, int xt) {
    ptrdiff_t i, j, j0, left;
    int mr, skip, bad = 0;
    __mmask16 mask0, mask1;
    for (i = 0; i < m; i += FASTNN_TILE_ROWS) {
        mr = m - i < FASTNN_TILE_ROWS ? (int)(m - i) : FASTNN_TILE_ROWS;
        for (j = 0; j < n; j += FASTNN_PANEL) {
            left = n - j;
            j0 = j;
            mask0 = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
            mask1 = left >= 32 ? (__mmask16)0xFFFF
                    : left <= 16 ? (__mmask16)0 : (__mmask16)((1u << (left - 16)) - 1);
            if (left < FASTNN_PANEL && ldw != FASTNN_PANEL) {
                /* W itself (n >= 32): its last 32 columns, of which the first 32 - left
                 * are computed again and not stored, so that no load passes the end of a
                 * row of W (masked loads ran the product 3x slower on Zen 5) */
                j0 = n - FASTNN_PANEL;
                skip = (int)(FASTNN_PANEL - left);
                mask0 = (__mmask16)(skip >= 16 ? 0 : 0xFFFFu << skip);
                mask1 = (__mmask16)(skip >= 16 ? 0xFFFFu << (skip - 16) : 0xFFFFu);
                left = FASTNN_PANEL;
            }
            bad |= (xt ? fastnn_packed_tile_cols : fastnn_packed_tile_rows)(
                X + i * (xt ? 1 : ldx), ldx, k,
                ldw == FASTNN_PANEL ? W + j * k : W + j0, ldw,
                b ? b + j0 : NULL, relu, Y + i * ldy + j0, ldy, mr,
                left > 16 ? 2 : left > 8 ? 1 : 0, mask0, mask1);
        }
    }
    return bad;
}

/* fastnn_panel_rows on the panels of W (`fastnn_pack_panels`). */
static FASTNN_T512F int
fastnn_packed_rows(const float* X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t k, const float* Wp,
                   ptrdiff_t n, const float* b, int relu, float* Y, ptrdiff_t ldy) {
    return fastnn_panel_rows(X, ldx, m, k, Wp, FASTNN_PANEL, n, b, relu, Y, ldy, 0);
}

/* fastnn_panel_rows on W (k x n, C order, n >= 32) itself, unpacked: the same sums in the
 * same order, so the same bits, as on its panels; for a few rows, where packing W would
 * cost more than the product (a panel's rows are then n floats apart, not 32: on Zen 5
 * 784-256-128-10 at 8 rows took 16.7 us, against 14.9 packed). */
static FASTNN_T512F int
fastnn_unpacked_rows(const float* X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t k, const float* W,
                     ptrdiff_t n, const float* b, int relu, float* Y, ptrdiff_t ldy) {
    return fastnn_panel_rows(X, ldx, m, k, W, n, n, b, relu, Y, ldy, 0);
}

/* dW[:m] := X[:, :m].T @ dZ: rows of a weight gradient, X (k x m at least, rows ldx
 * apart) and dZ (k x n, C order, n >= 32, read in place as `fastnn_unpacked_rows` reads
 * W), dW rows ldy apart. Each element is the sum over the k rows in order, whatever
 * block of rows of dW a call computes. */
static FASTNN_T512F void
fastnn_weight_grad_rows(const float* X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t k,
                        const float* dZ, ptrdiff_t n, float* dW, ptrdiff_t ldy) {
    (void)fastnn_panel_rows(X, ldx, m, k, dZ, n, n, NULL, 0, dW, ldy, 1);
}

#if defined(FASTNN_HAVE_MVEC)
/* glibc's libmvec: expf on 16 lanes (the x86-64 vector ABI name of its AVX-512 variant) */
__attribute__((target("avx512f"))) __m512 _ZGVeN16v_expf(__m512);

/* Y[i, :n] := softmax(Y[i, :n]) for m rows of n contiguous floats, n <= 16, sixteen rows
 * at a time: column j of the sixteen rows is one vector (a gather), so that the max and
 * the sum run across vectors, in the order of the columns as in the row-by-row softmax,
 * and one call of libmvec's expf serves sixteen rows. Returns 0 without touching Y when
 * n > 16 (the caller then runs the row-by-row softmax). */
static FASTNN_T512F int
fastnn_packed_softmax(float* Y, ptrdiff_t m, ptrdiff_t n) {
    __m512 e[16], mx, sum, scale;
    __m512i idx;
    __mmask16 rows;
    float out[16][16];
    ptrdiff_t i, j, r, left;
    if (n < 1 || n > 16)
        return 0;
    idx = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2,
                                              1, 0), _mm512_set1_epi32((int)n));
    for (i = 0; i < m; i += 16) {
        left = m - i;
        rows = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
        for (j = 0; j < n; j++)
            e[j] = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), rows, idx, Y + i * n + j, 4);
        mx = e[0];
        for (j = 1; j < n; j++)  /* as the row-by-row softmax: a NaN is never the max */
            mx = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(e[j], mx, _CMP_GT_OQ), mx, e[j]);
        sum = _mm512_setzero_ps();
        for (j = 0; j < n; j++) {
            e[j] = _ZGVeN16v_expf(_mm512_sub_ps(e[j], mx));
            sum = _mm512_add_ps(sum, e[j]);
        }
        scale = _mm512_div_ps(_mm512_set1_ps(1), sum);
        for (j = 0; j < n; j++)
            _mm512_storeu_ps(out[j], _mm512_mul_ps(e[j], scale));
        for (r = 0; r < (left < 16 ? left : 16); r++)
            for (j = 0; j < n; j++)
                Y[(i + r) * n + j] = out[j][r];
    }
    return 1;
}
#else
static int fastnn_packed_softmax(float* Y, ptrdiff_t m, ptrdiff_t n) {
    (void)Y; (void)m; (void)n;
    return 0;
}
#endif

#else  /* no x86-64 AVX-512 path: the engine always calls BLAS */

static int fastnn_cpu_packed(void) { return 0; }

static int fastnn_packed_rows(const float* X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t k,
                              const float* Wp, ptrdiff_t n, const float* b, int relu,
                              float* Y, ptrdiff_t ldy) {
    (void)X; (void)ldx; (void)m; (void)k; (void)Wp; (void)n; (void)b; (void)relu;
    (void)Y; (void)ldy;
    return 0;
}

static int fastnn_unpacked_rows(const float* X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t k,
                                const float* W, ptrdiff_t n, const float* b, int relu,
                                float* Y, ptrdiff_t ldy) {
    return fastnn_packed_rows(X, ldx, m, k, W, n, b, relu, Y, ldy);
}

static void fastnn_weight_grad_rows(const float* X, ptrdiff_t ldx, ptrdiff_t m, ptrdiff_t k,
                                    const float* dZ, ptrdiff_t n, float* dW, ptrdiff_t ldy) {
    (void)X; (void)ldx; (void)m; (void)k; (void)dZ; (void)n; (void)dW; (void)ldy;
}

static int fastnn_packed_softmax(float* Y, ptrdiff_t m, ptrdiff_t n) {
    (void)Y; (void)m; (void)n;
    return 0;
}

#endif
#endif
