#include <cblas.h>
#include <lapacke.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
/// Sets FTZ and DAZ in this thread's MXCSR: denormal results and inputs become zero.
static inline void hypertrain_flush_denormals(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }
#else
static inline void hypertrain_flush_denormals(void) {}
#endif
#if defined(__x86_64__) && defined(__AVX__)
#include <immintrin.h>
/// Eight `float` / four `double` square roots in one instruction (IEEE, correctly rounded: the
/// bits of the scalar square root). Swift's `SIMD.squareRoot()` calls `sqrtf` lane by lane on
/// Linux (math-errno), which the hot loops cannot afford.
static inline void hypertrain_sqrt8f(const float *x, float *y) { _mm256_storeu_ps(y, _mm256_sqrt_ps(_mm256_loadu_ps(x))); }
static inline void hypertrain_sqrt4d(const double *x, double *y) { _mm256_storeu_pd(y, _mm256_sqrt_pd(_mm256_loadu_pd(x))); }
#else
static inline void hypertrain_sqrt8f(const float *x, float *y) { for (int i = 0; i < 8; i++) y[i] = __builtin_sqrtf(x[i]); }
static inline void hypertrain_sqrt4d(const double *x, double *y) { for (int i = 0; i < 4; i++) y[i] = __builtin_sqrt(x[i]); }
#endif
