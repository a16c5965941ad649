/* Hand-written C kernels for Linalg's hot loops: what Swift cannot express (AVX-512
 * intrinsics, MXCSR flags, software prefetch) or cannot yet compile as well. All are
 * `static inline` so they inline into the Swift callers, compiled with the callers' target
 * CPU; the AVX-512 ones carry their own `target` attribute and run only after
 * `hypertrain_has_avx512f()`. Only Linalg imports this module. */
#ifndef HYPERTRAIN_CKERNELS_H
#define HYPERTRAIN_CKERNELS_H
#include <stdint.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
/// Sets FTZ and DAZ in this thread's MXCSR: denormal results and inputs become zero.
static inline void hypertrain_flush_denormals(void) { _mm_setcsr(_mm_getcsr() | 0x8040); }
/// Clears FTZ and DAZ in this thread's MXCSR and returns whether they were set.
static inline int hypertrain_keep_denormals(void) {
    unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr & ~0x8040u);
    return (csr & 0x8040u) != 0;
}
#else
static inline void hypertrain_flush_denormals(void) {}
static inline int hypertrain_keep_denormals(void) { return 0; }
#endif
#if defined(__linux__)
#include <sched.h>
#ifndef SCHED_IDLE
#define SCHED_IDLE 5
#endif
/// Moves the calling thread to SCHED_IDLE: it runs only on a core nothing else wants (no
/// privileges needed); returns 0 or -1 with errno set.
static inline int hypertrain_idle_this_thread(void) {
    struct sched_param p = { .sched_priority = 0 };
    return sched_setscheduler(0, SCHED_IDLE, &p);
}
#else
static inline int hypertrain_idle_this_thread(void) { return 0; }
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
/// Prefetches all of example `r`'s nonzeros (column indices and values) into L1: a row is
/// ≈ 150 nonzeros, streams too short for the hardware prefetcher to ramp up on
/// (scripts/bench/sparse_kernel_micro.c compares it with prefetching only the first line).
static inline __attribute__((always_inline)) void hypertrain_prefetch_row(
    const int32_t *starts, const int32_t *cols, const float *vals, int32_t r)
{
    const long end = starts[r + 1];
    for (long x = starts[r]; x < end + 16; x += 16) {
        __builtin_prefetch(cols + x);   // prefetcht0
        __builtin_prefetch(vals + x);
    }
}
/// The column-grouped sparse kernels' gather: records the nonzeros of example rows `rows[0 ..<
/// count]` (`count` ≤ 32) by column — bit `q` of `mask[j]` set when row `q` has a nonzero in
/// column `j`, `value[q·inputs + j]` its value (other entries untouched) — prefetching rows two
/// ahead (up to row `available − 1`, so the next group's first rows too).
static inline void hypertrain_grouped_gather(
    long inputs, const int32_t *starts, const int32_t *cols, const float *vals,
    const int32_t *rows, long count, long available, uint32_t *mask, float *value)
{
    __builtin_memset(mask, 0, (unsigned long)inputs * sizeof(uint32_t));
    for (long q = 0; q < count; q++) {
        if (q + 2 < available) hypertrain_prefetch_row(starts, cols, vals, rows[q + 2]);
        const long r = rows[q];
        const uint32_t bit = 1u << q;
        float *row = value + q * inputs;
        for (long p = starts[r], end = starts[r + 1]; p < end; p++) {
            const long c = cols[p];
            mask[c] |= bit;
            row[c] = vals[p];
        }
    }
}
#if defined(__x86_64__)
#include <immintrin.h>
/// 1 when the CPU (and the OS) supports AVX-512F; the caller checks once and caches it.
static inline int hypertrain_has_avx512f(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") ? 1 : 0;
}
#define HYPERTRAIN_AVX512 __attribute__((target("avx512f,avx512vl,fma")))

/// One `mr` × (16·`nv`) tile of `C` for `hypertrain_sgemm_avx512` (`mr`, `nv` constants at every
/// call, so the accumulators live in zmm registers). Each element: its start value (`C` or +0),
/// then one fused multiply-add per `k` in order — the operations of FloatGemm's Swift tiles.
#define HYPERTRAIN_ROWS12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define HYPERTRAIN_DECLARE(R) __m512 p##R = _mm512_setzero_ps(), q##R = _mm512_setzero_ps();
#define HYPERTRAIN_LOAD(R) if (R < mr && accumulate) { \
        p##R = _mm512_maskz_loadu_ps(m0, c + R * ldc); \
        if (nv == 2) q##R = _mm512_maskz_loadu_ps(m1, c + R * ldc + 16); }
#define HYPERTRAIN_FMA(R) if (R < mr) { const __m512 x = _mm512_set1_ps(a[R * rowStep]); \
        p##R = _mm512_fmadd_ps(x, b0, p##R); if (nv == 2) q##R = _mm512_fmadd_ps(x, b1, q##R); }
#define HYPERTRAIN_STORE(R) if (R < mr) { _mm512_mask_storeu_ps(c + R * ldc, m0, p##R); \
        if (nv == 2) _mm512_mask_storeu_ps(c + R * ldc + 16, m1, q##R); }
static inline __attribute__((always_inline)) HYPERTRAIN_AVX512 void hypertrain_sgemm_avx512_tile(
    const int mr, const int nv, const float *a, long rowStep, long kStep, long k,
    const float *b, long ldb, float *c, long ldc, __mmask16 m0, __mmask16 m1, int accumulate)
{
    // Written out row by row (macros): the clang inside swiftc does not unroll loops here, and
    // the accumulators must be separate variables to stay in registers.
    HYPERTRAIN_ROWS12(HYPERTRAIN_DECLARE)
    HYPERTRAIN_ROWS12(HYPERTRAIN_LOAD)
    for (long kk = 0; kk < k; kk++) {
        const __m512 b0 = _mm512_maskz_loadu_ps(m0, b);
        const __m512 b1 = nv == 2 ? _mm512_maskz_loadu_ps(m1, b + 16) : _mm512_setzero_ps();
        HYPERTRAIN_ROWS12(HYPERTRAIN_FMA)
        a += kStep;
        b += ldb;
    }
    HYPERTRAIN_ROWS12(HYPERTRAIN_STORE)
}
#undef HYPERTRAIN_DECLARE
#undef HYPERTRAIN_LOAD
#undef HYPERTRAIN_FMA
#undef HYPERTRAIN_STORE

#define HYPERTRAIN_SGEMM_TILE(MR) \
    case MR: if (nv == 2) hypertrain_sgemm_avx512_tile(MR, 2, a, rowStep, kStep, k, b, ldb, c, ldc, m0, m1, accumulate); \
             else hypertrain_sgemm_avx512_tile(MR, 1, a, rowStep, kStep, k, b, ldb, c, ldc, m0, m1, accumulate); break;

/// FloatGemm's product with AVX-512 tiles of 12 rows × 32 columns (partial tiles masked):
/// `C ← (accumulate ? C : 0) + op(A)·B`, row-major, `op(A)` read as `a[i·rowStep + k·kStep]`.
/// Call only when `hypertrain_has_avx512f()`.
static inline HYPERTRAIN_AVX512 void hypertrain_sgemm_avx512(
    long m, long n, long k, const float *a0, long rowStep, long kStep,
    const float *b0, long ldb, float *c0, long ldc, int accumulate)
{
    for (long j0 = 0; j0 < n; j0 += 32) {
        const long width = n - j0 < 32 ? n - j0 : 32;
        const int nv = width > 16 ? 2 : 1;
        const __mmask16 m0 = width >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << width) - 1);
        const __mmask16 m1 = width >= 32 ? (__mmask16)0xFFFF : (width > 16 ? (__mmask16)((1u << (width - 16)) - 1) : 0);
        const float *b = b0 + j0;
        for (long i0 = 0; i0 < m; i0 += 12) {
            const int mr = m - i0 < 12 ? (int)(m - i0) : 12;
            const float *a = a0 + i0 * rowStep;
            float *c = c0 + i0 * ldc + j0;
            switch (mr) {
                HYPERTRAIN_SGEMM_TILE(12) HYPERTRAIN_SGEMM_TILE(11) HYPERTRAIN_SGEMM_TILE(10)
                HYPERTRAIN_SGEMM_TILE(9) HYPERTRAIN_SGEMM_TILE(8) HYPERTRAIN_SGEMM_TILE(7)
                HYPERTRAIN_SGEMM_TILE(6) HYPERTRAIN_SGEMM_TILE(5) HYPERTRAIN_SGEMM_TILE(4)
                HYPERTRAIN_SGEMM_TILE(3) HYPERTRAIN_SGEMM_TILE(2) HYPERTRAIN_SGEMM_TILE(1)
                default: break;
            }
        }
    }
}
#undef HYPERTRAIN_SGEMM_TILE

/// The column-grouped sparse input layer's forward scatter for rows 97…104 wide (`z` holds up
/// to 32 output rows, `stride` floats apart): for each input column `j` in order with `mask[j] ≠ 0`,
/// its weight row (seven zmm registers, the last masked) is added with one fused multiply-add
/// per lane into each row `q` of the mask in ascending bit order, times `value[q·inputs + j]`.
static inline HYPERTRAIN_AVX512 void hypertrain_grouped_forward_avx512(
    long inputs, const uint32_t *mask, const float *value, const float *weights, long width, float *z, long stride)
{
    const __mmask16 t = (__mmask16)((1u << (width - 96)) - 1);
    for (long j = 0; j < inputs; j++) {
        uint32_t bits = mask[j];
        if (bits == 0) continue;
        const float *w = weights + j * width;
        const __m512 w0 = _mm512_loadu_ps(w), w1 = _mm512_loadu_ps(w + 16), w2 = _mm512_loadu_ps(w + 32);
        const __m512 w3 = _mm512_loadu_ps(w + 48), w4 = _mm512_loadu_ps(w + 64), w5 = _mm512_loadu_ps(w + 80);
        const __m512 w6 = _mm512_maskz_loadu_ps(t, w + 96);
        const float *v = value + j;
        while (bits != 0) {
            const long q = __builtin_ctz(bits);
            bits &= bits - 1;
            const __m512 x = _mm512_set1_ps(v[q * inputs]);
            float *o = z + q * stride;
            _mm512_storeu_ps(o, _mm512_fmadd_ps(x, w0, _mm512_loadu_ps(o)));
            _mm512_storeu_ps(o + 16, _mm512_fmadd_ps(x, w1, _mm512_loadu_ps(o + 16)));
            _mm512_storeu_ps(o + 32, _mm512_fmadd_ps(x, w2, _mm512_loadu_ps(o + 32)));
            _mm512_storeu_ps(o + 48, _mm512_fmadd_ps(x, w3, _mm512_loadu_ps(o + 48)));
            _mm512_storeu_ps(o + 64, _mm512_fmadd_ps(x, w4, _mm512_loadu_ps(o + 64)));
            _mm512_storeu_ps(o + 80, _mm512_fmadd_ps(x, w5, _mm512_loadu_ps(o + 80)));
            _mm512_mask_storeu_ps(o + 96, t, _mm512_fmadd_ps(x, w6, _mm512_maskz_loadu_ps(t, o + 96)));
        }
    }
}

/// The column-grouped backward for rows 97…104 wide (`d` holds up to 32 rows of ∂Z, `stride`
/// floats apart): for each input column `j` with `mask[j] ≠ 0`, its gradient row (`width` floats) is
/// loaded into seven zmm registers, receives one fused multiply-add per lane for each row `q`
/// of the mask in ascending bit order (`value[q·inputs + j] · d[q, :]`), and is stored.
static inline HYPERTRAIN_AVX512 void hypertrain_grouped_backward_avx512(
    long inputs, const uint32_t *mask, const float *value, const float *d, long stride, long width, float *grad)
{
    const __mmask16 t = (__mmask16)((1u << (width - 96)) - 1);
    for (long j = 0; j < inputs; j++) {
        uint32_t bits = mask[j];
        if (bits == 0) continue;
        float *g = grad + j * width;
        __m512 a0 = _mm512_loadu_ps(g), a1 = _mm512_loadu_ps(g + 16), a2 = _mm512_loadu_ps(g + 32);
        __m512 a3 = _mm512_loadu_ps(g + 48), a4 = _mm512_loadu_ps(g + 64), a5 = _mm512_loadu_ps(g + 80);
        __m512 a6 = _mm512_maskz_loadu_ps(t, g + 96);
        const float *v = value + j;
        while (bits != 0) {
            const long q = __builtin_ctz(bits);
            bits &= bits - 1;
            const __m512 x = _mm512_set1_ps(v[q * inputs]);
            const float *r = d + q * stride;
            a0 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r), a0);
            a1 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r + 16), a1);
            a2 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r + 32), a2);
            a3 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r + 48), a3);
            a4 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r + 64), a4);
            a5 = _mm512_fmadd_ps(x, _mm512_loadu_ps(r + 80), a5);
            a6 = _mm512_fmadd_ps(x, _mm512_maskz_loadu_ps(t, r + 96), a6);
        }
        _mm512_storeu_ps(g, a0); _mm512_storeu_ps(g + 16, a1); _mm512_storeu_ps(g + 32, a2);
        _mm512_storeu_ps(g + 48, a3); _mm512_storeu_ps(g + 64, a4); _mm512_storeu_ps(g + 80, a5);
        _mm512_mask_storeu_ps(g + 96, t, a6);
    }
}
/// The sparse input layer's forward pass for rows 9…16 wide, `weights` padded to 16 floats per
/// input column (one zmm): `out[n, c] = bias[c] + (E + O)` for `c < width`, where `E` is the
/// fused multiply-add chain from +0 over the row's nonzeros at even offsets from its start and
/// `O` the chain over the odd offsets, each in nonzero order — the operations of the AVX2 Swift
/// loop (`block16`). Four rows run interleaved (eight independent chains) to hide the FMA
/// latency; the nonzeros of the rows two blocks ahead are prefetched.
#define HYPERTRAIN_S16_STEP(I) \
        e##I = _mm512_fmadd_ps(_mm512_set1_ps(vals[p##I + k]), _mm512_load_ps(weights + 16 * (long)cols[p##I + k]), e##I); \
        o##I = _mm512_fmadd_ps(_mm512_set1_ps(vals[p##I + k + 1]), _mm512_load_ps(weights + 16 * (long)cols[p##I + k + 1]), o##I);
static inline __attribute__((always_inline)) HYPERTRAIN_AVX512 __m512 hypertrain_sparse16_finish(
    const int32_t *cols, const float *vals, const float *weights, long p, long k, long len, __m512 e, __m512 o)
{
    for (; k + 1 < len; k += 2) {
        e = _mm512_fmadd_ps(_mm512_set1_ps(vals[p + k]), _mm512_load_ps(weights + 16 * (long)cols[p + k]), e);
        o = _mm512_fmadd_ps(_mm512_set1_ps(vals[p + k + 1]), _mm512_load_ps(weights + 16 * (long)cols[p + k + 1]), o);
    }
    if (k < len) e = _mm512_fmadd_ps(_mm512_set1_ps(vals[p + k]), _mm512_load_ps(weights + 16 * (long)cols[p + k]), e);
    return _mm512_add_ps(e, o);
}
static inline HYPERTRAIN_AVX512 void hypertrain_sparse16_forward_avx512(
    const int32_t *starts, const int32_t *cols, const float *vals, const int32_t *rows, long count,
    const float *weights, const float *bias, long width, float *out)
{
    const __mmask16 m = (__mmask16)((1u << width) - 1);
    const __m512 b = _mm512_maskz_loadu_ps(m, bias);
    long n = 0;
    for (; n + 4 <= count; n += 4) {
        const long p0 = starts[rows[n]], p1 = starts[rows[n + 1]], p2 = starts[rows[n + 2]], p3 = starts[rows[n + 3]];
        const long l0 = starts[rows[n] + 1] - p0, l1 = starts[rows[n + 1] + 1] - p1;
        const long l2 = starts[rows[n + 2] + 1] - p2, l3 = starts[rows[n + 3] + 1] - p3;
        for (long i = n + 8; i < n + 12 && i < count; i++) hypertrain_prefetch_row(starts, cols, vals, rows[i]);
        long common = l0 < l1 ? l0 : l1;
        if (l2 < common) common = l2;
        if (l3 < common) common = l3;
        common &= ~1L;
        __m512 e0 = _mm512_setzero_ps(), o0 = e0, e1 = e0, o1 = e0, e2 = e0, o2 = e0, e3 = e0, o3 = e0;
        long k = 0;
        for (; k < common; k += 2) {
            HYPERTRAIN_S16_STEP(0) HYPERTRAIN_S16_STEP(1) HYPERTRAIN_S16_STEP(2) HYPERTRAIN_S16_STEP(3)
        }
        const __m512 z0 = hypertrain_sparse16_finish(cols, vals, weights, p0, k, l0, e0, o0);
        const __m512 z1 = hypertrain_sparse16_finish(cols, vals, weights, p1, k, l1, e1, o1);
        const __m512 z2 = hypertrain_sparse16_finish(cols, vals, weights, p2, k, l2, e2, o2);
        const __m512 z3 = hypertrain_sparse16_finish(cols, vals, weights, p3, k, l3, e3, o3);
        _mm512_mask_storeu_ps(out + n * width, m, _mm512_add_ps(b, z0));
        _mm512_mask_storeu_ps(out + (n + 1) * width, m, _mm512_add_ps(b, z1));
        _mm512_mask_storeu_ps(out + (n + 2) * width, m, _mm512_add_ps(b, z2));
        _mm512_mask_storeu_ps(out + (n + 3) * width, m, _mm512_add_ps(b, z3));
    }
    for (; n < count; n++) {
        const long p = starts[rows[n]], len = starts[rows[n] + 1] - p;
        const __m512 z = hypertrain_sparse16_finish(cols, vals, weights, p, 0, len, _mm512_setzero_ps(), _mm512_setzero_ps());
        _mm512_mask_storeu_ps(out + n * width, m, _mm512_add_ps(b, z));
    }
}
#undef HYPERTRAIN_S16_STEP

/// The sparse input layer's backward pass for rows 9…16 wide into `grad` (16 floats per input
/// column, zeroed by the caller): for each row `n` in batch order and each of its nonzeros in
/// order, `grad[col_p, :] = fma(x_p, ∂Z[n, :], grad[col_p, :])` (lanes ≥ `width` of ∂Z read as
/// 0) — the AVX2 Swift loop's operations, the next row's nonzeros prefetched.
static inline HYPERTRAIN_AVX512 void hypertrain_sparse16_backward_avx512(
    const int32_t *starts, const int32_t *cols, const float *vals, const int32_t *rows, long count,
    const float *dOut, long width, float *grad)
{
    const __mmask16 m = (__mmask16)((1u << width) - 1);
    for (long n = 0; n < count; n++) {
        const long p0 = starts[rows[n]], p1 = starts[rows[n] + 1];
        if (n + 2 < count) hypertrain_prefetch_row(starts, cols, vals, rows[n + 2]);
        const __m512 d = _mm512_maskz_loadu_ps(m, dOut + n * width);
        long p = p0;
        for (; p + 4 <= p1; p += 4) {
            float *g0 = grad + 16 * (long)cols[p], *g1 = grad + 16 * (long)cols[p + 1];
            float *g2 = grad + 16 * (long)cols[p + 2], *g3 = grad + 16 * (long)cols[p + 3];
            _mm512_store_ps(g0, _mm512_fmadd_ps(_mm512_set1_ps(vals[p]), d, _mm512_load_ps(g0)));
            _mm512_store_ps(g1, _mm512_fmadd_ps(_mm512_set1_ps(vals[p + 1]), d, _mm512_load_ps(g1)));
            _mm512_store_ps(g2, _mm512_fmadd_ps(_mm512_set1_ps(vals[p + 2]), d, _mm512_load_ps(g2)));
            _mm512_store_ps(g3, _mm512_fmadd_ps(_mm512_set1_ps(vals[p + 3]), d, _mm512_load_ps(g3)));
        }
        for (; p < p1; p++) {
            float *g = grad + 16 * (long)cols[p];
            _mm512_store_ps(g, _mm512_fmadd_ps(_mm512_set1_ps(vals[p]), d, _mm512_load_ps(g)));
        }
    }
}
#else
static inline int hypertrain_has_avx512f(void) { return 0; }
static inline void hypertrain_sgemm_avx512(
    long m, long n, long k, const float *a0, long rowStep, long kStep,
    const float *b0, long ldb, float *c0, long ldc, int accumulate) {}
static inline void hypertrain_grouped_forward_avx512(
    long inputs, const uint32_t *mask, const float *value, const float *weights, long width, float *z, long stride) {}
static inline void hypertrain_grouped_backward_avx512(
    long inputs, const uint32_t *mask, const float *value, const float *d, long stride, long width, float *grad) {}
static inline void hypertrain_sparse16_forward_avx512(
    const int32_t *starts, const int32_t *cols, const float *vals, const int32_t *rows, long count,
    const float *weights, const float *bias, long width, float *out) {}
static inline void hypertrain_sparse16_backward_avx512(
    const int32_t *starts, const int32_t *cols, const float *vals, const int32_t *rows, long count,
    const float *dOut, long width, float *grad) {}
#endif
#endif
