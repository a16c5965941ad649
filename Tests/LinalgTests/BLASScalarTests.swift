import Testing
import Linalg

/// Row-major element `(i, j)` of `op(X)` where `X` is stored with leading dimension `ld`.
@inline(__always)
private func at<T>(_ x: [T], _ trans: Bool, _ i: Int, _ j: Int, _ ld: Int) -> T {
    trans ? x[j * ld + i] : x[i * ld + j]
}

/// Deterministic test values in [−1, 1).
private func values<T: BLASScalar>(_ n: Int, seed: UInt64) -> [T] {
    var rng = Philox(seed: seed, step: 0, task: 0, stream: 99)
    return (0..<n).map { _ in T(2 * rng.nextUnit() - 1) }
}

/// `|got − want| ≤ tol·(Σ|terms|)` elementwise, where `scale` holds Σ|terms| per element.
private func close<T: BLASScalar>(_ got: [T], _ want: [Double], scale: [Double], eps: Double) -> (ok: Bool, worst: Double) {
    var worst = 0.0
    for i in got.indices {
        let err = abs(Double(got[i]) - want[i]) / max(scale[i], 1e-30)
        worst = max(worst, err)
    }
    return (worst <= eps, worst)
}

struct GemmCase: Sendable, CustomTestStringConvertible {
    let transA: Bool, transB: Bool, m: Int, n: Int, k: Int, pad: Int
    var testDescription: String { "\(transA ? "Aᵀ" : "A")·\(transB ? "Bᵀ" : "B") m=\(m) n=\(n) k=\(k) pad=\(pad)" }
}

private let gemmCases: [GemmCase] = {
    var cases: [GemmCase] = []
    for (m, n, k) in [(1, 1, 1), (3, 5, 7), (17, 4, 33), (10, 784, 3), (64, 10, 100), (5, 9, 1)] {
        for ta in [false, true] { for tb in [false, true] { cases.append(GemmCase(transA: ta, transB: tb, m: m, n: n, k: k, pad: (m + n) % 3)) } }
    }
    return cases
}()

@Suite struct BLASScalarTests {
    func checkGemm<T: BLASScalar>(_ c: GemmCase, _: T.Type, eps: Double) {
        // Stored shapes: A is m×k (or k×m when transposed), B is k×n (or n×k); each row padded.
        let (aRows, aCols) = c.transA ? (c.k, c.m) : (c.m, c.k)
        let (bRows, bCols) = c.transB ? (c.n, c.k) : (c.k, c.n)
        let lda = aCols + c.pad, ldb = bCols + c.pad, ldc = c.n + c.pad
        let a: [T] = values(aRows * lda, seed: 1)
        let b: [T] = values(bRows * ldb, seed: 2)
        let c0: [T] = values(c.m * ldc, seed: 3)
        let alpha: T = 0.75, beta: T = -0.5
        var out = c0
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                out.withUnsafeMutableBufferPointer { pc in
                    T.gemm(transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k,
                           alpha: alpha, a: pa.baseAddress!, lda: lda, b: pb.baseAddress!, ldb: ldb,
                           beta: beta, c: pc.baseAddress!, ldc: ldc)
                }
            }
        }
        var want = [Double](repeating: 0, count: out.count), scale = want
        for i in 0..<c.m {
            for j in 0..<ldc {
                let idx = i * ldc + j
                if j >= c.n { want[idx] = Double(c0[idx]); scale[idx] = 1; continue }  // padding untouched
                var s = 0.0, sa = 0.0
                for p in 0..<c.k {
                    let t = Double(at(a, c.transA, i, p, lda)) * Double(at(b, c.transB, p, j, ldb))
                    s += t; sa += abs(t)
                }
                want[idx] = Double(alpha) * s + Double(beta) * Double(c0[idx])
                scale[idx] = abs(Double(alpha)) * sa + abs(Double(beta) * Double(c0[idx])) + 1e-30
            }
        }
        let r = close(out, want, scale: scale, eps: eps)
        #expect(r.ok, "\(c.testDescription): worst relative error \(r.worst)")
        // Padding columns of C are not written.
        for i in 0..<c.m { for j in c.n..<ldc { #expect(out[i * ldc + j] == c0[i * ldc + j]) } }
    }

    @Test("Float gemm matches a naive triple loop for every transpose and non-square shape", arguments: gemmCases)
    func gemmFloat(c: GemmCase) { checkGemm(c, Float.self, eps: 1e-5) }

    @Test("Double gemm matches a naive triple loop for every transpose and non-square shape", arguments: gemmCases)
    func gemmDouble(c: GemmCase) { checkGemm(c, Double.self, eps: 1e-13) }

    @Test("gemm with m = 0 or n = 0 is a no-op; k = 0 scales C by β")
    func gemmDegenerate() {
        let a: [Float] = [1, 2, 3, 4], b: [Float] = [5, 6, 7, 8]
        var c: [Float] = [1, 2, 3, 4]
        Float.gemm(transA: false, transB: false, m: 0, n: 2, k: 2, alpha: 1, a: a, lda: 2, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
        Float.gemm(transA: false, transB: false, m: 2, n: 0, k: 2, alpha: 1, a: a, lda: 2, b: b, ldb: 2, beta: 0, c: &c, ldc: 2)
        #expect(c == [1, 2, 3, 4])
        Float.gemm(transA: false, transB: false, m: 2, n: 2, k: 0, alpha: 1, a: a, lda: 1, b: b, ldb: 2, beta: 2, c: &c, ldc: 2)
        #expect(c == [2, 4, 6, 8])
    }

    func checkGemv<T: BLASScalar>(_: T.Type, trans: Bool, m: Int, n: Int, pad: Int, eps: Double) {
        let lda = n + pad
        let a: [T] = values(m * lda, seed: 4)
        let xCount = trans ? m : n, yCount = trans ? n : m
        let x: [T] = values(xCount, seed: 5)
        let y0: [T] = values(yCount, seed: 6)
        let alpha: T = -1.25, beta: T = 0.5
        var y = y0
        T.gemv(trans: trans, m: m, n: n, alpha: alpha, a: a, lda: lda, x: x, beta: beta, y: &y)
        var want = [Double](repeating: 0, count: yCount), scale = want
        for i in 0..<yCount {
            var s = 0.0, sa = 0.0
            for p in 0..<xCount {
                let t = Double(trans ? a[p * lda + i] : a[i * lda + p]) * Double(x[p])
                s += t; sa += abs(t)
            }
            want[i] = Double(alpha) * s + Double(beta) * Double(y0[i])
            scale[i] = abs(Double(alpha)) * sa + abs(Double(beta) * Double(y0[i]))
        }
        let r = close(y, want, scale: scale, eps: eps)
        #expect(r.ok, "gemv trans=\(trans) \(m)×\(n): worst relative error \(r.worst)")
    }

    @Test("gemv matches a naive loop in Float and Double, with and without transpose, on non-square A",
          arguments: [(1, 1), (3, 8), (8, 3), (10, 785), (129, 17)])
    func gemv(m: Int, n: Int) {
        for trans in [false, true] {
            checkGemv(Float.self, trans: trans, m: m, n: n, pad: 0, eps: 1e-5)
            checkGemv(Float.self, trans: trans, m: m, n: n, pad: 3, eps: 1e-5)
            checkGemv(Double.self, trans: trans, m: m, n: n, pad: 2, eps: 1e-13)
        }
    }

    func checkGer<T: BLASScalar>(_: T.Type, m: Int, n: Int, pad: Int, eps: Double) {
        let lda = n + pad
        let a0: [T] = values(m * lda, seed: 7)
        let x: [T] = values(m, seed: 8), y: [T] = values(n, seed: 9)
        let alpha: T = 0.375
        var a = a0
        T.ger(m: m, n: n, alpha: alpha, x: x, y: y, a: &a, lda: lda)
        for i in 0..<m {
            for j in 0..<lda {
                let idx = i * lda + j
                if j >= n { #expect(a[idx] == a0[idx]); continue }
                let t = Double(alpha) * Double(x[i]) * Double(y[j])
                let want = Double(a0[idx]) + t
                let err = abs(Double(a[idx]) - want) / (abs(t) + abs(Double(a0[idx])))
                #expect(err <= eps, "ger \(m)×\(n) at (\(i), \(j)): relative error \(err)")
            }
        }
    }

    @Test("ger adds α·x·yᵀ in Float and Double on non-square, padded A", arguments: [(1, 1), (3, 8), (8, 3), (10, 785)])
    func ger(m: Int, n: Int) {
        checkGer(Float.self, m: m, n: n, pad: 0, eps: 1e-6)
        checkGer(Float.self, m: m, n: n, pad: 5, eps: 1e-6)
        checkGer(Double.self, m: m, n: n, pad: 1, eps: 1e-15)
    }

    @Test("gemm gives bit-identical results when repeated on equally aligned buffers")
    func gemmRepeatable() {
        let m = 100, n = 10, k = 784
        let a = AlignedBuffer<Float>(values(m * k, seed: 10)), b = AlignedBuffer<Float>(values(k * n, seed: 11))
        let c1 = AlignedBuffer<Float>(count: m * n), c2 = AlignedBuffer<Float>(count: m * n)
        for c in [c1, c2] {
            Float.gemm(transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a.constPointer, lda: k,
                       b: b.constPointer, ldb: n, beta: 0, c: c.pointer, ldc: n)
        }
        #expect(c1.array == c2.array)
    }

    @Test("exp and log are the natural exponential and logarithm in both precisions")
    func expLog() {
        for x in [-3.5, -1, 0, 0.5, 2, 10] {
            #expect(abs(Double(Float.exp(Float(x))) - Foundation_exp(x)) <= 1e-6 * Foundation_exp(x))
            #expect(abs(Double.exp(x) - Foundation_exp(x)) <= 1e-15 * Foundation_exp(x))
            let y = Foundation_exp(x)
            #expect(abs(Double.log(y) - x) <= 1e-14 * max(1, abs(x)))
            #expect(abs(Double(Float.log(Float(y))) - x) <= 1e-6 * max(1, abs(x)))
        }
        // Float exp overflows past ≈ 88.72: callers must check for it.
        #expect(Float.exp(89) == .infinity)
    }

    @Test("BLASRuntime reports the OpenBLAS configuration")
    func runtime() {
        #expect(BLASRuntime.configuration.contains("OpenBLAS"))
    }
}

import Foundation
private func Foundation_exp(_ x: Double) -> Double { Foundation.exp(x) }
