/* Micro-benchmark of the 9…16-wide sparse input-layer kernels (Sources/CKernels/include/CKernels.h) on
 * synthetic MNIST-like rows (150 nonzeros each, ascending columns), 1,000 random rows per batch
 * out of N examples: ns per nonzero, forward and backward. Shows how the kernels depend on where
 * the rows live (N = 300: L2; 10,000: the fig5 training split; 50,000: fig7's).
 *
 *   gcc -O2 -march=x86-64-v3 -o /tmp/sparse_micro scripts/bench/sparse_kernel_micro.c
 *   for n in 300 10000 50000; do /tmp/sparse_micro $n; done
 */
#include "../../Sources/CKernels/include/CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: %s EXAMPLES\n", argv[0]); return 2; }
    const long n = atol(argv[1]), batch = 1000, nnz = 150, iterations = 2000;
    if (n < 1) { fprintf(stderr, "EXAMPLES must be ≥ 1\n"); return 2; }
    int32_t *starts = malloc((n + 1) * sizeof *starts), *cols = malloc(n * nnz * sizeof *cols);
    float *vals = malloc(n * nnz * sizeof *vals);
    for (long r = 0; r <= n; r++) starts[r] = (int32_t)(r * nnz);
    for (long r = 0; r < n; r++) {
        int c = 100 + rand() % 20;
        for (long k = 0; k < nnz; k++) {
            cols[r * nnz + k] = c;
            c += 1 + rand() % 3;
            if (c > 783) c = 783;
            vals[r * nnz + k] = (float)(rand() % 255) / 255.f;
        }
    }
    float *w = aligned_alloc(64, 784 * 16 * sizeof *w), *g = aligned_alloc(64, 784 * 16 * sizeof *g);
    for (int i = 0; i < 784 * 16; i++) w[i] = (float)rand() / (float)RAND_MAX;
    float bias[16] = {0}, *out = malloc(batch * 10 * sizeof *out);
    int32_t *rows = malloc(batch * sizeof *rows);
    double forward = 0, backward = 0;
    for (long i = 0; i < iterations; i++) {
        for (long b = 0; b < batch; b++) rows[b] = (int32_t)(rand() % n);
        const double t0 = now();
        hypertrain_sparse16_forward_avx512(starts, cols, vals, rows, batch, w, bias, 10, out);
        const double t1 = now();
        __builtin_memset(g, 0, 784 * 16 * sizeof *g);
        hypertrain_sparse16_backward_avx512(starts, cols, vals, rows, batch, out, 10, g);
        backward += now() - t1;
        forward += t1 - t0;
    }
    const double per = (double)iterations * batch * nnz;
    printf("examples %ld: forward %.2f ns/nonzero, backward %.2f ns/nonzero\n", n, forward / per * 1e9, backward / per * 1e9);
    return 0;
}
