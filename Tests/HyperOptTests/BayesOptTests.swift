import Foundation
import HyperOpt
import Linalg
import Testing

/// Bayesian-optimization baselines: Cholesky, search space, random search, GP, EI, optimizer.
/// (One root suite so that `swift test --filter BayesOptTests` selects all of them.)
@Suite struct BayesOptTests {}

// MARK: - Fixture (scripts/oracle/make_gp_fixtures.py → Fixtures/gp.json)

private struct GPFixture: Decodable {
    struct Fit: Decodable {
        let lml: Double
        let length_scales: [Double]
        let signal_std: Double
        let noise_std: Double
    }

    struct Case: Decodable {
        let name: String
        let inputs: [[Double]]
        let targets: [Double]
        let test_inputs: [[Double]]
        let length_scales: [Double]
        let signal_std: Double
        let noise_std: Double
        let mean: [Double]
        let std_noisy: [Double]
        let std_latent: [Double]
        let log_marginal_likelihood: Double
        let log_marginal_likelihood_gradient: [Double]
        let ei_best: Double
        let ei_xi: Double
        let expected_improvement: [Double]
        let fit: Fit

        var hyperparameters: GaussianProcess.Hyperparameters {
            .init(lengthScales: length_scales, signalStd: signal_std, noiseStd: noise_std)
        }
    }

    let cases: [Case]

    static func load(filePath: String = #filePath) throws -> GPFixture {
        let url = URL(fileURLWithPath: filePath).deletingLastPathComponent()
            .appendingPathComponent("Fixtures/gp.json")
        return try JSONDecoder().decode(GPFixture.self, from: Data(contentsOf: url))
    }

    static func named(_ name: String) throws -> Case {
        try #require(try load().cases.first { $0.name == name }, "no case \(name) in gp.json")
    }
}

/// max |a − b| / max |b| (relative error of a vector against a reference).
private func relativeError(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    let scale = b.reduce(0) { max($0, abs($1)) }
    return zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } / max(scale, .leastNormalMagnitude)
}

/// Elementwise relative error max_i |a_i − b_i| / |b_i| (for values spanning many decades).
private func elementwiseRelativeError(_ a: [Double], _ b: [Double]) -> Double {
    zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1) / max(abs($1.1), .leastNormalMagnitude)) }
}

// MARK: - Gaussian process and expected improvement

extension BayesOptTests {
    @Suite struct GaussianProcessTests {
        @Test("posterior mean and std match scikit-learn at fixed hyperparameters", arguments: ["2d", "5d"])
        func posteriorMatchesSklearn(name: String) throws {
            let c = try GPFixture.named(name)
            let gp = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: c.hyperparameters)
            #expect(gp.jitter == 0)
            let latent = gp.predict(c.test_inputs)
            let noisy = gp.predict(c.test_inputs, includeNoise: true)
            #expect(relativeError(latent.map(\.mean), c.mean) < 1e-8)
            #expect(elementwiseRelativeError(latent.map(\.std), c.std_latent) < 1e-8)
            #expect(elementwiseRelativeError(noisy.map(\.std), c.std_noisy) < 1e-8)
            // The single-point path agrees with the batch path.
            for (j, x) in c.test_inputs.enumerated() {
                let p = gp.predict(x)
                #expect(abs(p.mean - latent[j].mean) <= 1e-12 * max(abs(p.mean), 1))
                #expect(abs(p.variance - latent[j].variance) <= 1e-12 * max(p.variance, 1e-12))
            }
        }

        @Test("log marginal likelihood and its gradient match scikit-learn", arguments: ["2d", "5d"])
        func marginalLikelihoodMatchesSklearn(name: String) throws {
            let c = try GPFixture.named(name)
            let (value, gradient) = try GaussianProcess.logMarginalLikelihood(
                inputs: c.inputs, targets: c.targets, hyperparameters: c.hyperparameters)
            #expect(abs(value - c.log_marginal_likelihood) <= 1e-8 * abs(c.log_marginal_likelihood))
            #expect(relativeError(gradient, c.log_marginal_likelihood_gradient) < 1e-8)
            let gp = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: c.hyperparameters)
            #expect(abs(gp.logMarginalLikelihood - c.log_marginal_likelihood) <= 1e-8 * abs(c.log_marginal_likelihood))
        }

        @Test("expected improvement at the test points matches scipy", arguments: ["2d", "5d"])
        func expectedImprovementMatchesScipy(name: String) throws {
            let c = try GPFixture.named(name)
            let gp = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: c.hyperparameters)
            let ei = ExpectedImprovement(best: c.ei_best, xi: c.ei_xi)
            let values = gp.predict(c.test_inputs).map { ei.value(mean: $0.mean, std: $0.std) }
            // EI spans 1e-215 … 1e-1 here: compare each value to its own magnitude.
            #expect(elementwiseRelativeError(values, c.expected_improvement) < 1e-8)
            let logs = gp.predict(c.test_inputs).map { ei.logValue(mean: $0.mean, std: $0.std) }
            #expect(elementwiseRelativeError(logs, c.expected_improvement.map { log($0) }) < 1e-9)
        }

        @Test("the fitted marginal likelihood reaches scikit-learn's optimum", arguments: ["2d", "5d"])
        func fitReachesSklearnOptimum(name: String) throws {
            let c = try GPFixture.named(name)
            let gp = try GaussianProcess.fit(inputs: c.inputs, targets: c.targets)
            let report = try #require(gp.fitReport)
            // Re-evaluate independently of the report.
            let (value, _) = try GaussianProcess.logMarginalLikelihood(
                inputs: c.inputs, targets: c.targets, hyperparameters: gp.hyperparameters)
            print("GP fit \(name): lml \(value) (sklearn \(c.fit.lml)), \(report.evaluations) evaluations, "
                  + "ℓ \(gp.hyperparameters.logLengthScales.map { exp($0) }), σ_f \(exp(gp.hyperparameters.logSignalStd)), "
                  + "σ_n \(exp(gp.hyperparameters.logNoiseStd))")
            #expect(abs(value - report.logMarginalLikelihood) <= 1e-9 * abs(value))
            #expect(value >= c.fit.lml - 1e-3 * abs(c.fit.lml), "fitted \(value), sklearn \(c.fit.lml)")
            #expect(report.evaluations <= 3 * 60)
        }

        @Test("the marginal-likelihood gradient agrees with central differences")
        func marginalLikelihoodGradientFiniteDifferences() throws {
            let c = try GPFixture.named("5d")
            let theta = GaussianProcess.Hyperparameters(
                lengthScales: [0.3, 0.8, 1.5, 0.5, 2.0], signalStd: 1.7, noiseStd: 0.12).vector
            let (_, gradient) = try GaussianProcess.logMarginalLikelihood(
                inputs: c.inputs, targets: c.targets, hyperparameters: .init(vector: theta))
            let h = 1e-5
            for j in theta.indices {
                var plus = theta, minus = theta
                plus[j] += h
                minus[j] -= h
                let fp = try GaussianProcess.logMarginalLikelihood(inputs: c.inputs, targets: c.targets,
                                                                   hyperparameters: .init(vector: plus)).value
                let fm = try GaussianProcess.logMarginalLikelihood(inputs: c.inputs, targets: c.targets,
                                                                   hyperparameters: .init(vector: minus)).value
                let fd = (fp - fm) / (2 * h)
                #expect(abs(fd - gradient[j]) <= 1e-6 * max(abs(gradient[j]), 1), "θ_\(j): fd \(fd), analytic \(gradient[j])")
            }
        }

        @Test("gradients of the posterior mean, std and (log) EI agree with central differences")
        func predictionGradientsFiniteDifferences() throws {
            let c = try GPFixture.named("5d")
            let gp = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: c.hyperparameters)
            let ei = ExpectedImprovement(best: c.ei_best, xi: c.ei_xi)
            let h = 1e-6
            for x in c.test_inputs.prefix(5) {
                let (p, dMean, dStd) = gp.predictWithGradient(x)
                #expect(abs(p.mean - gp.predict(x).mean) <= 1e-12 * max(abs(p.mean), 1))
                let (_, dEI) = ei.valueAndGradient(mean: p.mean, std: p.std, meanGradient: dMean, stdGradient: dStd)
                let (_, dLogEI) = ei.logValueAndGradient(mean: p.mean, std: p.std, meanGradient: dMean, stdGradient: dStd)
                for d in x.indices {
                    var plus = x, minus = x
                    plus[d] += h
                    minus[d] -= h
                    let pp = gp.predict(plus), pm = gp.predict(minus)
                    let fdMean = (pp.mean - pm.mean) / (2 * h)
                    let fdStd = (pp.std - pm.std) / (2 * h)
                    let fdEI = (ei.value(mean: pp.mean, std: pp.std) - ei.value(mean: pm.mean, std: pm.std)) / (2 * h)
                    let fdLog = (ei.logValue(mean: pp.mean, std: pp.std) - ei.logValue(mean: pm.mean, std: pm.std)) / (2 * h)
                    #expect(abs(fdMean - dMean[d]) <= 1e-6 * max(abs(dMean[d]), 1e-3))
                    #expect(abs(fdStd - dStd[d]) <= 1e-6 * max(abs(dStd[d]), 1e-3))
                    #expect(abs(fdEI - dEI[d]) <= 1e-5 * max(abs(dEI[d]), 1e-6))
                    #expect(abs(fdLog - dLogEI[d]) <= 1e-5 * max(abs(dLogEI[d]), 1e-3))
                }
            }
        }

        @Test("log EI is finite and smooth deep in the tail where EI underflows")
        func logExpectedImprovementTail() {
            let ei = ExpectedImprovement(best: 0)
            // Continuity across the switch to the asymptotic series at z = −30.
            let below = ei.logValue(mean: 30.000001, std: 1), above = ei.logValue(mean: 29.999999, std: 1)
            #expect(abs(below - above) < 1e-4)
            #expect(ei.value(mean: 60, std: 1) == 0)
            let far = ei.logValue(mean: 60, std: 1)
            #expect(far.isFinite && far < -1700)
            // Monotone in μ.
            #expect(ei.logValue(mean: 61, std: 1) < far)
            // Gradient of log EI in the tail against a difference quotient in μ (∂/∂μ = −Φ/τ/σ ≈ −|z|).
            let (_, g) = ei.logValueAndGradient(mean: 60, std: 1, meanGradient: [1], stdGradient: [0])
            let fd = (ei.logValue(mean: 60 + 1e-6, std: 1) - ei.logValue(mean: 60 - 1e-6, std: 1)) / 2e-6
            #expect(abs(g[0] - fd) <= 1e-5 * abs(fd))
            #expect(ei.value(mean: 1, std: 0) == 0 && ei.value(mean: -2, std: 0) == 2)
        }

        @Test("conditioning on more points equals factoring from scratch with the same standardization")
        func conditioningMatchesRefactoring() throws {
            let c = try GPFixture.named("2d")
            let gp = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: c.hyperparameters)
            let extra = [[0.42, 0.17], [0.9, 0.05]]
            let grown = try gp.conditioned(on: extra[0], target: 0.5).conditioned(on: extra[1], target: -0.2)
            #expect(grown.count == c.inputs.count + 2)
            #expect(grown.targetMean == gp.targetMean && grown.targetStd == gp.targetStd)
            #expect(grown.predict(extra[0]).std < gp.predict(extra[0]).std, "conditioning shrinks the variance")
            let scratch = try GaussianProcess(inputs: c.inputs + extra, targets: c.targets + [0.5, -0.2],
                                              hyperparameters: c.hyperparameters,
                                              standardization: (gp.targetMean, gp.targetStd))
            let a = grown.predict(c.test_inputs), b = scratch.predict(c.test_inputs)
            #expect(relativeError(a.map(\.mean), b.map(\.mean)) < 1e-12)
            #expect(relativeError(a.map(\.variance), b.map(\.variance)) < 1e-10)
            #expect(abs(grown.logMarginalLikelihood - scratch.logMarginalLikelihood) < 1e-10 * abs(scratch.logMarginalLikelihood))
            // A duplicate point without noise: the O(n²) extension fails, a full factorization with
            // jitter takes over.
            var noiseless = c.hyperparameters
            noiseless.logNoiseStd = log(1e-9)
            let exact = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: noiseless)
            #expect(exact.jitter == 0)
            let twice = try exact.conditioned(on: c.inputs[3], target: c.targets[3])
            #expect(twice.count == exact.count + 1 && twice.jitter > 0)
            #expect(abs(twice.predict(c.inputs[3]).mean - c.targets[3]) < 1e-4)
        }

        @Test("a candidate set conditioned on its points equals the conditioned process")
        func candidateSetMatchesConditioning() throws {
            let c = try GPFixture.named("2d")
            let gp = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: c.hyperparameters)
            let points = c.test_inputs
            try #require(points.count >= 3)
            var set = gp.candidatePosterior(points, capacity: 2)
            let before = gp.predict(points)
            for j in points.indices {
                #expect(abs(set.prediction(j).mean - before[j].mean) < 1e-10 * max(1, abs(before[j].mean)))
                #expect(abs(set.prediction(j).variance - before[j].variance) < 1e-10 * max(1, before[j].variance))
            }
            let first = set.condition(onPoint: 0, target: 0.3)
            let second = set.condition(onPoint: 2, target: -0.1)
            let third = set.condition(onPoint: 1, target: 0)
            #expect(first && second)
            #expect(!third, "no capacity left")
            let direct = try gp.conditioned(on: points[0], target: 0.3).conditioned(on: points[2], target: -0.1).predict(points)
            let a = points.indices.map { set.prediction($0) }
            #expect(relativeError(a.map(\.mean), direct.map(\.mean)) < 1e-10)
            #expect(relativeError(a.map(\.variance), direct.map(\.variance)) < 1e-8)
        }

        @Test("conditioning on several points at once equals conditioning on each in turn")
        func blockConditioningMatchesSequential() throws {
            let c = try GPFixture.named("2d")
            let gp = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: c.hyperparameters)
            let extra = [[0.42, 0.17], [0.9, 0.05], [0.1, 0.8]], values = [0.5, -0.2, 0.1]
            let block = try gp.conditioned(on: extra, targets: values)
            var sequential = gp
            for (x, v) in zip(extra, values) { sequential = try sequential.conditioned(on: x, target: v) }
            #expect(block.count == sequential.count)
            let a = block.predict(c.test_inputs), b = sequential.predict(c.test_inputs)
            #expect(relativeError(a.map(\.mean), b.map(\.mean)) < 1e-12)
            #expect(relativeError(a.map(\.variance), b.map(\.variance)) < 1e-10)
            // A block with a duplicate of an old point, noiseless: a full factorization takes over.
            var noiseless = c.hyperparameters
            noiseless.logNoiseStd = log(1e-9)
            let exact = try GaussianProcess(inputs: c.inputs, targets: c.targets, hyperparameters: noiseless)
            let twice = try exact.conditioned(on: [c.inputs[3], extra[0]], targets: [c.targets[3], 0.5])
            #expect(twice.count == exact.count + 2 && twice.jitter > 0)
        }
    }
}

// MARK: - Cholesky

extension BayesOptTests {
    @Suite struct CholeskyTests {
        /// A random SPD matrix `B·Bᵀ + n·I` from a fixed seed.
        private func spd(_ n: Int, seed: UInt64 = 7) -> [Double] {
            var rng = Philox(seed: seed, step: 0, task: 0, stream: 99)
            let b = (0..<n * n).map { _ in rng.nextNormal() }
            var a = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { for k in 0..<n { a[i * n + j] += b[i * n + k] * b[j * n + k] } } }
            for i in 0..<n { a[i * n + i] += Double(n) }
            return a
        }

        private func multiply(_ a: [Double], _ x: [Double], _ n: Int) -> [Double] {
            (0..<n).map { i in (0..<n).reduce(0) { $0 + a[i * n + $1] * x[$1] } }
        }

        @Test("solves have a relative residual near machine precision")
        func solveAccuracy() throws {
            let n = 60
            let a = spd(n)
            let chol = try Cholesky(a, order: n)
            #expect(chol.jitter == 0)
            var rng = Philox(seed: 3, step: 0, task: 0, stream: 99)
            let b = (0..<n).map { _ in rng.nextNormal() }
            let x = chol.solve(b)
            #expect(relativeError(multiply(a, x, n), b) < 1e-13)
            // L·Lᵀ reproduces A; the triangular solves compose to the full solve.
            let l = chol.lower
            for i in 0..<n { for j in (i + 1)..<n { #expect(l[i * n + j] == 0) } }
            var llt = [Double](repeating: 0, count: n * n)
            for i in 0..<n { for j in 0..<n { for k in 0...min(i, j) { llt[i * n + j] += l[i * n + k] * l[j * n + k] } } }
            #expect(relativeError(llt, a) < 1e-14)
            #expect(relativeError(chol.solveUpper(columns: chol.solveLower(columns: b)), x) < 1e-13)
            var buffer = b
            chol.solveLower(inPlace: &buffer)
            chol.solveUpper(inPlace: &buffer)
            #expect(relativeError(buffer, x) < 1e-13)
            // Several right-hand sides at once, and the inverse.
            let b2 = (0..<3 * n).map { _ in rng.nextNormal() }
            let x2 = chol.solve(columns: b2, count: 3)
            for r in 0..<3 {
                #expect(relativeError(multiply(a, Array(x2[r * n..<(r + 1) * n]), n), Array(b2[r * n..<(r + 1) * n])) < 1e-13)
            }
            let inv = chol.inverse()
            #expect(relativeError(multiply(inv, b, n), x) < 1e-12)
        }

        @Test("the log-determinant of the second-difference matrix is log(n + 1)")
        func logDeterminant() throws {
            let n = 200
            var a = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                a[i * n + i] = 2
                if i > 0 { a[i * n + i - 1] = -1; a[(i - 1) * n + i] = -1 }
            }
            let chol = try Cholesky(a, order: n)
            #expect(abs(chol.logDeterminant - log(Double(n + 1))) < 1e-11)
        }

        @Test("growing the factor by one row equals refactoring")
        func appendingMatchesRefactoring() throws {
            let n = 20
            let a = spd(n + 1, seed: 11)
            var top = [Double]()
            for i in 0..<n { top += a[i * (n + 1)..<i * (n + 1) + n] }
            let grown = try Cholesky(top, order: n)
                .appending(column: (0..<n).map { a[n * (n + 1) + $0] }, diagonal: a[n * (n + 1) + n])
            let full = try Cholesky(a, order: n + 1)
            #expect(relativeError(grown.lower, full.lower) < 1e-13)
        }

        @Test("growing the factor by a block of rows equals refactoring")
        func blockAppendingMatchesRefactoring() throws {
            let (n, p) = (20, 5)
            let m = n + p
            let a = spd(m, seed: 12)
            var top = [Double](), rows = [Double](), block = [Double]()
            for i in 0..<n { top += a[i * m..<i * m + n] }
            for i in n..<m { rows += a[i * m..<i * m + n]; block += a[i * m + n..<i * m + m] }
            let grown = try Cholesky(top, order: n).appending(rows: rows, block: block, count: p)
            let full = try Cholesky(a, order: m)
            #expect(relativeError(grown.lower, full.lower) < 1e-12)
            #expect(try Cholesky(top, order: n).appending(rows: [], block: [], count: 0).lower == Cholesky(top, order: n).lower)
        }

        @Test("a singular PSD matrix factors with jitter; an indefinite or NaN one throws")
        func jitterAndErrors() throws {
            let ones = [Double](repeating: 1, count: 9)   // rank 1
            let chol = try Cholesky(ones, order: 3)
            #expect(chol.jitter > 0 && chol.jitter <= 1e-6)
            #expect(throws: CholeskyError.self) { try Cholesky(ones, order: 3, allowJitter: false) }
            #expect(throws: CholeskyError.notPositiveDefinite(order: 2, minor: 2, jitter: 0)) {
                try Cholesky([1, 0, 0, -1], order: 2)
            }
            #expect(throws: CholeskyError.nonFinite(order: 2)) { try Cholesky([1, 0, .nan, 1], order: 2) }
            #expect(try Cholesky([], order: 0).logDeterminant == 0)
        }
    }
}

// MARK: - Search space and random search

extension BayesOptTests {
    @Suite struct SearchSpaceTests {
        @Test("invalid boxes, priors and points are rejected with the offending values")
        func validation() throws {
            #expect(throws: SearchSpaceError.empty) { try SearchSpace([]) }
            #expect(throws: SearchSpaceError.invalidBox(index: 1, lower: 2, upper: 1)) {
                try SearchSpace([.uniform(lower: 0, upper: 1), .uniform(lower: 2, upper: 1)])
            }
            #expect(throws: SearchSpaceError.invalidPrior(index: 0, mean: 0, std: 0)) {
                try SearchSpace([.gaussian(mean: 0, std: 0)])
            }
            let space = try SearchSpace([.uniform(lower: -12, upper: 0), .gaussian(mean: 1, std: 3, lower: -100, upper: 4)])
            #expect(throws: SearchSpaceError.wrongDimension(expected: 2, actual: 1)) { try space.validate([0]) }
            #expect(throws: SearchSpaceError.nonFinite(index: 1)) { try space.validate([0, .nan]) }
            #expect(throws: SearchSpaceError.outOfBounds(index: 1, value: 5, lower: -100, upper: 4)) {
                try space.validate([0, 5])
            }
            #expect(space.contains([-3, 3.9]))
            #expect(space.clip([1, 7]) == [0, 4])
        }

        @Test("samples are deterministic, inside the bounds, and follow the prior")
        func sampling() throws {
            let space = try SearchSpace([.uniform(lower: -12, upper: 0), .gaussian(mean: 1, std: 3, lower: -100, upper: 4)])
            #expect(space.sample(seed: 5, index: 3) == space.sample(seed: 5, index: 3))
            #expect(space.sample(seed: 5, index: 3) != space.sample(seed: 5, index: 4))
            #expect(space.sample(seed: 5, index: 3) != space.sample(seed: 6, index: 3))
            let points = (0..<4000).map { space.sample(seed: 1, index: UInt64($0)) }
            #expect(points.allSatisfy { space.contains($0) })
            let m0 = points.map { $0[0] }.reduce(0, +) / 4000
            #expect(abs(m0 - -6) < 0.3)
            let clipped = points.filter { $0[1] == 4 }.count   // P(1 + 3Z ≥ 4) = P(Z ≥ 1) ≈ 0.159
            #expect(abs(Double(clipped) / 4000 - 0.1587) < 0.03)
            // Unit-cube coordinates round-trip inside the search bounds.
            let p = [-3.0, 2.5]
            let back = space.fromUnit(space.toUnit(p))
            #expect(abs(back[0] - p[0]) < 1e-12 && abs(back[1] - p[1]) < 1e-12)
            #expect(space.dimensions[1].searchBounds == -8...4)
        }

        @Test("random search is a pure function of (seed, trial)")
        func randomSearchIsPure() throws {
            let space = try SearchSpace.box(lower: -5, upper: 5, count: 3)
            let rs = RandomSearch(space: space, seed: 42)
            #expect(rs.propose(trial: 7) == RandomSearch(space: space, seed: 42).propose(trial: 7))
            #expect(rs.propose(batch: 3, startingAt: 5) == [rs.propose(trial: 5), rs.propose(trial: 6), rs.propose(trial: 7)])
            #expect(rs.propose(trial: 7) != RandomSearch(space: space, seed: 43).propose(trial: 7))
        }
    }
}

// MARK: - Bayesian optimization

/// Branin–Hoo on [−5, 10] × [0, 15]; global minimum 0.397887 at three points.
private func branin(_ x: [Double]) -> Double {
    let (a, b, c, r, s, t) = (1.0, 5.1 / (4 * Double.pi * Double.pi), 5 / Double.pi, 6.0, 10.0, 1 / (8 * Double.pi))
    let u = x[1] - b * x[0] * x[0] + c * x[0] - r
    return a * u * u + s * (1 - t) * cos(x[0]) + s
}

extension BayesOptTests {
    @Suite struct BayesianOptimizerTests {
        private let branin2D = try! SearchSpace([.uniform(lower: -5, upper: 10), .uniform(lower: 0, upper: 15)])

        @Test("BO beats random search on Branin with the same budget (average over seeds)")
        func beatsRandomSearch() throws {
            let budget = 25
            var boBest: [Double] = [], rsBest: [Double] = []
            let start = Date()
            for seed: UInt64 in [1, 2, 3] {
                let bo = BayesianOptimizer(space: branin2D, seed: seed)
                var observations: [BayesianOptimizer.Observation] = []
                var warm: GaussianProcess.Hyperparameters? = nil
                for trial in 0..<budget {
                    let proposal = try bo.propose(observations: observations, trial: trial, warmStart: warm)
                    warm = proposal.hyperparameters ?? warm
                    let x = proposal.points[0]
                    #expect(branin2D.contains(x))
                    observations.append(.init(lambda: x, loss: branin(x)))
                }
                boBest.append(observations.map(\.loss).min()!)
                let rs = RandomSearch(space: branin2D, seed: seed)
                rsBest.append((0..<budget).map { branin(rs.propose(trial: $0)) }.min()!)
                // The opening is shared: BO's random warm-up trials are random search's.
                #expect(observations[0].lambda == rs.propose(trial: 0))
            }
            let bo = boBest.reduce(0, +) / 3, rs = rsBest.reduce(0, +) / 3
            print("Branin, \(budget) evaluations: BO best \(boBest) (mean \(bo)), random search \(rsBest) (mean \(rs)); "
                  + "BO wall \(String(format: "%.2f", Date().timeIntervalSince(start))) s")
            #expect(bo < rs)
            #expect(bo < 0.397887 + 0.2, "BO should get close to the global minimum 0.397887")
        }

        /// 8 observations of Branin from the random sequence.
        private func someObservations(seed: UInt64 = 9, count: Int = 8) -> [BayesianOptimizer.Observation] {
            (0..<count).map { i in
                let x = branin2D.sample(seed: seed, index: UInt64(i))
                return .init(lambda: x, loss: branin(x))
            }
        }

        @Test("batch proposals with the constant liar and the Kriging believer are spread out",
              arguments: [(BayesianOptimizer.Liar.minimum, false), (.krigingBeliever, false), (.mean, false),
                          (.krigingBeliever, true), (.minimum, true)])
        func liarsSpreadTheBatch(liar: BayesianOptimizer.Liar, fromCandidates: Bool) throws {
            var config = BayesianOptimizer.Configuration()
            config.liar = liar
            config.batchFromCandidates = fromCandidates
            let bo = BayesianOptimizer(space: branin2D, seed: 4, configuration: config)
            let observations = someObservations()
            let batch = try bo.propose(batch: 4, observations: observations, trial: 8)
            #expect(batch.points.count == 4)
            for i in 0..<4 {
                for j in 0..<i {
                    let dist = zip(batch.points[i], batch.points[j]).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
                    #expect(dist > 1e-3, "points \(j) and \(i) coincide: \(batch.points[j]) \(batch.points[i])")
                }
            }
            #expect(batch.expectedImprovement.allSatisfy { ($0 ?? -1) >= 0 })
            // The first point of the batch is what a single proposal returns.
            #expect(try bo.propose(observations: observations, trial: 8).points[0] == batch.points[0])
        }

        @Test("a pending point changes the proposal, and proposing is deterministic")
        func pendingChangesProposal() throws {
            let bo = BayesianOptimizer(space: branin2D, seed: 4)
            let observations = someObservations()
            let alone = try bo.propose(observations: observations, trial: 9)
            let again = try bo.propose(observations: observations, trial: 9)
            #expect(alone.points == again.points)
            let withPending = try bo.propose(observations: observations, pending: alone.points, trial: 9)
            #expect(withPending.points != alone.points)
            let dist = zip(withPending.points[0], alone.points[0]).map { ($0 - $1) * ($0 - $1) }.reduce(0, +).squareRoot()
            #expect(dist > 1e-3)
        }

        @Test("warm-up proposals are random search's points; bad inputs throw")
        func warmUpAndErrors() throws {
            let bo = BayesianOptimizer(space: branin2D, seed: 8)
            #expect(bo.initialRandom == 5)
            let rs = RandomSearch(space: branin2D, seed: 8)
            let p = try bo.propose(batch: 2, observations: Array(someObservations().prefix(4)), trial: 4)
            #expect(p.points == [rs.propose(trial: 4), rs.propose(trial: 5)])
            #expect(p.hyperparameters == nil)
            #expect(throws: BayesianOptimizationError.invalidObservation(index: 0, .wrongDimension(expected: 2, actual: 1))) {
                try bo.propose(observations: [.init(lambda: [1], loss: 0)], trial: 0)
            }
            #expect(throws: BayesianOptimizationError.invalidPending(index: 0, .nonFinite(index: 1))) {
                try bo.propose(observations: [], pending: [[0, .infinity]], trial: 0)
            }
            // A diverged trial (NaN loss) counts as the worst finite loss, not as an error.
            var obs = someObservations()
            obs[2].loss = .nan
            let q = try bo.propose(observations: obs, trial: 8)
            #expect(branin2D.contains(q.points[0]))
        }

        @Test("10-D with 1,000 observations: one proposal completes (timed)")
        func largeProposal() throws {
            let h = 10
            let space = try SearchSpace.box(lower: -12, upper: 0, count: h)
            var observations: [BayesianOptimizer.Observation] = []
            for i in 0..<1000 {
                let x = space.sample(seed: 77, index: UInt64(i))
                let loss = x.enumerated().reduce(0) { $0 + Double($1.offset + 1) * 0.01 * ($1.element + 6) * ($1.element + 6) }
                    + 0.05 * sin(Double(i))
                observations.append(.init(lambda: x, loss: loss))
            }
            let pending = (1000..<1003).map { space.sample(seed: 77, index: UInt64($0)) }
            let bo = BayesianOptimizer(space: space, seed: 1)
            let start = Date()
            let proposal = try bo.propose(observations: observations, pending: pending, trial: 1003)
            let seconds = Date().timeIntervalSince(start)
            print("BO propose, H = 10, n = 1,000 (+3 pending): \(String(format: "%.2f", seconds)) s")
            #expect(space.contains(proposal.points[0]))
            let fitted = try #require(proposal.hyperparameters)
            // Reusing the hyperparameters skips the marginal-likelihood fit.
            var reuse = bo
            reuse.configuration.refitHyperparameters = false
            let start2 = Date()
            let second = try reuse.propose(observations: observations, pending: pending + proposal.points,
                                           trial: 1004, warmStart: fitted)
            print("BO propose, same, hyperparameters reused: \(String(format: "%.2f", Date().timeIntervalSince(start2))) s")
            #expect(second.hyperparameters == fitted)
            #expect(space.contains(second.points[0]))
        }
    }
}
