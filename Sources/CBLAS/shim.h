#include <cblas.h>
#include <lapacke.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
/// Sets FTZ and DAZ in this thread's MXCSR: denormal results and inputs become zero.
static inline void hypertrain_flush_denormals(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }
#else
static inline void hypertrain_flush_denormals(void) {}
#endif
