import Testing
import Linalg
@testable import Models

/// Central finite differences in Double along random directions (pass: relative error < 1e-3).
private func directionalCheck(
    at x: [Double], seed: UInt64, trials: Int = 3, eps: Double = 1e-5,
    value: ([Double]) -> Double, gradient: [Double]
) -> Double {
    var rng = Philox(seed: seed, step: 9, task: 9, stream: 99)
    var worst = 0.0
    for _ in 0..<trials {
        let v = (0..<x.count).map { _ in rng.nextNormal() }
        let plus = zip(x, v).map { $0 + eps * $1 }
        let minus = zip(x, v).map { $0 - eps * $1 }
        let fd = (value(plus) - value(minus)) / (2 * eps)
        let an = zip(gradient, v).reduce(0.0) { $0 + $1.0 * $1.1 }
        let rel = abs(fd - an) / max(abs(fd), abs(an), 1e-8)
        worst = max(worst, rel)
    }
    return worst
}

private func randomData(inputs: Int, classes: Int, rows: Int, seed: UInt64) -> Examples<Double> {
    var rng = Philox(seed: seed, step: 1, task: 0, stream: 1)
    let dense: [[Double]] = (0..<rows).map { _ in
        (0..<inputs).map { _ in rng.nextUnit() < 0.4 ? 0 : rng.nextUnit() }
    }
    let labels = (0..<rows).map { _ in UInt8(rng.nextInt(below: classes)) }
    return Examples(dense: dense, labels: labels)
}

private func randomVector(_ n: Int, scale: Double, seed: UInt64) -> [Double] {
    var rng = Philox(seed: seed, step: 2, task: 0, stream: 1)
    return (0..<n).map { _ in scale * rng.nextNormal() }
}

let shapes: [[Int]] = [[6, 3], [6, 5, 3], [6, 5, 4, 3]]

@Suite struct GradientCheckTests {
    @Test("MLP prediction-loss gradient matches finite differences", arguments: shapes, PredictionLoss.allCases)
    func mlpGradient(sizes: [Int], loss: PredictionLoss) {
        let shape = MLPShape(sizes)
        let data = randomData(inputs: sizes[0], classes: sizes.last!, rows: 7, seed: 3)
        let mlp = MLP<Double>(shape: shape, maxBatch: 8)
        let rows: [Int32] = [0, 2, 3, 5, 6, 2]
        let w = randomVector(shape.parameterCount, scale: 0.5, seed: 4)
        func value(_ w: [Double]) -> Double {
            w.withUnsafeBufferPointer { wp in rows.withUnsafeBufferPointer { r in
                mlp.loss(w: wp.baseAddress!, data: data, rows: r, loss: loss, grad: nil) } }
        }
        var g = [Double](repeating: 0, count: shape.parameterCount)
        w.withUnsafeBufferPointer { wp in rows.withUnsafeBufferPointer { r in g.withUnsafeMutableBufferPointer { gp in
            _ = mlp.loss(w: wp.baseAddress!, data: data, rows: r, loss: loss, grad: gp.baseAddress!) } } }
        #expect(directionalCheck(at: w, seed: 5, value: value, gradient: g) < 1e-3)
        #expect(g.contains { $0 != 0 })
    }

    @Test("Regularizer gradients in w and λ match finite differences",
          arguments: RegularizationScope.allCases, RegularizationNorm.allCases)
    func regularizer(scope: RegularizationScope, norm: RegularizationNorm) {
        for sizes in shapes {
            let shape = MLPShape(sizes)
            let reg = Regularizer(shape: shape, scope: scope, norm: norm)
            let w = randomVector(shape.parameterCount, scale: 0.7, seed: 6)
            let lambda = randomVector(reg.groupCount, scale: 0.5, seed: 7)
            var scratch = [Double](repeating: 0, count: 2 * reg.groupCount)
            func value(_ w: [Double], _ l: [Double]) -> Double {
                scratch.withUnsafeMutableBufferPointer { s in
                    reg.addGradient(w: w, lambda: l, gradW: nil, gradLambda: nil, scratch: s.baseAddress!) }
            }
            var gw = [Double](repeating: 0, count: w.count), gl = [Double](repeating: 0, count: lambda.count)
            _ = scratch.withUnsafeMutableBufferPointer { s in gw.withUnsafeMutableBufferPointer { gwp in gl.withUnsafeMutableBufferPointer { glp in
                reg.addGradient(w: w, lambda: lambda, gradW: gwp.baseAddress!, gradLambda: glp.baseAddress!, scratch: s.baseAddress!) } } }
            #expect(directionalCheck(at: w, seed: 8, value: { value($0, lambda) }, gradient: gw) < 1e-3, "w, \(sizes)")
            #expect(directionalCheck(at: lambda, seed: 9, value: { value(w, $0) }, gradient: gl) < 1e-3, "λ, \(sizes)")
        }
    }

    @Test("Regularizer groups follow the documented scopes")
    func groups() {
        let shape = MLPShape([4, 3, 2])   // D = 12 + 3 + 6 + 2 = 23
        #expect(Regularizer(shape: shape, scope: .global).groupCount == 1)
        #expect(Regularizer(shape: shape, scope: .perWeight).groupCount == 23)
        #expect(Regularizer(shape: shape, scope: .perLayer).groupOf == Array(repeating: 0, count: 15) + Array(repeating: 1, count: 8))
        let pc = Regularizer(shape: shape, scope: .perClass)
        #expect(pc.groupCount == 2)
        #expect(pc.groupOf == Array(repeating: -1, count: 15) + [0, 1, 0, 1, 0, 1] + [0, 1])
        #expect(Regularizer(shape: MLPShape([784, 10]), scope: .perClass).groupOf.filter { $0 == 3 }.count == 785)
    }

    @Test("Hypernetwork parameter counts match the design table")
    func parameterCounts() {
        #expect(Hypernet<Float>.parameterCount(kind: .mlp(hidden: 50), inputCount: 1, outputCount: 7850) == 400_450)
        #expect(Hypernet<Float>.parameterCount(kind: .linear, inputCount: 1, outputCount: 7850) == 15_700)
        #expect(Hypernet<Float>.parameterCount(kind: .linear, inputCount: 10, outputCount: 7850) == 86_350)
        #expect(Hypernet<Float>.parameterCount(kind: .factorized(hidden: 10), inputCount: 7850, outputCount: 7850) == 164_860)
        #expect(MLPShape([784, 10]).parameterCount == 7850)
    }

    @Test("Full training loss L_pred(φ(λ)) + L_reg(φ(λ), λ): gradients in φ and λ match finite differences",
          arguments: [HypernetKind.linear, .mlp(hidden: 4), .factorized(hidden: 3)], RegularizationScope.allCases)
    func composite(kind: HypernetKind, scope: RegularizationScope) {
        for sizes in shapes {
            for norm in RegularizationNorm.allCases {
                let shape = MLPShape(sizes)
                let reg = Regularizer(shape: shape, scope: scope, norm: norm)
                let hn = Hypernet<Double>(kind: kind, inputCount: reg.groupCount, outputCount: shape.parameterCount)
                let mlp = MLP<Double>(shape: shape, maxBatch: 8)
                let data = randomData(inputs: sizes[0], classes: sizes.last!, rows: 9, seed: 11)
                let rows: [Int32] = [1, 4, 8, 0]
                var phi = hn.initialParameters(seed: 12, scale: 0.3)
                // Make the hidden ReLU units mostly active so the check exercises both sides.
                if case .mlp(let k) = kind { for i in 0..<k { phi[reg.groupCount * k + i] = 0.5 } }
                let lambda = randomVector(reg.groupCount, scale: 0.4, seed: 13)
                let d = shape.parameterCount
                var w = [Double](repeating: 0, count: d), gw = w
                var scratch = [Double](repeating: 0, count: 2 * reg.groupCount)

                func value(_ phi: [Double], _ lambda: [Double]) -> Double {
                    hn.forward(phi: phi, lambda: lambda, w: &w)
                    let pred = rows.withUnsafeBufferPointer { mlp.loss(w: w, data: data, rows: $0, loss: .mse, grad: nil) }
                    let r = reg.addGradient(w: w, lambda: lambda, gradW: nil, gradLambda: nil, scratch: &scratch)
                    return pred + r
                }
                hn.forward(phi: phi, lambda: lambda, w: &w)
                _ = rows.withUnsafeBufferPointer { mlp.loss(w: w, data: data, rows: $0, loss: .mse, grad: &gw) }
                var glReg = [Double](repeating: 0, count: lambda.count)
                reg.addGradient(w: w, lambda: lambda, gradW: &gw, gradLambda: &glReg, scratch: &scratch)
                var gphi = [Double](repeating: 0, count: hn.parameterCount)
                var gl = [Double](repeating: 0, count: lambda.count)
                hn.backward(phi: phi, lambda: lambda, gradW: gw, gradPhi: &gphi, gradLambda: &gl)
                for i in gl.indices { gl[i] += glReg[i] }   // λ enters directly through L_reg too

                #expect(directionalCheck(at: phi, seed: 14, value: { value($0, lambda) }, gradient: gphi) < 1e-3,
                        "φ: \(kind) \(scope) \(norm) \(sizes)")
                #expect(directionalCheck(at: lambda, seed: 15, value: { value(phi, $0) }, gradient: gl) < 1e-3,
                        "λ: \(kind) \(scope) \(norm) \(sizes)")
            }
        }
    }

    @Test("Whole-set loss equals the mean of per-chunk losses")
    func wholeSetLoss() {
        let shape = MLPShape([6, 5, 3])
        let data = randomData(inputs: 6, classes: 3, rows: 10, seed: 21)
        let w = randomVector(shape.parameterCount, scale: 0.5, seed: 22)
        let small = MLP<Double>(shape: shape, maxBatch: 3)
        let big = MLP<Double>(shape: shape, maxBatch: 10)
        let a = small.loss(w: w, data: data, loss: .gaussian)
        let b = big.loss(w: w, data: data, loss: .gaussian)
        #expect(abs(a - b) < 1e-12)
        let rows = (0..<10).map(Int32.init)
        let c = rows.withUnsafeBufferPointer { big.loss(w: w, data: data, rows: $0, loss: .gaussian, grad: nil) }
        #expect(abs(b - c) < 1e-12)
    }
}
