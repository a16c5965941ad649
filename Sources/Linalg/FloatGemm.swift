private import CBLAS
private import CKernels

/// A small single-threaded `Float` matrix product for the dense hidden layers
/// (e.g. 1,000 × 100 × 100): AVX2/FMA register tiles of 6 rows × 16 columns.
///
/// Why not OpenBLAS: at these sizes its packing costs as much as the product, and its speed
/// depends on the kernel it detects at run time (Debian's 0.3.21 falls back to SSE3 on CPUs it
/// does not know unless `OPENBLAS_CORETYPE` is set). This kernel's bits do not depend on the
/// host either: every element of `C` is its start value followed by fused multiply-adds over
/// `k = 0, 1, …` in order, whatever the tiling — and whatever the instruction set: on CPUs
/// with AVX-512F the product runs in C (`hypertrain_sgemm_avx512` in the CKernels target, 12 × 32
/// tiles in zmm registers), whose lanes perform the same fused multiply-adds in the same order.
public enum FloatGemm {
    /// Whether the AVX-512 tiles are used (checked once).
    static let usesAVX512: Bool = AVX512Kernels.isAvailable

    /// Scratch floats `multiply` needs for inner dimension `k` (a zero-padded 16-column panel).
    public static func workspaceCount(k: Int) -> Int { max(k, 1) * 16 }

    /// `C ← (accumulate ? C : 0) + op(A)·B`, row-major, `C` of `m × n`, `B` of `k × n`.
    /// `op(A)` is `A` (`m × k`, row stride `lda`) or, with `transA`, `Aᵀ` for `A` of `k × m`.
    /// `workspace` holds `workspaceCount(k:)` floats.
    public static func multiply(
        transA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        accumulate: Bool, workspace: UnsafeMutablePointer<Float>
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "FloatGemm: m=\(m) n=\(n) k=\(k)")
        if m == 0 || n == 0 { return }
        if usesAVX512 {
            multiplyAVX512(transA: transA, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                           accumulate: accumulate)
        } else {
            multiplyPortable(transA: transA, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
                             accumulate: accumulate, workspace: workspace)
        }
    }

    /// `multiply` with the AVX-512 tiles (only on a CPU with AVX-512F: `usesAVX512`).
    static func multiplyAVX512(
        transA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int, accumulate: Bool
    ) {
        precondition(usesAVX512, "FloatGemm: AVX-512F not available")
        hypertrain_sgemm_avx512(m, n, k, a, transA ? 1 : lda, transA ? lda : 1, b, ldb, c, ldc, accumulate ? 1 : 0)
    }

    /// `multiply` with the AVX2 tiles written in Swift (any x86-64-v3 CPU).
    static func multiplyPortable(
        transA: Bool, m: Int, n: Int, k: Int, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int, c: UnsafeMutablePointer<Float>, ldc: Int,
        accumulate: Bool, workspace: UnsafeMutablePointer<Float>
    ) {
        if m == 0 || n == 0 { return }
        let rowStep = transA ? 1 : lda      // between rows of op(A)
        let kStep = transA ? lda : 1        // along k
        var j0 = 0
        while j0 < n {
            let width = min(16, n - j0)
            let panel: UnsafePointer<Float>
            let panelStride: Int
            if width == 16 {
                panel = b + j0
                panelStride = ldb
            } else {
                for kk in 0..<k {
                    let dst = workspace + kk &* 16
                    let src = b + kk &* ldb + j0
                    for t in 0..<width { dst[t] = src[t] }
                    for t in width..<16 { dst[t] = 0 }
                }
                panel = UnsafePointer(workspace)
                panelStride = 16
            }
            var i0 = 0
            while i0 + 6 <= m {
                tile6(a + i0 &* rowStep, rowStep, kStep, k, panel, panelStride, c + i0 &* ldc + j0, ldc, width, accumulate)
                i0 += 6
            }
            while i0 < m {
                tile1(a + i0 &* rowStep, kStep, k, panel, panelStride, c + i0 &* ldc + j0, width, accumulate)
                i0 += 1
            }
            j0 += 16
        }
    }

    /// `dst (cols × rows) = srcᵀ` for a row-major `src` of `rows × cols`.
    public static func transpose(rows: Int, cols: Int, _ src: UnsafePointer<Float>, into dst: UnsafeMutablePointer<Float>) {
        for i in 0..<rows {
            let s = src + i &* cols
            for j in 0..<cols { dst[j &* rows + i] = s[j] }
        }
    }

    @inline(__always)
    private static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always)
    private static func loadRow(_ p: UnsafePointer<Float>, _ width: Int, _ accumulate: Bool) -> (SIMD8<Float>, SIMD8<Float>) {
        if !accumulate { return (.zero, .zero) }
        if width == 16 { return (load(p), load(p + 8)) }
        var lo = SIMD8<Float>.zero, hi = SIMD8<Float>.zero
        for t in 0..<min(width, 8) { lo[t] = p[t] }
        if width > 8 { for t in 8..<width { hi[t - 8] = p[t] } }
        return (lo, hi)
    }

    @inline(__always)
    private static func storeRow(_ lo: SIMD8<Float>, _ hi: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>, _ width: Int) {
        if width == 16 {
            UnsafeMutableRawPointer(p).storeBytes(of: lo, as: SIMD8<Float>.self)
            UnsafeMutableRawPointer(p + 8).storeBytes(of: hi, as: SIMD8<Float>.self)
            return
        }
        for t in 0..<min(width, 8) { p[t] = lo[t] }
        if width > 8 { for t in 8..<width { p[t] = hi[t - 8] } }
    }

    /// Six rows of `C` (`width` ≤ 16 columns) in twelve registers.
    private static func tile6(
        _ a: UnsafePointer<Float>, _ rowStep: Int, _ kStep: Int, _ k: Int,
        _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>, _ ldc: Int,
        _ width: Int, _ accumulate: Bool
    ) {
        var (c00, c01) = loadRow(c, width, accumulate)
        var (c10, c11) = loadRow(c + ldc, width, accumulate)
        var (c20, c21) = loadRow(c + 2 &* ldc, width, accumulate)
        var (c30, c31) = loadRow(c + 3 &* ldc, width, accumulate)
        var (c40, c41) = loadRow(c + 4 &* ldc, width, accumulate)
        var (c50, c51) = loadRow(c + 5 &* ldc, width, accumulate)
        let r1 = rowStep, r2 = 2 &* rowStep, r3 = 3 &* rowStep, r4 = 4 &* rowStep, r5 = 5 &* rowStep
        var ak = a
        var bk = b
        for _ in 0..<k {
            let b0 = load(bk), b1 = load(bk + 8)
            let x0 = SIMD8<Float>(repeating: ak[0])
            c00.addProduct(x0, b0); c01.addProduct(x0, b1)
            let x1 = SIMD8<Float>(repeating: ak[r1])
            c10.addProduct(x1, b0); c11.addProduct(x1, b1)
            let x2 = SIMD8<Float>(repeating: ak[r2])
            c20.addProduct(x2, b0); c21.addProduct(x2, b1)
            let x3 = SIMD8<Float>(repeating: ak[r3])
            c30.addProduct(x3, b0); c31.addProduct(x3, b1)
            let x4 = SIMD8<Float>(repeating: ak[r4])
            c40.addProduct(x4, b0); c41.addProduct(x4, b1)
            let x5 = SIMD8<Float>(repeating: ak[r5])
            c50.addProduct(x5, b0); c51.addProduct(x5, b1)
            ak += kStep
            bk += ldb
        }
        storeRow(c00, c01, c, width)
        storeRow(c10, c11, c + ldc, width)
        storeRow(c20, c21, c + 2 &* ldc, width)
        storeRow(c30, c31, c + 3 &* ldc, width)
        storeRow(c40, c41, c + 4 &* ldc, width)
        storeRow(c50, c51, c + 5 &* ldc, width)
    }

    /// One row of `C` (the rows left over after the 6-row tiles).
    private static func tile1(
        _ a: UnsafePointer<Float>, _ kStep: Int, _ k: Int,
        _ b: UnsafePointer<Float>, _ ldb: Int, _ c: UnsafeMutablePointer<Float>,
        _ width: Int, _ accumulate: Bool
    ) {
        var (c0, c1) = loadRow(c, width, accumulate)
        var ak = a
        var bk = b
        for _ in 0..<k {
            let x = SIMD8<Float>(repeating: ak[0])
            c0.addProduct(x, load(bk)); c1.addProduct(x, load(bk + 8))
            ak += kStep
            bk += ldb
        }
        storeRow(c0, c1, c, width)
    }
}
