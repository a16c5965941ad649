import Testing
import Foundation
@testable import Linalg

@Suite struct VectorKernelsTests {
    @Test("vector log and sinCosTurns give exactly the scalar results in every lane")
    func vectorMathMatchesScalar() {
        var rng = Philox(seed: 11, step: 0, task: 0, stream: 0)
        var inputs: [Double] = [1e-300, 0x1p-53, 0.5, 1, 1.414_213_562_373_095, 1.414_213_562_373_096, 0.25, 0.75, 0.999_999_999]
        for _ in 0..<40_000 { inputs.append(max(rng.nextUnit(), 1e-300)) }
        while inputs.count % 4 != 0 { inputs.append(0.125) }
        for i in stride(from: 0, to: inputs.count, by: 4) {
            let v = SIMD4<Double>(inputs[i], inputs[i + 1], inputs[i + 2], inputs[i + 3])
            let l = DeterministicMath.log(v)
            let (s, c) = DeterministicMath.sinCosTurns(v.replacing(with: 0, where: v .>= 1))
            for k in 0..<4 {
                let t = inputs[i + k] >= 1 ? 0 : inputs[i + k]
                let (ss, cc) = DeterministicMath.sinCosTurns(t)
                #expect(l[k].bitPattern == DeterministicMath.log(inputs[i + k]).bitPattern)
                #expect(s[k].bitPattern == ss.bitPattern && c[k].bitPattern == cc.bitPattern, "t = \(t)")
            }
        }
        // Quadrant boundaries.
        let edges = SIMD4<Double>(0, 0.25, 0.5, 0.75)
        let (s, c) = DeterministicMath.sinCosTurns(edges)
        for k in 0..<4 {
            let (ss, cc) = DeterministicMath.sinCosTurns(edges[k])
            #expect(s[k].bitPattern == ss.bitPattern && c[k].bitPattern == cc.bitPattern)
        }
    }

    @Test("nextNormals8 returns exactly the next eight nextNormal() values, from any position",
          arguments: [0, 1, 2, 3, 5, 8])
    func normals8MatchScalar(skip: Int) {
        for seed: UInt64 in [0, 1, 42, 0xDEAD_BEEF_0123_4567] {
            var a = Philox(seed: seed, step: 7, task: 3, stream: 2)
            var b = a
            for _ in 0..<skip { _ = a.nextNormal(); _ = b.nextNormal() }
            for _ in 0..<300 {
                let (x, y) = a.nextNormals8()
                let got = [x[0], y[0], x[1], y[1], x[2], y[2], x[3], y[3]]
                let want = (0..<8).map { _ in b.nextNormal() }
                #expect(got.map(\.bitPattern) == want.map(\.bitPattern))
            }
            // Both generators are at the same position afterwards.
            #expect(a.nextNormal().bitPattern == b.nextNormal().bitPattern)
            #expect(a.next() == b.next())
        }
    }

    @Test("nextNormals16 returns exactly the next sixteen nextNormal() values, from any position",
          arguments: [0, 1, 2, 3, 5, 8, 13])
    func normals16MatchScalar(skip: Int) {
        for seed: UInt64 in [0, 1, 42, 0xDEAD_BEEF_0123_4567] {
            // A counter near 2³² checks the lanes' wrap-around (c0 + lane).
            for start in [0, 0xFFFF_FFFA] {
                var a = Philox(seed: seed, step: 7, task: 3, stream: 2)
                for _ in 0..<start / 2 where start < 100 { _ = a.nextNormal() }
                if start > 100 { a.skipBlocks(UInt32(start)) }
                var b = a
                for _ in 0..<skip { _ = a.nextNormal(); _ = b.nextNormal() }
                for _ in 0..<200 {
                    let (x, y, z, w) = a.nextNormals16()
                    let got = [x[0], y[0], x[1], y[1], x[2], y[2], x[3], y[3], z[0], w[0], z[1], w[1], z[2], w[2], z[3], w[3]]
                    let want = (0..<16).map { _ in b.nextNormal() }
                    #expect(got.map(\.bitPattern) == want.map(\.bitPattern), "seed \(seed) start \(start) skip \(skip)")
                }
                #expect(a.nextNormal().bitPattern == b.nextNormal().bitPattern)
                #expect(a.next() == b.next())
            }
        }
    }

    @Test("narrowRowDots equals a left-to-right loop of multiplies and adds", arguments: [1, 2, 7, 10, 16])
    func narrowRowDots(cols: Int) {
        var rng = Philox(seed: 12, step: UInt64(cols), task: 0, stream: 0)
        let m = 1_003
        let a = (0..<(m * cols)).map { _ in Float(rng.nextNormal()) }
        let x = (0..<cols).map { _ in Float(rng.nextNormal()) }
        var y = [Float](repeating: .nan, count: m + 1)
        y[m] = 7
        FloatKernels.narrowRowDots(rows: m, cols: cols, a, x, into: &y)
        for i in 0..<m {
            var s = a[i * cols] * x[0]
            for j in 1..<cols { s = s + a[i * cols + j] * x[j] }
            #expect(y[i] == s)
        }
        #expect(y[m] == 7)
        // Vec.rowDots routes narrow matrices here.
        var z = [Float](repeating: 0, count: m)
        Vec.rowDots(rows: m, cols: cols, a, x, into: &z)
        #expect(Array(y[0..<m]) == z)
    }

    @Test("allFinite finds a NaN or infinity at any position", arguments: [1, 7, 8, 31, 32, 33, 100, 1_000])
    func allFinite(n: Int) {
        var v = [Float](repeating: 1.5, count: n)
        #expect(v.allFinite)
        for i in Set([0, n / 2, n - 1]) {
            for bad in [Float.nan, .infinity, -.infinity] {
                v[i] = bad
                #expect(!v.allFinite, "\(bad) at \(i) of \(n)")
                v[i] = -3
            }
        }
        #expect(v.allFinite)
    }
}
