private import CBLAS

/// Why a Cholesky factorization failed.
public enum CholeskyError: Error, Sendable, Equatable {
    /// The matrix is not positive definite even after adding `jitter` to its diagonal:
    /// LAPACK found the leading minor of order `minor` (1-based) not positive.
    case notPositiveDefinite(order: Int, minor: Int, jitter: Double)
    /// The matrix holds NaN or ±∞.
    case nonFinite(order: Int)
}

/// The Cholesky factorization `A = L·Lᵀ` of a symmetric positive-definite `Double` matrix
/// (LAPACK `dpotrf`), with solves, the log-determinant, the inverse, and growth by one row.
///
/// Matrices are dense, row-major, `order × order`, in `[Double]`. Only the lower triangle of
/// the input is read. The factor `lower` is row-major with zeros above the diagonal.
///
/// Layout note: a row-major lower triangle is, byte for byte, the upper triangle of the same
/// matrix in column-major order, so every call passes `LAPACK_COL_MAJOR` with `uplo = 'U'`
/// and LAPACKE never transposes a copy.
///
/// Jitter: when `dpotrf` fails, the factorization is retried with `ε·mean(diag A)` added to the
/// diagonal for ε = 1e-10, 1e-9, …, 1e-6 (the usual remedy for a kernel matrix that is
/// positive definite in exact arithmetic but not in floating point). The jitter used is kept
/// in `jitter`; the factor is of `A + jitter·I`.
public struct Cholesky: Sendable {
    /// The matrix order n.
    public let order: Int
    /// L, row-major `order × order`, zero above the diagonal.
    public private(set) var lower: [Double]
    /// What was added to the diagonal of A to make it factor (0 when nothing was needed).
    public let jitter: Double

    /// The relative jitters tried, in order, after the plain factorization fails.
    public static let jitterLadder: [Double] = [1e-10, 1e-9, 1e-8, 1e-7, 1e-6]

    /// Factors the symmetric positive-definite `matrix` (row-major, `order × order`; only its
    /// lower triangle is read).
    /// - Parameter allowJitter: retry with diagonal jitter when the plain factorization fails.
    public init(_ matrix: [Double], order n: Int, allowJitter: Bool = true) throws(CholeskyError) {
        precondition(n >= 0 && matrix.count == n * n,
                     "Cholesky: matrix has \(matrix.count) entries, order \(n) needs \(n * n)")
        order = n
        if n == 0 {
            lower = []
            jitter = 0
            return
        }
        var meanDiagonal = 0.0
        for i in 0..<n {
            for j in 0...i where !matrix[i * n + j].isFinite { throw .nonFinite(order: n) }
            meanDiagonal += matrix[i * n + i]
        }
        meanDiagonal /= Double(n)
        let ladder = allowJitter && meanDiagonal > 0 ? [0] + Self.jitterLadder : [0]
        var lastMinor = 0
        var lastJitter = 0.0
        for eps in ladder {
            var a = matrix
            let added = eps * meanDiagonal
            if added != 0 { for i in 0..<n { a[i * n + i] += added } }
            let info = a.withUnsafeMutableBufferPointer {
                LAPACKE_dpotrf(LAPACK_COL_MAJOR, Self.upper, Int32(n), $0.baseAddress, Int32(n))
            }
            precondition(info >= 0, "Cholesky: dpotrf rejected argument \(-info) (order \(n))")
            if info == 0 {
                Self.zeroStrictUpper(&a, n)
                lower = a
                jitter = added
                return
            }
            lastMinor = Int(info)
            lastJitter = added
        }
        throw .notPositiveDefinite(order: n, minor: lastMinor, jitter: lastJitter)
    }

    /// Wraps an existing lower-triangular factor (row-major, positive diagonal).
    public init(lower: [Double], order n: Int, jitter: Double = 0) {
        precondition(n >= 0 && lower.count == n * n,
                     "Cholesky: factor has \(lower.count) entries, order \(n) needs \(n * n)")
        self.order = n
        self.lower = lower
        self.jitter = jitter
    }

    /// log det A = 2 Σ log Lᵢᵢ (of `A + jitter·I`).
    public var logDeterminant: Double {
        var s = 0.0
        for i in 0..<order { s += Double.log(lower[i * order + i]) }
        return 2 * s
    }

    /// `A⁻¹·b` for one right-hand side.
    public func solve(_ b: [Double]) -> [Double] {
        solve(columns: b, count: 1)
    }

    /// `A⁻¹·B` for `count` right-hand sides stored one after another (each contiguous, length
    /// `order`; i.e. B column-major).
    public func solve(columns b: [Double], count k: Int) -> [Double] {
        precondition(k >= 0 && b.count == order * k,
                     "Cholesky.solve: \(b.count) values for \(k) right-hand sides of order \(order)")
        if order == 0 || k == 0 { return b }
        var x = b
        let info = lower.withUnsafeBufferPointer { l in
            x.withUnsafeMutableBufferPointer { xb in
                LAPACKE_dpotrs(LAPACK_COL_MAJOR, Self.upper, Int32(order), Int32(k),
                               l.baseAddress, Int32(order), xb.baseAddress, Int32(order))
            }
        }
        precondition(info == 0, "Cholesky.solve: dpotrs info \(info)")
        return x
    }

    /// `L⁻¹·B` (forward substitution) for `count` right-hand sides stored one after another.
    public func solveLower(columns b: [Double], count k: Int = 1) -> [Double] {
        triangularSolve(b, count: k, transposeFactor: false)
    }

    /// `L⁻ᵀ·B` (back substitution) for `count` right-hand sides stored one after another.
    public func solveUpper(columns b: [Double], count k: Int = 1) -> [Double] {
        triangularSolve(b, count: k, transposeFactor: true)
    }

    /// Forward substitution `L⁻¹·b` in place (BLAS `dtrsv`; allocates nothing when `b` is
    /// uniquely referenced, for hot loops).
    public func solveLower(inPlace b: inout [Double]) {
        triangularSolveInPlace(&b, transposeFactor: false)
    }

    /// Back substitution `L⁻ᵀ·b` in place (BLAS `dtrsv`; allocates nothing when `b` is uniquely
    /// referenced, for hot loops).
    public func solveUpper(inPlace b: inout [Double]) {
        triangularSolveInPlace(&b, transposeFactor: true)
    }

    /// The full symmetric inverse `A⁻¹`, row-major (LAPACK `dpotri`).
    public func inverse() -> [Double] {
        if order == 0 { return [] }
        let n = order
        var a = lower
        let info = a.withUnsafeMutableBufferPointer {
            LAPACKE_dpotri(LAPACK_COL_MAJOR, Self.upper, Int32(n), $0.baseAddress, Int32(n))
        }
        precondition(info == 0, "Cholesky.inverse: dpotri info \(info)")
        for i in 0..<n { for j in 0..<i { a[j * n + i] = a[i * n + j] } }
        return a
    }

    /// The factor of the matrix grown by one row and column: `[[A, c], [cᵀ, d]]`, in O(n²).
    /// The new row of L is `ℓ = L⁻¹c`, its diagonal `√(d + jitter − ℓᵀℓ)` (the existing jitter is
    /// applied to the new diagonal too). Throws when that Schur complement is not positive
    /// (relative to `d`); the caller then refactors the whole matrix, which may add jitter.
    public func appending(column c: [Double], diagonal d: Double) throws(CholeskyError) -> Cholesky {
        precondition(c.count == order, "Cholesky.appending: column has \(c.count) values, order \(order)")
        let n = order, m = order + 1
        guard d.isFinite, c.allSatisfy(\.isFinite) else { throw .nonFinite(order: m) }
        var row = c
        solveLower(inPlace: &row)
        var schur = d + jitter
        for v in row { schur -= v * v }
        guard schur > 1e-12 * max(abs(d), Double.leastNormalMagnitude) else {
            throw .notPositiveDefinite(order: m, minor: m, jitter: jitter)
        }
        var grown = [Double](repeating: 0, count: m * m)
        for i in 0..<n {
            for j in 0...i { grown[i * m + j] = lower[i * n + j] }
        }
        for j in 0..<n { grown[n * m + j] = row[j] }
        grown[n * m + n] = schur.squareRoot()
        return Cholesky(lower: grown, order: m, jitter: jitter)
    }

    /// The factor of the matrix grown by `p` rows and columns at once, `[[A, Cᵀ], [C, D]]`: `c`
    /// is C, p × order (row j: the new j-th row's entries against the existing rows), `d` is the
    /// p × p block D (row-major, lower triangle read). The new rows of L are `C·L⁻ᵀ` (one
    /// triangular solve with p right-hand sides) and the factor of the Schur complement
    /// `D + jitter·I − (C·L⁻ᵀ)(C·L⁻ᵀ)ᵀ`: O(n²p + p³) and one allocation, where p calls of
    /// `appending(column:diagonal:)` copy the whole factor p times. Throws when the Schur
    /// complement is not positive definite; the caller then refactors the whole matrix.
    public func appending(rows c: [Double], block d: [Double], count p: Int) throws(CholeskyError) -> Cholesky {
        precondition(p >= 0 && c.count == p * order && d.count == p * p,
                     "Cholesky.appending: \(c.count) and \(d.count) values for \(p) rows of order \(order)")
        let n = order, m = order + p
        if p == 0 { return self }
        guard c.allSatisfy(\.isFinite), d.allSatisfy(\.isFinite) else { throw .nonFinite(order: m) }
        var rows = c
        if n > 0 {
            lower.withUnsafeBufferPointer { l in
                rows.withUnsafeMutableBufferPointer { r in
                    cblas_dtrsm(CblasRowMajor, CblasRight, CblasLower, CblasTrans, CblasNonUnit,
                                Int32(p), Int32(n), 1, l.baseAddress, Int32(n), r.baseAddress, Int32(n))
                }
            }
        }
        var schur = d
        for i in 0..<p { schur[i * p + i] += jitter }
        if n > 0 {
            rows.withUnsafeBufferPointer { r in
                schur.withUnsafeMutableBufferPointer { s in
                    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(p), Int32(p), Int32(n),
                                -1, r.baseAddress, Int32(n), r.baseAddress, Int32(n), 1, s.baseAddress, Int32(p))
                }
            }
        }
        let tail: Cholesky
        do { tail = try Cholesky(schur, order: p, allowJitter: false) } catch {
            throw .notPositiveDefinite(order: m, minor: n + 1, jitter: jitter)
        }
        // As `appending(column:diagonal:)`: a Schur complement tiny next to D is refused.
        for i in 0..<p {
            let diagonal = tail.lower[i * p + i]
            guard diagonal * diagonal > 1e-12 * max(abs(d[i * p + i]), Double.leastNormalMagnitude) else {
                throw .notPositiveDefinite(order: m, minor: n + i + 1, jitter: jitter)
            }
        }
        var grown = [Double](repeating: 0, count: m * m)
        for i in 0..<n {
            for j in 0...i { grown[i * m + j] = lower[i * n + j] }
        }
        for i in 0..<p {
            for j in 0..<n { grown[(n + i) * m + j] = rows[i * n + j] }
            for j in 0...i { grown[(n + i) * m + n + j] = tail.lower[i * p + j] }
        }
        return Cholesky(lower: grown, order: m, jitter: jitter)
    }

    // MARK: - Private

    private static let upper = CChar(UInt8(ascii: "U"))

    private func triangularSolve(_ b: [Double], count k: Int, transposeFactor: Bool) -> [Double] {
        precondition(k >= 0 && b.count == order * k,
                     "Cholesky: \(b.count) values for \(k) right-hand sides of order \(order)")
        if order == 0 || k == 0 { return b }
        // Column-major 'U' holds U = Lᵀ: L·x = b is Uᵀ·x = b ('T'); Lᵀ·x = b is U·x = b ('N').
        let trans = CChar(UInt8(ascii: transposeFactor ? "N" : "T"))
        var x = b
        let info = lower.withUnsafeBufferPointer { l in
            x.withUnsafeMutableBufferPointer { xb in
                // The `_work` entry point: the same LAPACK solve without LAPACKE's O(n²) NaN scan
                // of the factor on every call (12 % of a Bayesian-optimization proposal at 1,000
                // observations; the factor is checked finite when it is built).
                LAPACKE_dtrtrs_work(LAPACK_COL_MAJOR, Self.upper, trans, CChar(UInt8(ascii: "N")),
                               Int32(order), Int32(k), l.baseAddress, Int32(order),
                               xb.baseAddress, Int32(order))
            }
        }
        precondition(info == 0, "Cholesky: dtrtrs info \(info)")
        return x
    }

    private func triangularSolveInPlace(_ b: inout [Double], transposeFactor: Bool) {
        precondition(b.count == order, "Cholesky: \(b.count) values for order \(order)")
        if order == 0 { return }
        lower.withUnsafeBufferPointer { l in
            b.withUnsafeMutableBufferPointer { xb in
                cblas_dtrsv(CblasRowMajor, CblasLower, transposeFactor ? CblasTrans : CblasNoTrans, CblasNonUnit,
                            Int32(order), l.baseAddress, Int32(order), xb.baseAddress, 1)
            }
        }
    }

    private static func zeroStrictUpper(_ a: inout [Double], _ n: Int) {
        for i in 0..<n { for j in (i + 1)..<n { a[i * n + j] = 0 } }
    }
}
