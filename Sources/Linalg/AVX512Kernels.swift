private import CKernels

/// Kernels written in C with AVX-512F intrinsics (the CKernels target), for hot loops whose rows
/// fit zmm registers better than ymm ones. The package is compiled for x86-64-v3 (AVX2), so
/// callers check `isAvailable` (detected once) and keep their AVX2 Swift loop as the
/// fallback. Each kernel performs, lane by lane, the fused multiply-adds of the Swift loop it
/// stands in for, in the same order: the results are the same bits (tested against them).
public enum AVX512Kernels {
    /// Whether this CPU (and OS) supports AVX-512F.
    public static let isAvailable: Bool = hypertrain_has_avx512f() != 0

    /// The column-grouped sparse input layer's forward scatter (rows 97…104 wide, `z` rows `stride`
    /// floats apart, at most 32): for each column `j < inputs` in order, for each set bit `q`
    /// of `mask[j]` in ascending order, `z[q, c] = fma(value[q·inputs + j], W[j, c], z[q, c])`
    /// for `c < width`. Lanes `width ..< 104` of `z` are left as they are.
    public static func groupedForward(
        inputs: Int, mask: UnsafePointer<UInt32>, value: UnsafePointer<Float>,
        weights: UnsafePointer<Float>, width: Int, z: UnsafeMutablePointer<Float>, stride: Int
    ) {
        precondition(isAvailable && (97...104).contains(width), "AVX512Kernels.groupedForward: width \(width)")
        hypertrain_grouped_forward_avx512(inputs, mask, value, weights, width, z, stride)
    }

    /// The column-grouped backward (rows 97…104 wide, `d` rows `stride` floats apart, at most 32):
    /// for each column `j` with `mask[j] ≠ 0`, for each set bit `q` in ascending order,
    /// `grad[j, c] = fma(value[q·inputs + j], d[q, c], grad[j, c])` for `c < width`.
    public static func groupedBackward(
        inputs: Int, mask: UnsafePointer<UInt32>, value: UnsafePointer<Float>,
        d: UnsafePointer<Float>, stride: Int, width: Int, grad: UnsafeMutablePointer<Float>
    ) {
        precondition(isAvailable && (97...104).contains(width), "AVX512Kernels.groupedBackward: width \(width)")
        hypertrain_grouped_backward_avx512(inputs, mask, value, d, stride, width, grad)
    }

    /// The sparse input layer's forward pass for rows 9…16 wide (`weights`: 16 floats per input
    /// column, 64-byte aligned): `out[n, c] = bias[c] + (E + O)` for `c < width`, where `E` and
    /// `O` are the fused multiply-add chains from +0 over the nonzeros of example `rows[n]` at even
    /// and at odd offsets from the row's start, in nonzero order.
    public static func sparse16Forward(
        starts: UnsafePointer<Int32>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>,
        rows: UnsafeBufferPointer<Int32>, weights: UnsafePointer<Float>, bias: UnsafePointer<Float>,
        width: Int, out: UnsafeMutablePointer<Float>
    ) {
        precondition(isAvailable && (9...16).contains(width), "AVX512Kernels.sparse16Forward: width \(width)")
        precondition(Int(bitPattern: weights) % 64 == 0, "AVX512Kernels.sparse16Forward: unaligned weights")
        guard let r = rows.baseAddress else { return }
        hypertrain_sparse16_forward_avx512(starts, cols, vals, r, rows.count, weights, bias, width, out)
    }

    /// The sparse input layer's backward pass for rows 9…16 wide into `grad` (16 floats per input
    /// column, 64-byte aligned, zeroed by the caller): for each example `rows[n]` in batch order and
    /// each of its nonzeros `p` in order, `grad[col_p, :] = fma(x_p, ∂Z[n, :], grad[col_p, :])`.
    public static func sparse16Backward(
        starts: UnsafePointer<Int32>, cols: UnsafePointer<Int32>, vals: UnsafePointer<Float>,
        rows: UnsafeBufferPointer<Int32>, dOut: UnsafePointer<Float>, width: Int, grad: UnsafeMutablePointer<Float>
    ) {
        precondition(isAvailable && (9...16).contains(width), "AVX512Kernels.sparse16Backward: width \(width)")
        precondition(Int(bitPattern: grad) % 64 == 0, "AVX512Kernels.sparse16Backward: unaligned gradient")
        guard let r = rows.baseAddress else { return }
        hypertrain_sparse16_backward_avx512(starts, cols, vals, r, rows.count, dOut, width, grad)
    }
}
