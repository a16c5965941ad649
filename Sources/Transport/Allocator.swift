private import CZeroMQ

/// Raises glibc's malloc thresholds so that message-sized buffers (a φ of 165,000 floats is
/// 660 KB) are reused from the heap instead of being mmap'ed and returned to the kernel on
/// every free, which made decode-and-copy of such messages up to 60× slower.
///
/// Call once at process start, before the first large message (workers and coordinator).
/// Sets M_MMAP_THRESHOLD (at most 32 MiB on 64-bit glibc) and M_TRIM_THRESHOLD. Returns
/// false when the allocator is not glibc's or refused the values.
@discardableResult
public func tuneAllocatorForLargeMessages(mmapThreshold: Int32 = 32 << 20, trimThreshold: Int32 = 256 << 20) -> Bool {
    hypertrain_tune_malloc(mmapThreshold, trimThreshold) == 1
}
