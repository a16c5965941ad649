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

    @Test("transpose")
    func transpose() {
        let a = Self.values(7 * 5, seed: 4)
        var t = [Float](repeating: 0, count: 35)
        FloatGemm.transpose(rows: 7, cols: 5, a, into: &t)
        for i in 0..<7 { for j in 0..<5 { #expect(t[j * 7 + i] == a[i * 5 + j]) } }
    }
}
