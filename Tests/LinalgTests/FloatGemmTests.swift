import Testing
@testable import Linalg

/// `FloatGemm` against a plain triple loop that applies the same fused multiply-adds in the
/// same order (start value, then k = 0, 1, …): the results must agree bit for bit.
@Suite struct FloatGemmTests {
    private static func values(_ n: Int, seed: UInt64) -> [Float] {
        var rng = Philox(seed: seed, step: 2, task: 0, stream: 0)
        return (0..<n).map { _ in Float(rng.nextNormal()) }
    }

    @Test("multiply equals the reference loop, plain and transposed, overwriting and accumulating",
          arguments: [(1, 1, 1), (6, 16, 3), (7, 17, 5), (13, 10, 100), (100, 100, 100), (1000, 10, 100), (100, 10, 1000), (1000, 100, 10), (5, 33, 0)])
    func matchesReference(m: Int, n: Int, k: Int) {
        for transA in [false, true] {
            for accumulate in [false, true] {
                let lda = (transA ? m : k) + 3, ldb = n + 2, ldc = n + 1
                let a = Self.values((transA ? k : m) * lda, seed: 1)
                let b = Self.values(max(k, 1) * ldb, seed: 2)
                let c0 = Self.values(m * ldc, seed: 3)
                var want = c0
                for i in 0..<m {
                    for j in 0..<n {
                        var s: Float = accumulate ? c0[i * ldc + j] : 0
                        for kk in 0..<k {
                            let aik = transA ? a[kk * lda + i] : a[i * lda + kk]
                            s = s.addingProduct(aik, b[kk * ldb + j])
                        }
                        want[i * ldc + j] = s
                    }
                }
                var got = c0
                var work = [Float](repeating: .nan, count: FloatGemm.workspaceCount(k: k))
                FloatGemm.multiply(transA: transA, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                   c: &got, ldc: ldc, accumulate: accumulate, workspace: &work)
                // Includes the padding columns of C (j ≥ n), which must be untouched.
                #expect(got == want, "m=\(m) n=\(n) k=\(k) transA=\(transA) accumulate=\(accumulate)")
            }
        }
    }

    @Test("the AVX-512 tiles give the bits of the Swift AVX2 tiles (odd sizes, both layouts)",
          arguments: [(1, 1, 1), (11, 15, 7), (12, 16, 2), (13, 17, 9), (25, 31, 33), (23, 32, 1000), (37, 33, 31),
                      (100, 100, 1000), (1001, 100, 100), (1000, 10, 100), (49, 65, 0), (3, 97, 5)])
    func avx512MatchesPortable(m: Int, n: Int, k: Int) throws {
        guard FloatGemm.usesAVX512 else { return }   // nothing to compare on this CPU
        for transA in [false, true] {
            for accumulate in [false, true] {
                let lda = (transA ? m : k) + 5, ldb = n + 3, ldc = n + 2
                let a = Self.values((transA ? k : m) * lda, seed: 11)
                let b = Self.values(max(k, 1) * ldb, seed: 12)
                let c0 = Self.values(m * ldc, seed: 13)
                var want = c0, got = c0
                var work = [Float](repeating: .nan, count: FloatGemm.workspaceCount(k: k))
                FloatGemm.multiplyPortable(transA: transA, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                           c: &want, ldc: ldc, accumulate: accumulate, workspace: &work)
                FloatGemm.multiplyAVX512(transA: transA, m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb,
                                         c: &got, ldc: ldc, accumulate: accumulate)
                // Bit patterns (not ==, which would let −0 equal +0); includes C's padding columns.
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern),
                        "m=\(m) n=\(n) k=\(k) transA=\(transA) accumulate=\(accumulate)")
            }
        }
    }

    @Test("transpose")
    func transpose() {
        let a = Self.values(7 * 5, seed: 4)
        var t = [Float](repeating: 0, count: 35)
        FloatGemm.transpose(rows: 7, cols: 5, a, into: &t)
        for i in 0..<7 { for j in 0..<5 { #expect(t[j * 7 + i] == a[i * 5 + j]) } }
    }
}
