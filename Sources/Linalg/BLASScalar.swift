private import CBLAS
private import CKernels
import Foundation

/// A floating-point type that OpenBLAS computes with: `Float` for training, `Double` for
/// gradient checks and the Gaussian process.
///
/// Every numerical routine in Hypertrain is generic over this protocol so that the same code
/// runs in `Float` (fast path) and in `Double` (finite-difference oracle in the tests).
///
/// The pointer arguments are Swift's own typed pointers into caller-owned workspaces; no C type
/// crosses this boundary. Hot loops pass views into preallocated buffers, which is why these
/// take pointers rather than arrays.
public protocol BLASScalar: BinaryFloatingPoint, Sendable, Codable where Self.RawSignificand: FixedWidthInteger {
    /// `C ← α·op(A)·op(B) + β·C`, row-major. `op(X)` is `Xᵀ` when the flag is set.
    static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Self, a: UnsafePointer<Self>, lda: Int,
        b: UnsafePointer<Self>, ldb: Int,
        beta: Self, c: UnsafeMutablePointer<Self>, ldc: Int)
    /// `y ← α·op(A)·x + β·y`, row-major `A` of `m × n`.
    static func gemv(
        trans: Bool, m: Int, n: Int, alpha: Self, a: UnsafePointer<Self>, lda: Int,
        x: UnsafePointer<Self>, beta: Self, y: UnsafeMutablePointer<Self>)
    /// `A ← A + α·x·yᵀ`, row-major `A` of `m × n`.
    static func ger(
        m: Int, n: Int, alpha: Self, x: UnsafePointer<Self>, y: UnsafePointer<Self>,
        a: UnsafeMutablePointer<Self>, lda: Int)
    /// Natural exponential.
    static func exp(_ x: Self) -> Self
    /// Natural logarithm.
    static func log(_ x: Self) -> Self
}

@inline(__always)
private func order(_ t: Bool) -> CBLAS_TRANSPOSE { t ? CblasTrans : CblasNoTrans }

extension Float: BLASScalar {
    @inlinable public static func exp(_ x: Float) -> Float { Foundation.exp(x) }
    @inlinable public static func log(_ x: Float) -> Float { Foundation.log(x) }

    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Float, a: UnsafePointer<Float>, lda: Int,
        b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m=\(m) n=\(n) k=\(k)")
        if m == 0 || n == 0 { return }
        cblas_sgemm(CblasRowMajor, order(transA), order(transB), Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public static func gemv(
        trans: Bool, m: Int, n: Int, alpha: Float, a: UnsafePointer<Float>, lda: Int,
        x: UnsafePointer<Float>, beta: Float, y: UnsafeMutablePointer<Float>
    ) {
        if m == 0 || n == 0 { return }
        cblas_sgemv(CblasRowMajor, order(trans), Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }

    public static func ger(
        m: Int, n: Int, alpha: Float, x: UnsafePointer<Float>, y: UnsafePointer<Float>,
        a: UnsafeMutablePointer<Float>, lda: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_sger(CblasRowMajor, Int32(m), Int32(n), alpha, x, 1, y, 1, a, Int32(lda))
    }
}

extension Double: BLASScalar {
    @inlinable public static func exp(_ x: Double) -> Double { Foundation.exp(x) }
    @inlinable public static func log(_ x: Double) -> Double { Foundation.log(x) }

    public static func gemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int,
        alpha: Double, a: UnsafePointer<Double>, lda: Int,
        b: UnsafePointer<Double>, ldb: Int,
        beta: Double, c: UnsafeMutablePointer<Double>, ldc: Int
    ) {
        precondition(m >= 0 && n >= 0 && k >= 0, "gemm: negative size m=\(m) n=\(n) k=\(k)")
        if m == 0 || n == 0 { return }
        cblas_dgemm(CblasRowMajor, order(transA), order(transB), Int32(m), Int32(n), Int32(k),
                    alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    public static func gemv(
        trans: Bool, m: Int, n: Int, alpha: Double, a: UnsafePointer<Double>, lda: Int,
        x: UnsafePointer<Double>, beta: Double, y: UnsafeMutablePointer<Double>
    ) {
        if m == 0 || n == 0 { return }
        cblas_dgemv(CblasRowMajor, order(trans), Int32(m), Int32(n), alpha, a, Int32(lda), x, 1, beta, y, 1)
    }

    public static func ger(
        m: Int, n: Int, alpha: Double, x: UnsafePointer<Double>, y: UnsafePointer<Double>,
        a: UnsafeMutablePointer<Double>, lda: Int
    ) {
        if m == 0 || n == 0 { return }
        cblas_dger(CblasRowMajor, Int32(m), Int32(n), alpha, x, 1, y, 1, a, Int32(lda))
    }
}

/// Process-wide OpenBLAS settings.
public enum BLASRuntime {
    /// Sets the number of OpenBLAS threads. Hypertrain uses one BLAS thread per process and
    /// gets parallelism from processes (two BLAS threads on 2 vCPUs are unreliable here).
    /// Also flushes denormals to zero on the calling thread (see `flushDenormalsToZero`).
    public static func setThreads(_ n: Int) {
        openblas_set_num_threads(Int32(n))
        flushDenormalsToZero()
    }

    /// Makes denormal floats behave as zero on the calling thread (FTZ + DAZ). Adam's second
    /// moments and slowly shrinking weights drift into the denormal range, where every
    /// operation costs ~100× more; ML frameworks flush them for the same reason. Every role
    /// calls this at start, so all processes round identically.
    public static func flushDenormalsToZero() {
        hypertrain_flush_denormals()
    }

    /// Runs `body` with denormals kept on the calling thread (FTZ/DAZ as they were afterwards).
    /// For parsing text, not for arithmetic: Foundation's JSONDecoder refuses a subnormal
    /// number such as `1e-310` as "not representable" while they are flushed.
    public static func keepingDenormals<T>(_ body: () throws -> T) rethrows -> T {
        let wasFlushing = hypertrain_keep_denormals() != 0
        defer { if wasFlushing { hypertrain_flush_denormals() } }
        return try body()
    }

    /// The OpenBLAS build and the kernel it chose, e.g. `"OpenBLAS 0.3.21 DYNAMIC_ARCH ... Haswell"`.
    public static var configuration: String {
        guard let c = openblas_get_config() else { return "unknown" }
        let core = openblas_get_corename().map { String(cString: $0) } ?? "?"
        return String(cString: c) + " core=" + core
    }
}
