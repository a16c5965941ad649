/// Small allocation-free vector kernels on caller-owned memory. Kept here so every module
/// uses the same loops (and the same rounding order).
public enum Vec {
    /// `y ← y + a·x`
    @inlinable
    public static func axpy<T: BLASScalar>(_ n: Int, _ a: T, _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>) {
        for i in 0..<n { y[i] += a * x[i] }
    }

    /// `Σ xᵢ·yᵢ`, accumulated in the element type, left to right.
    @inlinable
    public static func dot<T: BLASScalar>(_ n: Int, _ x: UnsafePointer<T>, _ y: UnsafePointer<T>) -> T {
        var s: T = 0
        for i in 0..<n { s += x[i] * y[i] }
        return s
    }

    /// `true` when every element is finite. (`x·0` is 0 for finite x and NaN for ±∞ or NaN, so
    /// one vectorizable sum answers for the whole array.)
    @inlinable
    public static func allFinite<T: BLASScalar>(_ n: Int, _ x: UnsafePointer<T>) -> Bool {
        if T.self == Float.self {
            let f = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
            // Four accumulators: one add chain would cap this at 8 floats per add latency.
            var acc0 = SIMD8<Float>.zero, acc1 = acc0, acc2 = acc0, acc3 = acc0
            var i = 0
            while i + 32 <= n {
                acc0 += FloatKernels.load8(f + i) * 0
                acc1 += FloatKernels.load8(f + i + 8) * 0
                acc2 += FloatKernels.load8(f + i + 16) * 0
                acc3 += FloatKernels.load8(f + i + 24) * 0
                i += 32
            }
            while i + 8 <= n {
                acc0 += FloatKernels.load8(f + i) * 0
                i += 8
            }
            var tail: Float = 0
            while i < n { tail += f[i] * 0; i += 1 }
            return ((acc0 + acc1) + (acc2 + acc3)).sum() == 0 && tail == 0
        }
        var ok = true
        for i in 0..<n where !x[i].isFinite { ok = false }
        return ok
    }
}

extension Array where Element: BLASScalar {
    /// `true` when every element is finite.
    public var allFinite: Bool {
        withUnsafeBufferPointer { b in b.baseAddress.map { Vec.allFinite(b.count, $0) } ?? true }
    }
}

extension Vec {
    /// `y[j] += Σ_i x[i]·A[i, j]` for row-major `A` (`m × n`): `y += Aᵀx`, as a sum of scaled
    /// rows, in column blocks so the touched part of `y` stays in L1. Order of additions: row
    /// by row (deterministic).
    @inlinable
    public static func addRowCombination<T: BLASScalar>(
        rows m: Int, cols n: Int, _ a: UnsafePointer<T>, _ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>
    ) {
        if T.self == Float.self && n <= 16 && m > 1 {
            FloatKernels.addNarrowRowCombination(
                rows: m, cols: n, UnsafeRawPointer(a).assumingMemoryBound(to: Float.self),
                UnsafeRawPointer(x).assumingMemoryBound(to: Float.self),
                into: UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self))
            return
        }
        let block = 2048
        var c = 0
        while c < n {
            let width = min(block, n - c)
            for i in 0..<m {
                axpy(width, x[i], a + (i * n + c), y + c)
            }
            c += width
        }
    }

    /// `y[i] = A[i, :]·x` for row-major `A` (`m × n`): `y = A x`.
    @inlinable
    public static func rowDots<T: BLASScalar>(
        rows m: Int, cols n: Int, _ a: UnsafePointer<T>, _ x: UnsafePointer<T>, into y: UnsafeMutablePointer<T>
    ) {
        if T.self == Float.self {
            let af = UnsafeRawPointer(a).assumingMemoryBound(to: Float.self)
            let xf = UnsafeRawPointer(x).assumingMemoryBound(to: Float.self)
            let yf = UnsafeMutableRawPointer(y).assumingMemoryBound(to: Float.self)
            if n <= 16 {
                FloatKernels.narrowRowDots(rows: m, cols: n, af, xf, into: yf)
                return
            }
            for i in 0..<m { yf[i] = FloatKernels.dot(n, af + i * n, xf) }
            return
        }
        for i in 0..<m { y[i] = dot(n, a + i * n, x) }
    }
}

extension FloatKernels {
    /// `Σ xᵢ·yᵢ` with four 8-lane accumulators (a fixed summation order: lanes, then a
    /// pairwise combine, then the scalar tail).
    @inlinable
    public static func dot(_ n: Int, _ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
        var a0 = SIMD8<Float>.zero, a1 = a0, a2 = a0, a3 = a0
        var i = 0
        while i + 32 <= n {
            a0.addProduct(load8(x + i), load8(y + i))
            a1.addProduct(load8(x + i + 8), load8(y + i + 8))
            a2.addProduct(load8(x + i + 16), load8(y + i + 16))
            a3.addProduct(load8(x + i + 24), load8(y + i + 24))
            i += 32
        }
        while i + 8 <= n {
            a0.addProduct(load8(x + i), load8(y + i))
            i += 8
        }
        var s = ((a0 + a1) + (a2 + a3)).sum()
        while i < n { s += x[i] * y[i]; i += 1 }
        return s
    }

    /// `y += Aᵀx` for a tall, narrow row-major `A` (`m × n`, n ≤ 16): `y` stays in one
    /// 16-lane register while the rows stream by (each row read as 16 lanes; the lanes past `n`
    /// belong to the next row and are discarded). The last row is done lane by lane so nothing
    /// is read past the end of `A`. Same per-element order as the generic loop: row by row.
    public static func addNarrowRowCombination(
        rows m: Int, cols n: Int, _ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>
    ) {
        var acc = SIMD16<Float>.zero
        for j in 0..<n { acc[j] = y[j] }
        for i in 0..<(m - 1) {
            let row = UnsafeRawPointer(a + i &* n).loadUnaligned(as: SIMD16<Float>.self)
            acc = acc + SIMD16<Float>(repeating: x[i]) * row
        }
        let last = a + (m - 1) * n
        let xl = x[m - 1]
        for j in 0..<n { y[j] = acc[j] + xl * last[j] }
    }

    /// `y = A x` for a tall, narrow row-major `A` (`m × n`, n ≤ 16, e.g. the validation
    /// task's `∂λ = C·∂z` with `C` of 89,610 × 10): each `y[i]` is summed left to right in
    /// plain multiplies and adds; the rows are independent, so the processor overlaps them
    /// (an 8-lane dot would spend most of its time on the horizontal sum and the tail).
    public static func narrowRowDots(
        rows m: Int, cols n: Int, _ a: UnsafePointer<Float>, _ x: UnsafePointer<Float>, into y: UnsafeMutablePointer<Float>
    ) {
        precondition(n <= 16, "narrowRowDots: \(n) columns")
        if n == 0 { y.update(repeating: 0, count: m); return }
        if n == 10 {
            // The factorized:10 hypernetwork's width, unrolled with x in registers.
            let x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3], x4 = x[4]
            let x5 = x[5], x6 = x[6], x7 = x[7], x8 = x[8], x9 = x[9]
            for i in 0..<m {
                let row = a + i &* 10
                var s = row[0] * x0
                s = s + row[1] * x1; s = s + row[2] * x2; s = s + row[3] * x3; s = s + row[4] * x4
                s = s + row[5] * x5; s = s + row[6] * x6; s = s + row[7] * x7; s = s + row[8] * x8
                s = s + row[9] * x9
                y[i] = s
            }
            return
        }
        var xs = SIMD16<Float>.zero
        for j in 0..<n { xs[j] = x[j] }
        for i in 0..<m {
            let row = a + i &* n
            var s = row[0] * xs[0]
            for j in 1..<n { s = s + row[j] * xs[j] }
            y[i] = s
        }
    }

    @inlinable @inline(__always)
    static func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }
}
