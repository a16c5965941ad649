#include <zmq.h>

// ---------------------------------------------------------------------------------------
// glibc allocator tuning, owned by Transport (its only Swift importer).
//
// `mallopt` and the M_* constants live in <malloc.h>, which Swift's Glibc module does not
// export. Allocating and freeing ~660 KB message buffers with glibc's default thresholds
// returns the memory to the kernel on every free (mmap/munmap or heap trim), which made
// decode-and-copy ~60x slower in measurements (docs/protocol.md). Raising the mmap and trim
// thresholds keeps such buffers in the heap.
// ---------------------------------------------------------------------------------------
#if defined(__GLIBC__)
#include <malloc.h>

/// Sets M_MMAP_THRESHOLD and M_TRIM_THRESHOLD; returns 1 when glibc accepted both.
static inline int hypertrain_tune_malloc(int mmap_threshold, int trim_threshold) {
    int ok_mmap = mallopt(M_MMAP_THRESHOLD, mmap_threshold);
    int ok_trim = mallopt(M_TRIM_THRESHOLD, trim_threshold);
    return ok_mmap == 1 && ok_trim == 1;
}
#else
static inline int hypertrain_tune_malloc(int mmap_threshold, int trim_threshold) {
    (void)mmap_threshold;
    (void)trim_threshold;
    return 0;
}
#endif
