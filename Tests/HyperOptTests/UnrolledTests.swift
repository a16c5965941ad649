import Foundation
import HyperOpt
import Linalg
import Models
import Testing
import TestSupport

/// A small synthetic problem: 6 inputs (~40 % zeros, like sparse pixels), 3 classes.
private func syntheticData(rows: Int, seed: UInt64) -> Examples<Double> {
    var rng = Philox(seed: seed, step: 1, task: 0, stream: 1)
    let dense: [[Double]] = (0..<rows).map { _ in
        (0..<6).map { _ in rng.nextUnit() < 0.4 ? 0 : rng.nextUnit() }
    }
    let labels = (0..<rows).map { _ in UInt8(rng.nextInt(below: 3)) }
    return Examples(dense: dense, labels: labels)
}

private func gaussian(_ n: Int, mean: Double = 0, scale: Double, seed: UInt64) -> [Double] {
    var rng = Philox(seed: seed, step: 2, task: 0, stream: 1)
    return (0..<n).map { _ in mean + scale * rng.nextNormal() }
}

private func dot(_ x: [Double], _ y: [Double]) -> Double { zip(x, y).reduce(0) { $0 + $1.0 * $1.1 } }
private func l2(_ x: [Double]) -> Double { dot(x, x).squareRoot() }

/// The synthetic configuration: T = 15 steps of SGD with momentum on minibatches of 8 of 20.
private func syntheticConfig(layers: [Int], scope: RegularizationScope, norm: RegularizationNorm = .squared) -> UnrolledConfig {
    var c = UnrolledConfig()
    c.layers = layers
    c.scope = scope
    c.norm = norm
    c.batchSize = 8
    c.innerSteps = 15
    c.innerLearningRate = 0.3
    c.momentum = 0.8
    c.initScale = 0.4
    c.seed = 11
    return c
}

private let shapes: [[Int]] = [[6, 3], [6, 4, 3]]
private let scopes: [RegularizationScope] = [.global, .perClass, .perLayer, .perWeight]

@Suite struct UnrolledTests {
    let train = syntheticData(rows: 20, seed: 3)
    let valid = syntheticData(rows: 20, seed: 4)

    /// Worst relative error of `gradient·d` against central differences of `value` along
    /// three random directions `d` (Double).
    private func directionalError(at x: [Double], gradient: [Double], seed: UInt64, eps: Double = 1e-5,
                                  value: ([Double]) -> Double) -> Double {
        var worst = 0.0
        for trial in 0..<3 {
            let d = gaussian(x.count, scale: 1, seed: seed &+ UInt64(trial))
            let fd = (value(zip(x, d).map { $0 + eps * $1 }) - value(zip(x, d).map { $0 - eps * $1 })) / (2 * eps)
            let an = dot(gradient, d)
            worst = max(worst, abs(fd - an) / max(abs(fd), abs(an), 1e-12))
        }
        return worst
    }

    @Test("Hessian-vector products and mixed terms of L_train match finite differences of its gradient",
          arguments: shapes, RegularizationNorm.allCases)
    func curvatureMatchesFiniteDifferences(layers: [Int], norm: RegularizationNorm) {
        for scope in scopes {
            let h = UnrolledHypergradient(config: syntheticConfig(layers: layers, scope: scope, norm: norm), train: train, valid: valid)
            let lambda = gaussian(h.hyperparameterCount, mean: -1, scale: 0.5, seed: 21)
            let w = gaussian(h.parameterCount, scale: 0.5, seed: 22)
            let u = gaussian(h.parameterCount, scale: 1, seed: 23)
            let (hu, mixed) = h.curvature(lambda: lambda, w: w, u: u, step: 5)
            let eps = 1e-6
            let gPlus = h.trainingGradient(lambda: lambda, w: zip(w, u).map { $0 + eps * $1 }, step: 5).grad
            let gMinus = h.trainingGradient(lambda: lambda, w: zip(w, u).map { $0 - eps * $1 }, step: 5).grad
            let fd = zip(gPlus, gMinus).map { ($0 - $1) / (2 * eps) }
            let relHv = l2(zip(hu, fd).map { $0 - $1 }) / l2(fd)
            #expect(relHv < 1e-6, "H·u, \(layers) \(scope) \(norm): relative error \(relHv)")

            // Mixed term: ∂/∂λ (∇_w L_train·u) by central differences in λ, one component at a time.
            var fdMixed: [Double] = []
            for k in 0..<h.hyperparameterCount {
                var lp = lambda, lm = lambda
                lp[k] += eps
                lm[k] -= eps
                let up = dot(h.trainingGradient(lambda: lp, w: w, step: 5).grad, u)
                let um = dot(h.trainingGradient(lambda: lm, w: w, step: 5).grad, u)
                fdMixed.append((up - um) / (2 * eps))
            }
            let relMixed = l2(zip(mixed, fdMixed).map { $0 - $1 }) / l2(fdMixed)
            #expect(relMixed < 1e-6, "mixed, \(layers) \(scope) \(norm): relative error \(relMixed)")
        }
    }

    @Test("The unrolled hypergradient matches central differences of L_valid(w_T(λ)) to 1e-4",
          arguments: shapes, scopes)
    func hypergradientMatchesFiniteDifferences(layers: [Int], scope: RegularizationScope) throws {
        for (norm, validBatch) in [(RegularizationNorm.squared, nil), (.squared, 7), (.unsquared, nil)] as [(RegularizationNorm, Int?)] {
            var config = syntheticConfig(layers: layers, scope: scope, norm: norm)
            config.validBatchSize = validBatch
            let h = UnrolledHypergradient(config: config, train: train, valid: valid)
            let lambda = gaussian(h.hyperparameterCount, mean: -1.5, scale: 0.5, seed: 31)
            let w0 = h.initialWeights()
            let (loss, grad, wT) = h.hypergradient(lambda: lambda, w0: w0)
            let what = "\(layers) \(scope) \(norm) valid batch \(validBatch.map(String.init) ?? "all")"
            #expect(abs(loss - h.validLoss(lambda: lambda, w0: w0)) <= 1e-12 * abs(loss), "\(what)")
            #expect(wT == h.train(lambda: lambda, w0: w0), "\(what)")
            try #require(l2(grad) > 1e-6, "\(what): hypergradient is \(grad)")
            let err = directionalError(at: lambda, gradient: grad, seed: 41) { h.validLoss(lambda: $0, w0: w0) }
            #expect(err < 1e-4, "\(what): relative error \(err)")
        }
    }

    @Test("Checkpointing every k steps reproduces the stored-trajectory hypergradient bit for bit",
          arguments: [1, 4, 7, 15, 40])
    func checkpointingIsExact(every k: Int) {
        let base = syntheticConfig(layers: [6, 4, 3], scope: .perWeight)
        var config = base
        config.checkpointEvery = k
        let full = UnrolledHypergradient(config: base, train: train, valid: valid)
        let ckpt = UnrolledHypergradient(config: config, train: train, valid: valid)
        let lambda = gaussian(full.hyperparameterCount, mean: -1, scale: 0.5, seed: 51)
        let a = full.hypergradient(lambda: lambda, w0: full.initialWeights())
        let b = ckpt.hypergradient(lambda: lambda, w0: ckpt.initialWeights())
        // Bit-identity is the claim: the recomputed segments run the same code on the same buffers.
        #expect(a.validLoss == b.validLoss && a.gradLambda == b.gradLambda && a.wT == b.wT)
        #expect(ckpt.trajectoryBytes == config.storedVectors * ckpt.parameterCount * 8)
        #expect(full.trajectoryBytes == base.storedVectors * full.parameterCount * 8)
    }

    @Test("Configuration problems are reported and the configuration round-trips through JSON")
    func configuration() throws {
        var bad = UnrolledConfig()
        bad.innerSteps = 0
        bad.momentum = 1
        bad.validBatchSize = 0
        bad.checkpointEvery = -1
        #expect(bad.problems().count == 4)
        var c = UnrolledConfig()
        #expect(c.problems().isEmpty)
        c.validBatchSize = 500
        c.scope = .perClass
        let back = try JSONDecoder().decode(UnrolledConfig.self, from: JSONEncoder().encode(c))
        #expect(back == c)
        c.innerSteps = 1000
        c.checkpointEvery = 45
        #expect(c.storedVectors == 45 + 2 * 23)

        var e = ExperimentConfig()
        e.scope = .perClass
        e.nValid = 2000
        e.validBatchSize = 1000
        let fromExperiment = UnrolledConfig(experiment: e)
        #expect(fromExperiment.scope == .perClass && fromExperiment.validBatchSize == 1000 && fromExperiment.layers == e.layers)
    }

    @Test("A few outer iterations on real MNIST (100 training points) lower the validation loss",
          arguments: [RegularizationScope.global, .perClass])
    func realMNISTReducesValidationLoss(scope: RegularizationScope) throws {
        var experiment = ExperimentConfig()
        experiment.nTrain = 100
        experiment.nValid = 2000
        experiment.nTest = 2000
        let data = try RealData.data(for: experiment)

        var config = UnrolledConfig(experiment: experiment)
        config.scope = scope
        config.batchSize = 100
        config.innerSteps = 100
        config.innerLearningRate = 0.1
        config.momentum = 0.9
        config.lambdaInit = 0
        config.outerSteps = 6
        config.outerLearningRate = 0.3
        config.validBatchSize = nil
        let run = UnrolledRun(config: config, data: data)
        var reports: [UnrolledReport] = []
        let start = Date()
        let result = try run.run { reports.append($0); return true }
        let seconds = Date().timeIntervalSince(start)
        print("Unrolled MNIST \(scope): L_valid per iteration", reports.map { String(format: "%.4f", $0.validLoss) }.joined(separator: " "),
              "| final λ̂ mean", String(format: "%.3f", result.lambdaHat.reduce(0, +) / Double(result.lambdaHat.count)),
              "| final L_valid", String(format: "%.4f", result.evaluation.validLoss),
              "test", String(format: "%.4f", result.evaluation.testLoss), "error", String(format: "%.3f", result.evaluation.testError),
              "|", String(format: "%.2f s", seconds))
        #expect(reports.count == 6 && result.iterations == 6)
        #expect(reports.map(\.innerSteps) == (1...6).map { $0 * 100 })
        #expect(result.innerSteps == 700)
        let first = try #require(reports.first).validLoss
        #expect(result.evaluation.validLoss < first - 0.005, "L_valid \(first) → \(result.evaluation.validLoss)")
        #expect(result.evaluation.testLoss.isFinite && result.evaluation.testError < 0.5)
        #expect(result.lambdaHat.allSatisfy { $0 < 0 }, "λ̂ should move away from over-regularization: \(result.lambdaHat)")
    }
}
