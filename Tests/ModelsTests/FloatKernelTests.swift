import Testing
import Foundation
import Linalg
@testable import Models

@Suite struct FloatKernelTests {
    /// The Float path (padded AVX2 kernels, Adam kernel) must agree with the generic Double
    /// path, which the finite-difference tests verify.
    @Test("Float MLP loss and gradient agree with the Double reference", arguments: [[20, 3], [20, 10], [20, 16, 10], [30, 17, 9, 10], [40, 100, 10]])
    func floatMatchesDouble(sizes: [Int]) {
        let shape = MLPShape(sizes)
        var rng = Philox(seed: 5, step: 0, task: 0, stream: 0)
        let dense: [[Double]] = (0..<50).map { _ in (0..<sizes[0]).map { _ in rng.nextUnit() < 0.7 ? 0 : rng.nextUnit() } }
        let labels = (0..<50).map { _ in UInt8(rng.nextInt(below: sizes.last!)) }
        let dd = Examples<Double>(dense: dense, labels: labels)
        let df: Examples<Float> = dd.converted()
        let w = (0..<shape.parameterCount).map { _ in 0.3 * rng.nextNormal() }
        let wf = w.map(Float.init)
        let rows: [Int32] = (0..<40).map { _ in Int32(rng.nextInt(below: 50)) }
        var gd = [Double](repeating: 0, count: w.count), gf = [Float](repeating: 0, count: w.count)
        let ld = rows.withUnsafeBufferPointer { MLP<Double>(shape: shape, maxBatch: 64).loss(w: w, data: dd, rows: $0, loss: .mse, grad: &gd) }
        let lf = rows.withUnsafeBufferPointer { MLP<Float>(shape: shape, maxBatch: 64).loss(w: wf, data: df, rows: $0, loss: .mse, grad: &gf) }
        #expect(abs(ld - lf) / abs(ld) < 1e-5)
        let scale = gd.map(abs).max()!
        let worst = zip(gd, gf).map { abs($0 - Double($1)) }.max()!
        #expect(worst / scale < 1e-4, "max abs diff \(worst) vs scale \(scale)")
    }

    @Test("Adam kernel matches the scalar formula")
    func adam() {
        var rng = Philox(seed: 6, step: 0, task: 0, stream: 0)
        let n = 37
        let g = (0..<n).map { _ in Float(rng.nextNormal()) }
        let p0 = (0..<n).map { _ in Float(rng.nextNormal()) }
        let f = Optimizer<Float>(kind: .adam, count: n, learningRate: 0.01)
        let d = Optimizer<Double>(kind: .adam, count: n, learningRate: 0.01)
        var pf = p0, pd = p0.map(Double.init)
        for _ in 0..<3 {
            f.step(params: &pf, grad: g, count: n, gradScale: 0.5)
            d.step(params: &pd, grad: g.map(Double.init), count: n, gradScale: 0.5)
        }
        #expect(zip(pf, pd).allSatisfy { abs(Double($0) - $1) < 1e-5 })
        #expect(zip(pf, p0).allSatisfy { $0 != $1 })
    }
}

@Suite struct DeterministicMathTests {
    @Test("log, sin and cos without libm agree with Foundation to 1e-13")
    func agreesWithLibm() {
        var rng = Philox(seed: 3, step: 0, task: 0, stream: 0)
        for _ in 0..<20_000 {
            let u = max(rng.nextUnit(), 1e-300)
            #expect(abs(DeterministicMath.log(u) - Foundation.log(u)) <= 1e-13 * max(1, abs(Foundation.log(u))))
            let t = rng.nextUnit()
            let (s, c) = DeterministicMath.sinCosTurns(t)
            #expect(abs(s - Foundation.sin(2 * .pi * t)) < 1e-13)
            #expect(abs(c - Foundation.cos(2 * .pi * t)) < 1e-13)
        }
        #expect(DeterministicMath.log(1) == 0)
        #expect(abs(DeterministicMath.log(1e-300) - Foundation.log(1e-300)) < 1e-12)
    }

    @Test("Normals have mean 0 and variance 1")
    func normalMoments() {
        var rng = Philox(seed: 4, step: 1, task: 2, stream: 3)
        let n = 200_000
        var sum = 0.0, sq = 0.0
        for _ in 0..<n { let x = rng.nextNormal(); sum += x; sq += x * x }
        #expect(abs(sum / Double(n)) < 0.01)
        #expect(abs(sq / Double(n) - 1) < 0.015)
    }
}
