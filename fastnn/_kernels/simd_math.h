/* Vector variants of libm functions.
 *
 * glibc's libmvec supplies SIMD versions of expf, tanhf, erff, log1pf and expm1f
 * (and their double twins). glibc only announces them to the compiler under
 * -ffast-math, which would also drop NaN and infinity semantics. Declaring the
 * simd attribute here lets the vectorizer call them while IEEE semantics for
 * NaN and infinity stay intact. setup.py defines FASTNN_HAVE_MVEC only when a
 * probe links against libmvec.
 */
#ifndef FASTNN_SIMD_MATH_H
#define FASTNN_SIMD_MATH_H
#include <math.h>

#if defined(FASTNN_HAVE_MVEC) && defined(__GNUC__) && defined(__x86_64__)
#define FASTNN_SIMD __attribute__((simd("notinbranch")))
FASTNN_SIMD float expf(float);
FASTNN_SIMD float tanhf(float);
FASTNN_SIMD float erff(float);
FASTNN_SIMD float log1pf(float);
FASTNN_SIMD float expm1f(float);
FASTNN_SIMD double exp(double);
FASTNN_SIMD double tanh(double);
FASTNN_SIMD double erf(double);
FASTNN_SIMD double log1p(double);
FASTNN_SIMD double expm1(double);
#endif

#endif
