private import CKernels

/// Sparse-row helpers written in C (the CKernels target), for loops bound by the latency of
/// reading randomly chosen rows: they prefetch the rows they will read next.
public enum SparseGather {
    /// For the column-grouped sparse kernels: records the nonzeros of example rows
    /// `rows[0 ..< count]` (`count` ≤ 32; CSR `starts`/`cols`/`vals`) by column — bit `q` of
    /// `mask[j]` set when row `q` has a nonzero in column `j` (all `inputs` masks rewritten),
    /// `value[q·inputs + j]` its value (other entries left as they are). Rows up to
    /// `rows[available − 1]` may be prefetched.
    public static func byColumn(
        inputs: Int, starts: UnsafePointer<Int32>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>,
        rows: UnsafePointer<Int32>, count: Int, available: Int,
        mask: UnsafeMutablePointer<UInt32>, value: UnsafeMutablePointer<Float>
    ) {
        precondition((0...32).contains(count) && available >= count, "SparseGather.byColumn: \(count) rows of \(available)")
        hypertrain_grouped_gather(inputs, starts, cols, vals, rows, count, available, mask, value)
    }
}
