/* Subnormal floats read and written as zero, for the span of a kernel's loop.
 *
 * Values below the smallest normal float (1.2e-38 in float32, 2.2e-308 in float64)
 * take a slow path in the floating-point unit. Training makes them: an optimizer's
 * moment whose gradient is zero (a weight of a dead unit, an input that is always
 * zero) decays by beta1 every step and spends hundreds of steps as a subnormal before
 * it reaches zero. On x86, the MXCSR bits FTZ (results) and DAZ (inputs) turn such
 * values into zero; they are set around a loop and the caller's mode is restored
 * after it, so code outside fastnn's kernels keeps its own mode. Elsewhere the mode
 * is left alone and subnormals are computed exactly.
 */
#ifndef FASTNN_SUBNORMAL_H
#define FASTNN_SUBNORMAL_H

#if defined(__SSE2__) || defined(_M_X64)
#include <xmmintrin.h>

#define FASTNN_FLUSHES_SUBNORMALS 1

#define FASTNN_FTZ_DAZ 0x8040u  /* MXCSR: flush to zero (bit 15), denormals are zero (bit 6) */

/* Sets flush-to-zero and denormals-are-zero; returns the mode to restore. */
static inline unsigned int fastnn_subnormals_off(void) {
    unsigned int mode = _mm_getcsr();
    _mm_setcsr(mode | FASTNN_FTZ_DAZ);
    return mode;
}

static inline void fastnn_subnormals_restore(unsigned int mode) { _mm_setcsr(mode); }

/* The calling thread's floating-point mode (rounding, flushing, exception masks), which a
 * worker thread or an OpenMP team's thread takes on when it runs a caller's blocks, so
 * that a block computes the same bits on whichever thread runs it. */
static inline unsigned int fastnn_float_mode(void) { return _mm_getcsr(); }

#define FASTNN_MXCSR_FLAGS 0x3Fu  /* sticky exception flags: the thread's own, not a mode */

static inline void fastnn_set_float_mode(unsigned int mode) {
    unsigned int now = _mm_getcsr();
    if ((now ^ mode) & ~FASTNN_MXCSR_FLAGS)
        _mm_setcsr((mode & ~FASTNN_MXCSR_FLAGS) | (now & FASTNN_MXCSR_FLAGS));
}

#else

#define FASTNN_FLUSHES_SUBNORMALS 0
#define FASTNN_FTZ_DAZ 0u

static inline unsigned int fastnn_subnormals_off(void) { return 0; }
static inline void fastnn_subnormals_restore(unsigned int mode) { (void)mode; }
static inline unsigned int fastnn_float_mode(void) { return 0; }
static inline void fastnn_set_float_mode(unsigned int mode) { (void)mode; }

#endif
#endif
