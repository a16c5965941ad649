import Foundation
import HyperOpt
import Linalg
import Testing

/// A stand-in for the 10-hyperparameter per-class problem (docs/baselines.md): per dimension a
/// flat floor below λ ≈ −6 with a shallow minimum near −8 and a steep rise above −5, summed over
/// the 10 classes, plus a little deterministic "trial noise". Random points land in the good
/// region (every λ_c ≲ −5) with probability ≈ 0.6¹⁰ ≈ 0.006.
private func perClassLike(_ lambda: [Double], trial: Int) -> Double {
    let rise = lambda.reduce(0) { $0 + log1p(exp(1.5 * ($1 + 4))) / 1.5 }
    let bowl = lambda.reduce(0) { $0 + 0.01 * ($1 + 8) * ($1 + 8) }
    return 0.04 + 0.002 * (rise + bowl) + 0.0003 * sin(Double(trial) * 12.9898)
}

extension BayesOptTests {
    @Suite struct GaussianProcessPriorTests {
        @Test("the log prior's gradient agrees with central differences")
        func priorGradient() {
            let prior = GaussianProcess.Prior.dimensionScaled(dimension: 3)
            let theta = [-1.3, 0.2, 2.5, 0.4, -2.1]
            let (_, gradient) = prior.logDensity(theta: theta)
            let h = 1e-6
            for j in theta.indices {
                var plus = theta, minus = theta
                plus[j] += h
                minus[j] -= h
                let fd = (prior.logDensity(theta: plus).value - prior.logDensity(theta: minus).value) / (2 * h)
                #expect(abs(fd - gradient[j]) <= 1e-6 * max(abs(gradient[j]), 1), "θ_\(j): fd \(fd), analytic \(gradient[j])")
            }
            // No prior on σ_f; none on σ_n without a noise prior.
            #expect(gradient[3] == 0)
            let lengthOnly = GaussianProcess.Prior(lengthScale: prior.lengthScale)
            #expect(lengthOnly.logDensity(theta: theta).gradient[4] == 0)
        }

        @Test("the dimension-scaled prior has BoTorch's parameters and its density peaks at exp(μ − s²)")
        func dimensionScaledParameters() {
            let p = GaussianProcess.Prior.dimensionScaled(dimension: 10)
            #expect(abs(p.lengthScale.mu - (2.0.squareRoot() + 0.5 * log(10.0))) < 1e-12)
            #expect(abs(p.lengthScale.s - 3.0.squareRoot()) < 1e-12)
            #expect(p.noiseVariance == GaussianProcess.Prior.LogNormal(mu: -4, s: 1))
            // d/dθ log p = 0 at θ = μ − s² (density on ℓ evaluated at ℓ, as GPyTorch does).
            let mode = p.lengthScale.mu - p.lengthScale.s * p.lengthScale.s
            #expect(abs(p.logDensity(theta: [mode, 0, -2]).gradient[0]) < 1e-12)
        }

        @Test("a MAP fit reaches a higher posterior than the maximum-likelihood fit and keeps length scales off the bounds")
        func mapFitBeatsMLOnThePosterior() throws {
            let space = try SearchSpace.box(lower: -12, upper: 0, count: 10)
            let inputs = (0..<12).map { space.toUnit(space.sample(seed: 3, index: UInt64($0))) }
            let targets = (0..<12).map { perClassLike(space.fromUnit(inputs[$0]), trial: $0) }
            var options = GaussianProcess.FitOptions()
            options.seed = 5
            let ml = try GaussianProcess.fit(inputs: inputs, targets: targets, options: options)
            options.prior = .dimensionScaled(dimension: 10)
            let map = try GaussianProcess.fit(inputs: inputs, targets: targets, options: options)
            func posterior(_ gp: GaussianProcess) throws -> Double {
                try GaussianProcess.logMarginalLikelihood(inputs: inputs, targets: targets,
                                                          hyperparameters: gp.hyperparameters).value
                    + options.prior!.logDensity(theta: gp.hyperparameters.vector).value
            }
            #expect(try posterior(map) >= posterior(ml) - 1e-6)
            // The report holds the likelihood alone.
            let lml = try GaussianProcess.logMarginalLikelihood(inputs: inputs, targets: targets,
                                                                hyperparameters: map.hyperparameters).value
            #expect(abs(try #require(map.fitReport).logMarginalLikelihood - lml) < 1e-6 * max(1, abs(lml)))
            let bounds = GaussianProcess.Bounds.unitCube.logLengthScale
            let atBound = map.hyperparameters.logLengthScales.filter { $0 <= bounds.lowerBound + 1e-6 || $0 >= bounds.upperBound - 1e-6 }
            #expect(atBound.isEmpty, "MAP length scales \(map.hyperparameters.logLengthScales.map { exp($0) })")
            print("12 points in 10-D: ML ℓ \(ml.hyperparameters.logLengthScales.map { String(format: "%.2f", exp($0)) }) σ_n \(String(format: "%.4f", exp(ml.hyperparameters.logNoiseStd))); "
                  + "MAP ℓ \(map.hyperparameters.logLengthScales.map { String(format: "%.2f", exp($0)) }) σ_n \(String(format: "%.4f", exp(map.hyperparameters.logNoiseStd)))")
        }

        @Test("the default liar is the Kriging believer: a fantasy keeps the mean and shrinks the variance")
        func krigingBelieverDefault() throws {
            #expect(BayesianOptimizer.Configuration().liar == .krigingBeliever)
            #expect(BayesianOptimizer.Configuration().prior == .dimensionScaled)
            let space = try SearchSpace.box(lower: -12, upper: 0, count: 10)
            let inputs = (0..<12).map { space.toUnit(space.sample(seed: 4, index: UInt64($0))) }
            let targets = (0..<12).map { perClassLike(space.fromUnit(inputs[$0]), trial: $0) }
            var options = GaussianProcess.FitOptions()
            options.prior = .dimensionScaled(dimension: 10)
            let gp = try GaussianProcess.fit(inputs: inputs, targets: targets, options: options)
            let pending = space.toUnit(space.sample(seed: 4, index: 99))
            let before = gp.predict(pending)
            let after = try gp.conditioned(on: pending, target: before.mean).predict(pending)
            #expect(abs(after.mean - before.mean) <= 1e-9 * max(1, abs(before.mean)))
            #expect(after.variance < 0.5 * before.variance)
        }

        @Test("10-D per-class-like problem, 32 trials: BO (dimension-scaled prior) beats random search on every seed")
        func beatsRandomSearchIn10D() throws {
            let space = try SearchSpace.box(lower: -12, upper: 0, count: 10)
            let budget = 32
            var withPrior: [Double] = [], withoutPrior: [Double] = [], random: [Double] = []
            func run(_ bo: BayesianOptimizer) throws -> Double {
                var observations: [BayesianOptimizer.Observation] = []
                var warm: GaussianProcess.Hyperparameters? = nil
                for trial in 0..<budget {
                    let p = try bo.propose(observations: observations, trial: trial, warmStart: warm)
                    warm = p.hyperparameters ?? warm
                    observations.append(.init(lambda: p.points[0], loss: perClassLike(p.points[0], trial: trial)))
                }
                return observations.map(\.loss).min()!
            }
            let start = Date()
            for seed: UInt64 in 1...4 {
                withPrior.append(try run(BayesianOptimizer(space: space, seed: seed)))
                var ml = BayesianOptimizer.Configuration()
                ml.prior = .none
                withoutPrior.append(try run(BayesianOptimizer(space: space, seed: seed, configuration: ml)))
                let rs = RandomSearch(space: space, seed: seed)
                random.append((0..<budget).map { perClassLike(rs.propose(trial: $0), trial: $0) }.min()!)
            }
            func mean(_ v: [Double]) -> Double { v.reduce(0, +) / Double(v.count) }
            print("per-class-like 10-D, \(budget) trials: BO+prior \(withPrior) (mean \(mean(withPrior))), BO ML \(withoutPrior) "
                  + "(mean \(mean(withoutPrior))), random \(random) (mean \(mean(random))); \(String(format: "%.1f", Date().timeIntervalSince(start))) s")
            for (b, r) in zip(withPrior, random) { #expect(b < r) }
            #expect(mean(withPrior) < mean(withoutPrior))
        }
    }
}
