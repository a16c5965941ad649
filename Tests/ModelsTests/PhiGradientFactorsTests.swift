import Testing
import Linalg
@testable import Models

/// The φ step from recorded factors must give exactly the bits of the accumulating path
/// (zeroed sum, `backward(…, accumulate: true)` per task, Adam on the whole sum).
@Suite struct PhiGradientFactorsTests {
    static let kinds: [HypernetKind] = [.linear, .factorized(hidden: 10), .mlp(hidden: 10), .factorized(hidden: 7),
                                        .mlp(hidden: 16), .factorized(hidden: 17), .factorized(hidden: 1), .mlp(hidden: 3)]

    /// Random vectors with exact zeros, negative zeros and negative values mixed in (a negative
    /// times a zero gives −0, which `0 + p` turns into +0: the sign of zero must match too).
    static func vector(_ n: Int, _ rng: inout Philox) -> [Float] {
        (0..<n).map { _ in
            switch rng.nextInt(below: 8) {
            case 0: 0
            case 1: -0.0
            default: Float(rng.nextNormal())
            }
        }
    }

    @Test("forEachGradientSumChunk gives the bits of accumulating each task's backward into a zeroed sum",
          arguments: kinds, [1, 2, 3])
    func chunksEqualAccumulation(kind: HypernetKind, tasks: Int) {
        var rng = Philox(seed: 21, step: UInt64(tasks), task: 0, stream: 0)
        for (hh, d) in [(5, 4_100), (2_100, 33), (1, 9), (300, 2_048)] {
            let net = Hypernet<Float>(kind: kind, inputCount: hh, outputCount: d)
            let phi = Self.vector(net.parameterCount, &rng)
            let factors = PhiGradientFactors(for: net, capacity: tasks)
            var want = [Float](repeating: 0, count: net.parameterCount)
            var w = [Float](repeating: 0, count: d)
            for t in 0..<tasks {
                let lambda = Self.vector(hh, &rng), gw = Self.vector(d, &rng)
                net.forward(phi: phi, lambda: lambda, w: &w)
                net.backward(phi: phi, lambda: lambda, gradW: gw, gradPhi: &want, gradLambda: nil, accumulate: true)
                net.forward(phi: phi, lambda: lambda, w: &w)
                net.backward(phi: phi, lambda: lambda, gradW: gw, recordingInto: factors, slot: t)
            }
            var got = [Float](repeating: .nan, count: net.parameterCount)
            var next = 0
            net.forEachGradientSumChunk(factors, tasks: tasks) { offset, count, values in
                #expect(offset == next)
                for i in 0..<count { got[offset + i] = values[i] }
                next = offset + count
            }
            #expect(next == net.parameterCount)
            let bad = zip(got, want).filter { $0.bitPattern != $1.bitPattern }.count
            #expect(bad == 0, "\(kind) H=\(hh) D=\(d) tasks=\(tasks): \(bad) of \(want.count) differ")
            var written = [Float](repeating: .nan, count: net.parameterCount)
            net.writeGradientSum(factors, tasks: tasks, into: &written)
            #expect(written.map(\.bitPattern) == want.map(\.bitPattern))
            #expect(factors.sumIsCertainlyFinite(tasks: tasks))
        }
    }

    @Test("sumIsCertainlyFinite is false for non-finite or overflowing factors")
    func finiteBound() {
        let net = Hypernet<Float>(kind: .factorized(hidden: 10), inputCount: 20, outputCount: 30)
        let phi = [Float](repeating: 0.5, count: net.parameterCount)
        var w = [Float](repeating: 0, count: 30)
        for bad: Float in [.nan, .infinity, 1e30] {
            let factors = PhiGradientFactors(for: net, capacity: 2)
            var lambda = [Float](repeating: 1, count: 20)
            let gw = [Float](repeating: 1e10, count: 30)
            net.forward(phi: phi, lambda: lambda, w: &w)
            net.backward(phi: phi, lambda: lambda, gradW: gw, recordingInto: factors, slot: 0)
            lambda[7] = bad
            net.forward(phi: phi, lambda: lambda, w: &w)
            net.backward(phi: phi, lambda: lambda, gradW: gw, recordingInto: factors, slot: 1)
            #expect(factors.sumIsCertainlyFinite(tasks: 1))
            #expect(!factors.sumIsCertainlyFinite(tasks: 2), "\(bad)")
        }
    }

    @Test("an optimizer update applied in pieces equals the whole update, and reports non-finite parameters",
          arguments: [OptimizerKind.adam, .sgd])
    func updateInPieces(kind: OptimizerKind) {
        var rng = Philox(seed: 22, step: 0, task: 0, stream: 0)
        let n = 1_003
        let whole = Optimizer<Float>(kind: kind, count: n, learningRate: 0.01)
        let pieces = Optimizer<Float>(kind: kind, count: n, learningRate: 0.01)
        var p1 = Self.vector(n, &rng), p2 = p1
        for _ in 0..<3 {
            let g = Self.vector(n, &rng)
            #expect(whole.step(params: &p1, grad: g, count: n, gradScale: 0.5))
            let u = pieces.beginUpdate(gradScale: 0.5)
            var offset = 0
            for size in [5, 16, 200, 1, 781] {
                let ok = g.withUnsafeBufferPointer { pieces.apply(u, params: &p2, grad: $0.baseAddress! + offset, offset: offset, count: size) }
                #expect(ok)
                offset += size
            }
            #expect(offset == n)
            #expect(p1.map(\.bitPattern) == p2.map(\.bitPattern))
            #expect(whole.m.array.map(\.bitPattern) == pieces.m.array.map(\.bitPattern))
            #expect(whole.v.array.map(\.bitPattern) == pieces.v.array.map(\.bitPattern))
        }
        for at in [0, 500, n - 1] {
            var g = [Float](repeating: 0, count: n)
            g[at] = .nan
            var p = p1
            #expect(!whole.step(params: &p, grad: g, count: n), "NaN at \(at)")
        }
    }
}
