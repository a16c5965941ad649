import Foundation
import Linalg

/// Why Bayesian optimization could not propose a point.
public enum BayesianOptimizationError: Error, Sendable, Equatable {
    /// Observation `index` has the wrong number of coordinates or a non-finite one.
    case invalidObservation(index: Int, SearchSpaceError)
    /// Pending point `index` has the wrong number of coordinates or a non-finite one.
    case invalidPending(index: Int, SearchSpaceError)
    /// The Gaussian process could not be built.
    case model(GaussianProcessError)
}

/// Bayesian optimization of the validation loss over λ (Snoek, Larochelle & Adams 2012):
/// a Gaussian process (`GaussianProcess`, RBF/ARD; hyperparameters by marginal likelihood plus
/// the dimension-scaled log-normal priors of Hvarfner et al. 2024, see `Configuration.prior`)
/// models loss(λ), and the next λ maximizes expected improvement (`ExpectedImprovement`).
///
/// Proposing is a pure function of (configuration, observations, pending points, `seed`,
/// `trial`): no hidden state, so a coordinator can call it from any process or after a restart.
///
/// - Coordinates: the GP works on `u = space.toUnit(λ)`, the search box scaled to [0, 1]^H
///   (a Gaussian-prior dimension searches `mean ± 3σ` within its clip bounds).
/// - Warm-up: while fewer than `initialRandom` observations are finite, trial `t` gets
///   `space.sample(seed:index: t)` — the very point random search would evaluate.
/// - Pending trials (running on busy workers) and earlier points of the same batch enter as
///   fantasy observations whose value is the `liar` (Ginsbourger, Le Riche & Carraro 2010):
///   the hyperparameters are fitted on the real observations only, then the GP is conditioned
///   on the pending points in one block (O(n²p)) and on each earlier batch point in turn.
/// - Acquisition: `candidates` points (80 % drawn from the search space, 20 % Gaussian
///   perturbations of the best observations), ranked by log EI; the best `refine` are polished
///   by box-constrained L-BFGS on log EI (analytic gradient), ≤ `refineEvaluations` each.
/// - Randomness: candidates of trial `t` come from `Philox(seed, step: t, task: 1,
///   stream: .proposal)`; the GP fit uses tasks 2 and 3 of the same step.
///
/// Cost at n observations in H dimensions: one GP fit (≤ 3 × 60 marginal-likelihood
/// evaluations on ≤ 300 points), one O(n³) Cholesky on all n, and per proposed point
/// O(n·C·H + n²·C) for C candidates (the variances' triangular solve dominates:
/// n = 1,000, C = 2,000 is 2·10⁹ flops). At large n the hyperparameter fit is most of a
/// proposal, which is why `refitHyperparameters = false` with a warm start exists; at the
/// 32–100 observations of a study every part is small.
/// Results are bit-reproducible for a given BLAS build and thread count.
public struct BayesianOptimizer: Sendable {
    /// One finished trial.
    public struct Observation: Sendable, Equatable, Codable {
        /// The hyperparameters.
        public var lambda: [Double]
        /// The loss to minimize (validation loss). Non-finite losses (diverged trials) are
        /// replaced by the worst finite one.
        public var loss: Double

        /// A finished trial.
        public init(lambda: [Double], loss: Double) {
            self.lambda = lambda
            self.loss = loss
        }
    }

    /// The value a pending point is assumed to have until its trial reports.
    public enum Liar: Sendable, Equatable, Codable {
        /// Constant liar, the lowest observed loss (CL-min). With the long length scales of the
        /// dimension-scaled prior one optimistic fantasy lowers the mean over a wide neighbourhood,
        /// and the next proposal lands near the pending one: with `--parallel 2` on the
        /// per-class problem this lost to random search (docs/baselines.md).
        case minimum
        /// Constant liar, the mean observed loss.
        case mean
        /// Constant liar, the highest observed loss (CL-max).
        case maximum
        /// Constant liar with a given value (original loss units).
        case constant(Double)
        /// Kriging believer: the GP's posterior mean at the point.
        case krigingBeliever
    }

    /// The prior on the GP's hyperparameters.
    public enum ModelPrior: Sendable, Equatable {
        /// Maximum likelihood (no prior).
        case none
        /// `GaussianProcess.Prior.dimensionScaled(dimension: H)`: length scales ~ LogNormal(√2 +
        /// ½·log H, √3), noise variance ~ LogNormal(−4, 1) (Hvarfner et al. 2024).
        case dimensionScaled
        /// A given prior.
        case custom(GaussianProcess.Prior)
    }

    /// The knobs; the defaults suit H ≤ 10 and up to ~1,000 observations.
    public struct Configuration: Sendable, Equatable {
        /// Random trials before the model is used; `nil` means min(2H + 1, 5).
        public var initialRandom: Int? = nil
        /// Random candidates scored per proposed point.
        public var candidates: Int = 2_000
        /// Share of candidates that perturb the best observations instead of sampling the space.
        public var localFraction: Double = 0.2
        /// How many of the best candidates are refined by gradient steps.
        public var refine: Int = 5
        /// EI evaluations per refined candidate.
        public var refineEvaluations: Int = 20
        /// ξ, the exploration margin of EI, in units of the observed losses' std.
        public var xi: Double = 0.01
        /// How pending points and earlier points of a batch are filled in. The Kriging believer by
        /// default: CL-min lost to random search with two workers (see `Liar.minimum`).
        public var liar: Liar = .krigingBeliever
        /// How the GP's hyperparameters are fitted (`seed`, `step`, `initial` and `prior` are set
        /// per call).
        public var fit = GaussianProcess.FitOptions()
        /// The prior on the GP's hyperparameters (maximum a posteriori fit). Without one, on the
        /// 10-hyperparameter per-class problem the maximum-likelihood fit keeps 2–4 short length
        /// scales, sets the rest to the bound and the noise to its floor, and EI spends the
        /// trials in corners of the box (docs/baselines.md).
        public var prior: ModelPrior = .dimensionScaled
        /// Batches (`propose(batch:)`): when `true`, the points after the first are picked from
        /// one shared candidate set whose posterior each fantasy updates in O(m·n)
        /// (`GaussianProcess.CandidatePosterior`), without the L-BFGS polish, instead of a new
        /// candidate set, an O(n²·m) solve and a polish per point. A batch then costs about one
        /// proposal; for a coordinator serving many workers at hundreds of observations.
        public var batchFromCandidates: Bool = false
        /// When `false` and `propose` gets a `warmStart`, those hyperparameters are used as they
        /// are, without a marginal-likelihood fit (saves the fit's ≤ 180 evaluations, each an
        /// O(n³) factorisation of the fit set; refit every few trials instead).
        public var refitHyperparameters: Bool = true

        /// The defaults.
        public init() {}
    }

    /// What `propose` returns.
    public struct Proposal: Sendable, Equatable {
        /// The proposed λs, in trial order.
        public var points: [[Double]]
        /// EI of each point when it was chosen (original loss units); `nil` for a random point.
        public var expectedImprovement: [Double?]
        /// The GP hyperparameters used (pass back as `warmStart`); `nil` if no model was fitted.
        public var hyperparameters: GaussianProcess.Hyperparameters?
    }

    /// Where λ is searched.
    public let space: SearchSpace
    /// The run seed.
    public let seed: UInt64
    /// Candidate counts, refinement budget, GP prior and refit policy.
    public var configuration: Configuration

    /// An optimizer over `space`.
    public init(space: SearchSpace, seed: UInt64, configuration: Configuration = Configuration()) {
        self.space = space
        self.seed = seed
        self.configuration = configuration
    }

    /// Random trials before the model is used.
    public var initialRandom: Int { configuration.initialRandom ?? min(2 * space.count + 1, 5) }

    /// The λ for trial `trial`, given the finished `observations` and the λs of trials still
    /// running (`pending`). `warmStart` (an earlier proposal's hyperparameters) starts the first
    /// GP fit restart.
    public func propose(observations: [Observation], pending: [[Double]] = [], trial: Int,
                        warmStart: GaussianProcess.Hyperparameters? = nil) throws(BayesianOptimizationError) -> Proposal
    {
        try propose(batch: 1, observations: observations, pending: pending, trial: trial, warmStart: warmStart)
    }

    /// λs for trials `trial ..< trial + batch`, chosen one after another, each earlier one
    /// entering the model as a fantasy observation valued by `configuration.liar`.
    public func propose(batch: Int, observations: [Observation], pending: [[Double]] = [], trial: Int,
                        warmStart: GaussianProcess.Hyperparameters? = nil) throws(BayesianOptimizationError) -> Proposal
    {
        precondition(batch >= 0 && trial >= 0, "BayesianOptimizer.propose: batch \(batch), trial \(trial)")
        for (i, o) in observations.enumerated() {
            if let e = pointError(o.lambda) { throw .invalidObservation(index: i, e) }
        }
        for (i, p) in pending.enumerated() {
            if let e = pointError(p) { throw .invalidPending(index: i, e) }
        }
        let finite = observations.map(\.loss).filter(\.isFinite)
        guard finite.count >= max(initialRandom, 1), batch > 0 else {
            return Proposal(points: (0..<batch).map { space.sample(seed: seed, index: UInt64(trial + $0)) },
                            expectedImprovement: Array(repeating: nil, count: batch), hyperparameters: nil)
        }
        let worst = finite.max()!
        let inputs = observations.map { space.toUnit($0.lambda) }
        let losses = observations.map { $0.loss.isFinite ? $0.loss : worst }

        var options = configuration.fit
        options.seed = seed
        options.step = UInt64(trial)
        options.initial = warmStart.map { clampedWarmStart($0, options.bounds) } ?? options.initial
        options.prior = switch configuration.prior {
        case .none: nil
        case .dimensionScaled: GaussianProcess.Prior.dimensionScaled(dimension: space.count)
        case let .custom(p): p
        }
        var model: GaussianProcess
        do {
            if !configuration.refitHyperparameters, let fixed = options.initial {
                model = try GaussianProcess(inputs: inputs, targets: losses, hyperparameters: fixed)
            } else {
                model = try GaussianProcess.fit(inputs: inputs, targets: losses, options: options)
            }
        } catch {
            throw .model(error)
        }
        let hyperparameters = model.hyperparameters

        let constantLie: Double? = switch configuration.liar {
        case .minimum: losses.min()!
        case .maximum: losses.max()!
        case .mean: losses.reduce(0, +) / Double(losses.count)
        case let .constant(v): v
        case .krigingBeliever: nil
        }
        var incumbent = losses.min()!
        func fantasize(_ u: [Double]) throws(BayesianOptimizationError) {
            let lie = constantLie ?? model.predict(u).mean
            incumbent = min(incumbent, lie)
            do { model = try model.conditioned(on: u, target: lie) } catch { throw .model(error) }
        }
        if pending.count > 1 {
            // Every pending point at once (one block extension of the factor). The same model
            // as fantasizing them in turn: a constant liar's values do not depend on the order,
            // and a Kriging believer's value is the posterior mean, which conditioning on a
            // point at its own posterior mean leaves unchanged — so each is the mean before any
            // fantasy (equal up to rounding).
            let us = pending.map { space.toUnit($0) }
            let lies = constantLie.map { Array(repeating: $0, count: us.count) } ?? model.predict(us).map(\.mean)
            incumbent = min(incumbent, lies.min()!)
            do { model = try model.conditioned(on: us, targets: lies) } catch { throw .model(error) }
        } else {
            for p in pending { try fantasize(space.toUnit(p)) }
        }

        // The best observations seed the local candidates.
        let bestInputs = losses.indices.sorted { losses[$0] < losses[$1] }.prefix(5).map { inputs[$0] }
        var points: [[Double]] = [], scores: [Double?] = []
        for j in 0..<batch {
            let ei = ExpectedImprovement(best: incumbent, xi: configuration.xi * model.targetStd)
            let (u, value) = maximize(ei, model: model, trial: trial + j, near: bestInputs)
            points.append(space.clip(space.fromUnit(u)))
            scores.append(value)
            if j + 1 < batch { try fantasize(space.toUnit(points[j])) }
            if j == 0 && batch > 1 && configuration.batchFromCandidates { break }
        }
        if points.count < batch {
            // The rest of the batch from one candidate set, each point conditioned on the ones
            // before (the same liar), picked by log EI.
            var set = model.candidatePosterior(candidates(trial: trial + 1, near: bestInputs), capacity: batch)
            var taken = Set<Int>()
            while points.count < batch {
                let ei = ExpectedImprovement(best: incumbent, xi: configuration.xi * model.targetStd)
                var best = -1, bestScore = -Double.infinity
                for c in set.points.indices where !taken.contains(c) {
                    let p = set.prediction(c)
                    let score = ei.logValue(mean: p.mean, std: p.std)
                    if best < 0 || score > bestScore { (best, bestScore) = (c, score) }
                }
                guard best >= 0 else { break }
                taken.insert(best)
                let p = set.prediction(best)
                points.append(space.clip(space.fromUnit(set.points[best])))
                scores.append(ei.value(mean: p.mean, std: p.std))
                let lie = constantLie ?? p.mean
                incumbent = min(incumbent, lie)
                if points.count < batch && !set.condition(onPoint: best, target: lie) { break }
            }
            while points.count < batch {
                // (Only when the candidates ran out.) Random points, as in the warm-up.
                points.append(space.sample(seed: seed, index: UInt64(trial + points.count)))
                scores.append(nil)
            }
        }
        return Proposal(points: points, expectedImprovement: scores, hyperparameters: hyperparameters)
    }

    // MARK: - Private

    private func pointError(_ lambda: [Double]) -> SearchSpaceError? {
        guard lambda.count == space.count else { return .wrongDimension(expected: space.count, actual: lambda.count) }
        if let i = lambda.firstIndex(where: { !$0.isFinite }) { return .nonFinite(index: i) }
        return nil
    }

    private func clampedWarmStart(_ h: GaussianProcess.Hyperparameters, _ b: GaussianProcess.Bounds)
        -> GaussianProcess.Hyperparameters?
    {
        guard h.dimension == space.count, h.vector.allSatisfy(\.isFinite) else { return nil }
        let lo = b.lower(dimension: space.count), hi = b.upper(dimension: space.count)
        return GaussianProcess.Hyperparameters(vector: (0..<lo.count).map { min(max(h.vector[$0], lo[$0]), hi[$0]) })
    }

    /// The candidates of trial `trial`: `configuration.candidates` points, most drawn from the
    /// space, `localFraction` of them Gaussian perturbations of `best` (unit cube).
    private func candidates(trial: Int, near best: [[Double]]) -> [[Double]] {
        let h = space.count
        var rng = Philox(seed: seed, step: UInt64(trial), task: 1, stream: RandomStream.proposal.rawValue)
        let total = max(configuration.candidates, 1)
        let local = best.isEmpty ? 0 : Int(Double(total) * min(max(configuration.localFraction, 0), 1))
        var candidates: [[Double]] = []
        candidates.reserveCapacity(total)
        for _ in 0..<(total - local) {
            candidates.append(space.toUnit(space.sample(using: &rng)).map { min(max($0, 0), 1) })
        }
        for i in 0..<local {
            let center = best[i % best.count]
            let scale = [0.01, 0.05, 0.15][i % 3]
            candidates.append((0..<h).map { min(max(center[$0] + scale * rng.nextNormal(), 0), 1) })
        }
        return candidates
    }

    /// The unit-cube point of largest EI: candidates scored by log EI, the best refined.
    private func maximize(_ ei: ExpectedImprovement, model: GaussianProcess, trial: Int, near best: [[Double]])
        -> (u: [Double], ei: Double)
    {
        let h = space.count
        let candidates = candidates(trial: trial, near: best)

        let predictions = model.predict(candidates)
        let scores = predictions.map { ei.logValue(mean: $0.mean, std: $0.std) }
        let ranked = scores.indices.sorted { (scores[$0], $1) > (scores[$1], $0) }  // ties: lower index first
        var bestU = candidates[ranked[0]], bestScore = scores[ranked[0]]

        let minimizer = BoxMinimizer(lower: Array(repeating: 0, count: h), upper: Array(repeating: 1, count: h),
                                     maxEvaluations: max(configuration.refineEvaluations, 1), maxStep: 0.1)
        let stdFloor = 1e-9 * model.targetStd
        for index in ranked.prefix(max(configuration.refine, 0)) where scores[index] > -.infinity {
            let result = minimizer.minimize(from: candidates[index]) { u in
                let (p, dm, ds) = model.predictWithGradient(u)
                guard p.std > stdFloor else { return nil }
                let (v, g) = ei.logValueAndGradient(mean: p.mean, std: p.std, meanGradient: dm, stdGradient: ds)
                guard v.isFinite, g.allSatisfy(\.isFinite) else { return nil }
                return (-v, g.map { -$0 })
            }
            if -result.value > bestScore {
                bestScore = -result.value
                bestU = result.x
            }
        }
        let p = model.predict(bestU)
        return (bestU, ei.value(mean: p.mean, std: p.std))
    }
}
