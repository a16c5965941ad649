import Foundation
import Linalg

/// Why a Gaussian process could not be built.
public enum GaussianProcessError: Error, Sendable, Equatable {
    /// No observations were given.
    case noObservations
    /// Input `index` has `actual` coordinates, the process `expected`.
    case dimensionMismatch(index: Int, expected: Int, actual: Int)
    /// Input or target `index` holds NaN or ±∞.
    case nonFinite(index: Int)
    /// The kernel matrix did not factor, even with jitter.
    case factorization(CholeskyError)
}

/// A zero-mean Gaussian process on standardized targets with the RBF/ARD kernel
///
///     k(x, x') = σ_f²·exp(−½ Σ_d (x_d − x'_d)²/ℓ_d²) + σ_n²·δ(x, x')
///
/// (Rasmussen & Williams 2006, eq. 2.31 with ARD, §5.4.1). Targets are standardized as
/// `ỹ = (y − mean(y))/std(y)` (population std, as scikit-learn's `normalize_y=True`); the
/// posterior is computed for ỹ and reported in the original units.
///
/// Posterior (R&W Algorithm 2.1), with `K = L·Lᵀ` over the n observations and `α = K⁻¹ỹ`:
/// `μ(x) = k(x)ᵀα`, `var(x) = σ_f² − ‖L⁻¹k(x)‖²` (latent f; `+ σ_n²` for a new noisy y).
///
/// Cost: building the model is one O(n³/3) Cholesky (n = 1,000: ~0.05–0.1 s in LAPACK);
/// predicting m points costs O(n·m·d) for the kernel plus O(n²·m) for the variances.
/// `fit` (hyperparameters by marginal likelihood) is documented there.
public struct GaussianProcess: Sendable {
    /// Kernel hyperparameters, all on the log scale.
    public struct Hyperparameters: Sendable, Equatable, Codable {
        /// log ℓ_d, one per input dimension.
        public var logLengthScales: [Double]
        /// log σ_f.
        public var logSignalStd: Double
        /// log σ_n (noise std, in standardized target units).
        public var logNoiseStd: Double

        /// Hyperparameters from their logarithms.
        public init(logLengthScales: [Double], logSignalStd: Double, logNoiseStd: Double) {
            self.logLengthScales = logLengthScales
            self.logSignalStd = logSignalStd
            self.logNoiseStd = logNoiseStd
        }

        /// Hyperparameters from their values.
        public init(lengthScales: [Double], signalStd: Double, noiseStd: Double) {
            self.init(logLengthScales: lengthScales.map { log($0) }, logSignalStd: log(signalStd),
                      logNoiseStd: log(noiseStd))
        }

        /// The input dimension d.
        public var dimension: Int { logLengthScales.count }

        /// `[log ℓ_1 … log ℓ_d, log σ_f, log σ_n]`: the order of `logMarginalLikelihood`'s gradient.
        public var vector: [Double] { logLengthScales + [logSignalStd, logNoiseStd] }

        /// The inverse of `vector`.
        public init(vector v: [Double]) {
            precondition(v.count >= 3, "Hyperparameters: vector of \(v.count) values, need d + 2 ≥ 3")
            self.init(logLengthScales: Array(v.dropLast(2)), logSignalStd: v[v.count - 2], logNoiseStd: v[v.count - 1])
        }
    }

    /// Box constraints on the log-hyperparameters during `fit`.
    public struct Bounds: Sendable, Equatable, Codable {
        /// For every log ℓ_d.
        public var logLengthScale: ClosedRange<Double>
        /// For log σ_f.
        public var logSignalStd: ClosedRange<Double>
        /// For log σ_n.
        public var logNoiseStd: ClosedRange<Double>

        /// Bounds from their ranges.
        public init(logLengthScale: ClosedRange<Double>, logSignalStd: ClosedRange<Double>,
                    logNoiseStd: ClosedRange<Double>) {
            self.logLengthScale = logLengthScale
            self.logSignalStd = logSignalStd
            self.logNoiseStd = logNoiseStd
        }

        /// For inputs scaled to the unit cube and standardized targets: ℓ ∈ [0.01, 100],
        /// σ_f ∈ [0.05, 20], σ_n ∈ [1e-3, 1] (the floor keeps K's condition number ≲ 1e12).
        public static let unitCube = Bounds(logLengthScale: log(0.01)...log(100), logSignalStd: log(0.05)...log(20),
                                            logNoiseStd: log(1e-3)...log(1))

        func lower(dimension d: Int) -> [Double] {
            Array(repeating: logLengthScale.lowerBound, count: d) + [logSignalStd.lowerBound, logNoiseStd.lowerBound]
        }

        func upper(dimension d: Int) -> [Double] {
            Array(repeating: logLengthScale.upperBound, count: d) + [logSignalStd.upperBound, logNoiseStd.upperBound]
        }
    }

    /// Log-normal priors on the length scales and the noise variance, turning `fit` from
    /// maximum likelihood into maximum a posteriori: the objective is
    /// `log p(ỹ | X, θ) + Σ_d log p(ℓ_d) + log p(σ_n²)`, each `p` a log-normal density evaluated
    /// at the hyperparameter itself (as GPyTorch/BoTorch add `prior.log_prob(ℓ)`), i.e.
    /// `log p(v) = −log v − (log v − μ)²/(2s²) + const`.
    ///
    /// Why: with n ≲ 3d observations, maximum likelihood in d dimensions tends to explain the data
    /// by a few short length scales (ℓ ≈ 0.1–0.4 in the unit cube) with every other dimension at
    /// the upper bound (irrelevant) and the noise at its floor, so the model interpolates noise and
    /// expected improvement chases the corners of the box. A prior that expects length scales to
    /// grow like √d (Hvarfner, Hellsten & Nardi 2024, "Vanilla Bayesian optimization performs great
    /// in high dimensions") keeps every dimension in play and the fit smooth.
    public struct Prior: Sendable, Equatable, Codable {
        /// A log-normal distribution: log v ~ N(mu, s²).
        public struct LogNormal: Sendable, Equatable, Codable {
            /// Mean of log v.
            public var mu: Double
            /// Std of log v.
            public var s: Double

            /// LogNormal(mu, s), s > 0.
            public init(mu: Double, s: Double) {
                precondition(mu.isFinite && s.isFinite && s > 0, "GaussianProcess.Prior.LogNormal: mu \(mu), s \(s)")
                self.mu = mu
                self.s = s
            }

            /// log p(v) + const at log v = `logValue`, and its derivative with respect to log v.
            func logDensity(logValue x: Double) -> (value: Double, derivative: Double) {
                let z = (x - mu) / s
                return (-x - 0.5 * z * z, -1 - z / s)
            }

            /// The density's mode exp(mu − s²), as a logarithm.
            var logMode: Double { mu - s * s }
        }

        /// The prior on each length scale ℓ_d (unit-cube inputs).
        public var lengthScale: LogNormal
        /// The prior on the noise variance σ_n² (standardized targets); `nil`: none.
        public var noiseVariance: LogNormal?

        /// Priors from their distributions.
        public init(lengthScale: LogNormal, noiseVariance: LogNormal? = nil) {
            self.lengthScale = lengthScale
            self.noiseVariance = noiseVariance
        }

        /// Hvarfner et al. (2024) and BoTorch's defaults: ℓ ~ LogNormal(√2 + ½·log d, √3)
        /// (median ≈ 13 at d = 10, density mode ≈ 0.65), σ_n² ~ LogNormal(−4, 1).
        public static func dimensionScaled(dimension d: Int) -> Prior {
            precondition(d >= 1, "GaussianProcess.Prior.dimensionScaled: dimension \(d)")
            return Prior(lengthScale: LogNormal(mu: 2.0.squareRoot() + 0.5 * log(Double(d)), s: 3.0.squareRoot()),
                         noiseVariance: LogNormal(mu: -4, s: 1))
        }

        /// The log prior density (up to a constant) at `theta` = `[log ℓ_1 … log ℓ_d, log σ_f, log σ_n]`
        /// and its gradient with respect to `theta` (log σ_n² = 2θ_{d+1}).
        public func logDensity(theta: [Double]) -> (value: Double, gradient: [Double]) {
            precondition(theta.count >= 3, "GaussianProcess.Prior.logDensity: \(theta.count) values, need d + 2 ≥ 3")
            let d = theta.count - 2
            var value = 0.0
            var gradient = [Double](repeating: 0, count: theta.count)
            for c in 0..<d {
                let p = lengthScale.logDensity(logValue: theta[c])
                value += p.value
                gradient[c] = p.derivative
            }
            if let noiseVariance {
                let p = noiseVariance.logDensity(logValue: 2 * theta[d + 1])
                value += p.value
                gradient[d + 1] = 2 * p.derivative
            }
            return (value, gradient)
        }

        /// The start of the first fit restart: the densities' modes, clamped into `bounds`;
        /// σ_f = 1 and, without a noise prior, σ_n = 0.1.
        func start(dimension d: Int, bounds: Bounds) -> [Double] {
            func clamp(_ v: Double, _ r: ClosedRange<Double>) -> Double { min(max(v, r.lowerBound), r.upperBound) }
            let logNoise = noiseVariance.map { 0.5 * $0.logMode } ?? log(0.1)
            return Array(repeating: clamp(lengthScale.logMode, bounds.logLengthScale), count: d)
                + [clamp(0, bounds.logSignalStd), clamp(logNoise, bounds.logNoiseStd)]
        }
    }

    /// How `fit` searches the hyperparameters.
    public struct FitOptions: Sendable, Equatable {
        /// Independent L-BFGS runs; the first starts at `initial` (or a data-based default), the
        /// others at uniform random points in `bounds`.
        public var restarts: Int = 3
        /// Marginal-likelihood evaluations (each one Cholesky and one inverse) per restart.
        public var maxEvaluations: Int = 60
        /// Hyperparameters are fitted on a random subset of at most this many observations;
        /// the returned process is then conditioned on all of them.
        public var maxFitPoints: Int = 300
        /// Box on the log-hyperparameters.
        public var bounds: Bounds = .unitCube
        /// Start of the first restart (a warm start from an earlier fit), clamped into `bounds`.
        public var initial: Hyperparameters? = nil
        /// Priors on the hyperparameters (maximum a posteriori); `nil`: maximum likelihood, as
        /// scikit-learn's `GaussianProcessRegressor`.
        public var prior: Prior? = nil
        /// Seed and counter of the Philox streams for the subset and the restart points
        /// (`stream: .proposal`, tasks 2 and 3).
        public var seed: UInt64 = 0
        /// See `seed`.
        public var step: UInt64 = 0

        /// The defaults: 3 restarts × ≤ 60 evaluations on ≤ 300 points, unit-cube bounds.
        public init() {}
    }

    /// What `fit` did.
    public struct FitReport: Sendable, Equatable {
        /// The log marginal likelihood at the fitted hyperparameters, on the fitted subset
        /// (standardized targets); without a prior, the best one found.
        public var logMarginalLikelihood: Double
        /// Marginal-likelihood evaluations over all restarts.
        public var evaluations: Int
        /// Observations the hyperparameters were fitted on.
        public var fitPoints: Int
    }

    /// The posterior at one point, in the original target units.
    public struct Prediction: Sendable, Equatable {
        /// Posterior mean.
        public var mean: Double
        /// Posterior variance (≥ 0).
        public var variance: Double
        /// √variance.
        public var std: Double { variance.squareRoot() }
    }

    /// The input dimension d.
    public let dimension: Int
    /// The kernel hyperparameters.
    public let hyperparameters: Hyperparameters
    /// Subtracted from the targets before modelling.
    public let targetMean: Double
    /// The targets are divided by this (1 when they are all equal).
    public let targetStd: Double
    /// Set when the process came from `fit`.
    public private(set) var fitReport: FitReport?

    private let x: [Double]          // n × d, row-major
    private let y: [Double]          // standardized targets
    private let factor: Cholesky
    private let alpha: [Double]      // K⁻¹ỹ
    private let kernel: Kernel

    /// The number of observations n.
    public var count: Int { y.count }

    /// The observed inputs.
    public var inputs: [[Double]] { (0..<count).map { Array(x[$0 * dimension..<($0 + 1) * dimension]) } }

    /// The diagonal jitter the Cholesky factorization needed (0 normally).
    public var jitter: Double { factor.jitter }

    /// Conditions on `(inputs, targets)` with fixed hyperparameters. Targets are standardized by
    /// their own mean and std unless `standardization` gives them (std > 0).
    public init(inputs: [[Double]], targets: [Double], hyperparameters: Hyperparameters,
                standardization given: (mean: Double, std: Double)? = nil) throws(GaussianProcessError) {
        let (flat, d) = try Self.validate(inputs: inputs, targets: targets)
        precondition(hyperparameters.dimension == d,
                     "GaussianProcess: \(hyperparameters.dimension) length scales for \(d)-dimensional inputs")
        precondition(given.map { $0.mean.isFinite && $0.std.isFinite && $0.std > 0 } ?? true,
                     "GaussianProcess: invalid standardization \(String(describing: given))")
        let (m, s) = given ?? Self.standardization(targets)
        try self.init(flat: flat, dimension: d, standardized: targets.map { ($0 - m) / s },
                      mean: m, std: s, hyperparameters: hyperparameters)
    }

    private init(flat: [Double], dimension d: Int, standardized: [Double], mean: Double, std: Double,
                 hyperparameters: Hyperparameters, factor known: Cholesky? = nil) throws(GaussianProcessError) {
        dimension = d
        self.hyperparameters = hyperparameters
        targetMean = mean
        targetStd = std
        x = flat
        y = standardized
        kernel = Kernel(hyperparameters)
        if let known {
            factor = known
        } else {
            var k = kernel.matrix(flat, count: standardized.count, dimension: d)
            for i in 0..<standardized.count { k[i * standardized.count + i] += kernel.noiseVariance }
            do { factor = try Cholesky(k, order: standardized.count) } catch { throw .factorization(error) }
        }
        alpha = factor.solve(standardized)
    }

    /// log p(ỹ | X, θ) = −½ỹᵀα − Σ log L_ii − (n/2) log 2π of the standardized targets
    /// (R&W eq. 2.30).
    public var logMarginalLikelihood: Double {
        var fit = 0.0
        for i in 0..<count { fit += y[i] * alpha[i] }
        return -0.5 * fit - 0.5 * factor.logDeterminant - 0.5 * Double(count) * log(2 * Double.pi)
    }

    // MARK: - Prediction

    /// The posterior at `point` (latent f, or a new noisy observation with `includeNoise`).
    public func predict(_ point: [Double], includeNoise: Bool = false) -> Prediction {
        predict([point], includeNoise: includeNoise)[0]
    }

    /// The posterior at each of `points`; the variances come from one multi-right-hand-side
    /// triangular solve.
    public func predict(_ points: [[Double]], includeNoise: Bool = false) -> [Prediction] {
        let m = points.count, n = count, d = dimension
        if m == 0 { return [] }
        var flat = [Double](); flat.reserveCapacity(m * d)
        for p in points {
            precondition(p.count == d, "GaussianProcess.predict: point of \(p.count) values, dimension \(d)")
            flat += p
        }
        let cross = kernel.cross(flat, count: m, x, count: n, dimension: d)   // m × n: row j = k(x_j)
        let v = factor.solveLower(columns: cross, count: m)
        var mu = [Double](repeating: 0, count: m)
        cross.withUnsafeBufferPointer { c in
            alpha.withUnsafeBufferPointer { a in
                mu.withUnsafeMutableBufferPointer { out in
                    Double.gemv(trans: false, m: m, n: n, alpha: 1, a: c.baseAddress!, lda: n,
                                x: a.baseAddress!, beta: 0, y: out.baseAddress!)
                }
            }
        }
        let prior = kernel.signalVariance + (includeNoise ? kernel.noiseVariance : 0)
        return v.withUnsafeBufferPointer { vb in
            (0..<m).map { j in
                var explained = 0.0
                for i in j * n..<(j + 1) * n { explained += vb[i] * vb[i] }
                return Prediction(mean: targetMean + targetStd * mu[j],
                                  variance: targetStd * targetStd * max(prior - explained, 0))
            }
        }
    }

    /// The posterior of latent f at `point` with the gradients of its mean and std with respect
    /// to `point`: ∂μ/∂x_d = Σ_i α_i ∂k_i/∂x_d, ∂var/∂x_d = −2 (K⁻¹k)ᵀ ∂k/∂x_d, with
    /// ∂k_i/∂x_d = −k_i (x_d − X_id)/ℓ_d². The std gradient is 0 where the variance is 0.
    public func predictWithGradient(_ point: [Double])
        -> (prediction: Prediction, meanGradient: [Double], stdGradient: [Double])
    {
        let n = count, d = dimension
        precondition(point.count == d, "GaussianProcess.predictWithGradient: point of \(point.count) values, dimension \(d)")
        let k = kernel.cross(point, count: 1, x, count: n, dimension: d)
        var mu = 0.0
        for i in 0..<n { mu += k[i] * alpha[i] }
        var w = k
        factor.solveLower(inPlace: &w)
        let explained = w.reduce(0) { $0 + $1 * $1 }
        factor.solveUpper(inPlace: &w)
        let variance = max(kernel.signalVariance - explained, 0)
        var dMu = [Double](repeating: 0, count: d), dVar = [Double](repeating: 0, count: d)
        for i in 0..<n {
            for c in 0..<d {
                let dk = -k[i] * (point[c] - x[i * d + c]) * kernel.inverseSquaredLengthScales[c]
                dMu[c] += alpha[i] * dk
                dVar[c] -= 2 * w[i] * dk
            }
        }
        let sd = variance.squareRoot()
        let s = targetStd
        return (Prediction(mean: targetMean + s * mu, variance: s * s * variance),
                dMu.map { s * $0 },
                dVar.map { sd > 0 ? s * $0 / (2 * sd) : 0 })
    }

    /// This process conditioned on one more observation `(point, target)` (original units,
    /// same hyperparameters and standardization): an O(n²) extension of the Cholesky factor,
    /// or a full refactorization (with jitter) when the new point nearly duplicates an old one.
    /// Used for the constant-liar and Kriging-believer fantasies of batch Bayesian optimization.
    public func conditioned(on point: [Double], target: Double) throws(GaussianProcessError) -> GaussianProcess {
        precondition(point.count == dimension,
                     "GaussianProcess.conditioned: point of \(point.count) values, dimension \(dimension)")
        guard point.allSatisfy(\.isFinite), target.isFinite else { throw .nonFinite(index: count) }
        let column = kernel.cross(point, count: 1, x, count: count, dimension: dimension)
        let grown = try? factor.appending(column: column, diagonal: kernel.signalVariance + kernel.noiseVariance)
        var next = try GaussianProcess(flat: x + point, dimension: dimension,
                                       standardized: y + [(target - targetMean) / targetStd],
                                       mean: targetMean, std: targetStd, hyperparameters: hyperparameters,
                                       factor: grown)
        next.fitReport = fitReport
        return next
    }

    // MARK: - Marginal likelihood

    /// The log marginal likelihood of the standardized `targets` and its gradient with respect to
    /// `hyperparameters.vector` = `[log ℓ_1 … log ℓ_d, log σ_f, log σ_n]` (R&W eq. 5.9):
    /// `∂/∂θ_j = ½ tr((ααᵀ − K⁻¹) ∂K/∂θ_j)`.
    public static func logMarginalLikelihood(inputs: [[Double]], targets: [Double], hyperparameters: Hyperparameters)
        throws(GaussianProcessError) -> (value: Double, gradient: [Double])
    {
        let (flat, d) = try validate(inputs: inputs, targets: targets)
        precondition(hyperparameters.dimension == d,
                     "GaussianProcess: \(hyperparameters.dimension) length scales for \(d)-dimensional inputs")
        let (m, s) = standardization(targets)
        do {
            return try marginalLikelihood(flat, dimension: d, targets: targets.map { ($0 - m) / s },
                                          theta: hyperparameters.vector)
        } catch {
            throw .factorization(error)
        }
    }

    /// One evaluation: O(n²d) for the kernel and its derivatives, O(n³) for the factor and K⁻¹.
    static func marginalLikelihood(_ x: [Double], dimension d: Int, targets y: [Double], theta: [Double])
        throws(CholeskyError) -> (value: Double, gradient: [Double])
    {
        let n = y.count
        let kernel = Kernel(Hyperparameters(vector: theta))
        let kf = kernel.matrix(x, count: n, dimension: d)
        var k = kf
        for i in 0..<n { k[i * n + i] += kernel.noiseVariance }
        let factor = try Cholesky(k, order: n)
        let alpha = factor.solve(y)
        var fit = 0.0
        for i in 0..<n { fit += y[i] * alpha[i] }
        let value = -0.5 * fit - 0.5 * factor.logDeterminant - 0.5 * Double(n) * log(2 * Double.pi)

        // W = ααᵀ − K⁻¹ (symmetric); accumulate ½ Σ_ik W_ik ∂K_ik/∂θ over i > k twice, plus i = k.
        let inv = factor.inverse()
        var gradient = [Double](repeating: 0, count: d + 2)
        var traceW = 0.0, signal = 0.0
        x.withUnsafeBufferPointer { xb in
            alpha.withUnsafeBufferPointer { a in
                inv.withUnsafeBufferPointer { ib in
                    kf.withUnsafeBufferPointer { kb in
                        gradient.withUnsafeMutableBufferPointer { g in
                            for i in 0..<n {
                                let wii = a[i] * a[i] - ib[i * n + i]
                                traceW += wii
                                signal += wii * kb[i * n + i]
                                for j in 0..<i {
                                    let wk = (a[i] * a[j] - ib[i * n + j]) * kb[i * n + j]
                                    signal += 2 * wk
                                    for c in 0..<d {
                                        let delta = xb[i * d + c] - xb[j * d + c]
                                        g[c] += wk * delta * delta
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        for c in 0..<d { gradient[c] *= kernel.inverseSquaredLengthScales[c] }  // ½·2 (pairs i > k)
        gradient[d] = signal                                                     // ½ Σ W ⊙ 2K_f
        gradient[d + 1] = kernel.noiseVariance * traceW                          // ½ tr(W)·2σ_n²
        return (value, gradient)
    }

    // MARK: - Fitting

    /// Fits the hyperparameters by maximizing the log marginal likelihood (plus the log prior
    /// when `options.prior` is set; analytic gradient, box-constrained L-BFGS,
    /// `options.restarts` starts × ≤ `options.maxEvaluations` evaluations), then conditions on
    /// all observations.
    ///
    /// Cost: each evaluation is a Cholesky plus an inverse of the fit set (O(n³), n ≤
    /// `maxFitPoints` = 300: a few ms) and O(n²d) for the kernel gradient, so a full fit is at most
    /// 3 × 60 evaluations ≈ 0.5–1 s at n = 300. Above `maxFitPoints` observations the
    /// hyperparameters come from a uniformly random subset (they are global properties of the
    /// function, which 300 points estimate well); the final model still conditions on all n
    /// points (one O(n³) Cholesky).
    public static func fit(inputs: [[Double]], targets: [Double], options: FitOptions = FitOptions())
        throws(GaussianProcessError) -> GaussianProcess
    {
        precondition(options.restarts >= 1 && options.maxEvaluations >= 1 && options.maxFitPoints >= 2,
                     "GaussianProcess.fit: restarts \(options.restarts), maxEvaluations \(options.maxEvaluations), maxFitPoints \(options.maxFitPoints)")
        let (flat, d) = try validate(inputs: inputs, targets: targets)
        let (m, s) = standardization(targets)
        let ys = targets.map { ($0 - m) / s }
        let n = ys.count

        // The fit subset: a partial Fisher–Yates shuffle, then sorted (order does not matter to
        // the likelihood, but sorted keeps the arithmetic reproducible to read).
        var fitX = flat, fitY = ys
        if n > options.maxFitPoints {
            var rng = Philox(seed: options.seed, step: options.step, task: 2, stream: RandomStream.proposal.rawValue)
            var order = Array(0..<n)
            for i in 0..<options.maxFitPoints { order.swapAt(i, i + rng.nextInt(below: n - i)) }
            let chosen = order[0..<options.maxFitPoints].sorted()
            fitX = chosen.flatMap { flat[$0 * d..<($0 + 1) * d] }
            fitY = chosen.map { ys[$0] }
        }

        let lower = options.bounds.lower(dimension: d), upper = options.bounds.upper(dimension: d)
        var starts: [[Double]] = [options.initial?.vector
            ?? options.prior?.start(dimension: d, bounds: options.bounds)
            ?? defaultStart(fitX, count: fitY.count, dimension: d)]
        var rng = Philox(seed: options.seed, step: options.step, task: 3, stream: RandomStream.proposal.rawValue)
        for _ in 1..<options.restarts {
            starts.append(zip(lower, upper).map { lo, hi in lo + rng.nextUnit() * (hi - lo) })
        }
        let minimizer = BoxMinimizer(lower: lower, upper: upper, maxEvaluations: options.maxEvaluations)
        var best: (theta: [Double], value: Double)? = nil
        var evaluations = 0
        for start in starts {
            let result = minimizer.minimize(from: start) { theta in
                guard var r = try? marginalLikelihood(fitX, dimension: d, targets: fitY, theta: theta),
                      r.value.isFinite, r.gradient.allSatisfy(\.isFinite) else { return nil }
                if let prior = options.prior {
                    let p = prior.logDensity(theta: theta)
                    r.value += p.value
                    for j in r.gradient.indices { r.gradient[j] += p.gradient[j] }
                }
                return (-r.value, r.gradient.map { -$0 })
            }
            evaluations += result.evaluations
            if result.value.isFinite, best == nil || result.value < best!.value { best = (result.x, result.value) }
        }
        // Every start failed to factor: fall back to the (clamped) first start with a large noise.
        var theta = best?.theta ?? zip(starts[0], zip(lower, upper)).map { min(max($0, $1.0), $1.1) }
        if best == nil { theta[d + 1] = upper[d + 1] }
        var gp = try GaussianProcess(flat: flat, dimension: d, standardized: ys, mean: m, std: s,
                                     hyperparameters: Hyperparameters(vector: theta))
        let logPrior = best.flatMap { b in options.prior?.logDensity(theta: b.theta).value } ?? 0
        gp.fitReport = FitReport(logMarginalLikelihood: -(best?.value ?? .infinity) - logPrior, evaluations: evaluations,
                                 fitPoints: fitY.count)
        return gp
    }

    /// ℓ_d = the inputs' std in dimension d (0.3 for a degenerate one), σ_f = 1, σ_n = 0.1.
    private static func defaultStart(_ x: [Double], count n: Int, dimension d: Int) -> [Double] {
        var start = [Double]()
        for c in 0..<d {
            var mean = 0.0, sq = 0.0
            for i in 0..<n { mean += x[i * d + c] }
            mean /= Double(n)
            for i in 0..<n { sq += (x[i * d + c] - mean) * (x[i * d + c] - mean) }
            let sd = (sq / Double(n)).squareRoot()
            start.append(log(sd > 0 ? sd : 0.3))
        }
        return start + [0, log(0.1)]
    }

    // MARK: - Helpers

    private static func validate(inputs: [[Double]], targets: [Double]) throws(GaussianProcessError) -> ([Double], Int) {
        guard let first = inputs.first, !targets.isEmpty else { throw .noObservations }
        precondition(inputs.count == targets.count,
                     "GaussianProcess: \(inputs.count) inputs but \(targets.count) targets")
        let d = first.count
        precondition(d > 0, "GaussianProcess: inputs need at least one dimension")
        var flat = [Double](); flat.reserveCapacity(inputs.count * d)
        for (i, p) in inputs.enumerated() {
            guard p.count == d else { throw .dimensionMismatch(index: i, expected: d, actual: p.count) }
            guard p.allSatisfy(\.isFinite), targets[i].isFinite else { throw .nonFinite(index: i) }
            flat += p
        }
        return (flat, d)
    }

    /// Mean and population std of `y` (std 1 when the targets are all equal).
    private static func standardization(_ y: [Double]) -> (mean: Double, std: Double) {
        let n = Double(y.count)
        let mean = y.reduce(0, +) / n
        let variance = y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        let std = variance.squareRoot()
        return (mean, std > 1e-12 * max(1, abs(mean)) ? std : 1)
    }
}

/// The RBF/ARD kernel's constants and its matrices.
private struct Kernel: Sendable {
    let inverseSquaredLengthScales: [Double]
    let signalVariance: Double
    let noiseVariance: Double

    init(_ h: GaussianProcess.Hyperparameters) {
        inverseSquaredLengthScales = h.logLengthScales.map { exp(-2 * $0) }
        signalVariance = exp(2 * h.logSignalStd)
        noiseVariance = exp(2 * h.logNoiseStd)
    }

    /// `σ_f² exp(−½ Σ_d (a_d − b_d)²/ℓ_d²)` for each row of `a` (m × d) against each row of `b`
    /// (n × d): m × n, row-major.
    func cross(_ a: [Double], count m: Int, _ b: [Double], count n: Int, dimension d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: m * n)
        a.withUnsafeBufferPointer { ab in
            b.withUnsafeBufferPointer { bb in
                inverseSquaredLengthScales.withUnsafeBufferPointer { il in
                    out.withUnsafeMutableBufferPointer { o in
                        for j in 0..<m {
                            for i in 0..<n {
                                var r2 = 0.0
                                for c in 0..<d {
                                    let delta = ab[j * d + c] - bb[i * d + c]
                                    r2 += delta * delta * il[c]
                                }
                                o[j * n + i] = signalVariance * exp(-0.5 * r2)
                            }
                        }
                    }
                }
            }
        }
        return out
    }

    /// The n × n signal part K_f of the kernel matrix (no noise), symmetric.
    func matrix(_ x: [Double], count n: Int, dimension d: Int) -> [Double] {
        var out = [Double](repeating: 0, count: n * n)
        x.withUnsafeBufferPointer { xb in
            inverseSquaredLengthScales.withUnsafeBufferPointer { il in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<n {
                        o[i * n + i] = signalVariance
                        for j in 0..<i {
                            var r2 = 0.0
                            for c in 0..<d {
                                let delta = xb[i * d + c] - xb[j * d + c]
                                r2 += delta * delta * il[c]
                            }
                            let v = signalVariance * exp(-0.5 * r2)
                            o[i * n + j] = v
                            o[j * n + i] = v
                        }
                    }
                }
            }
        }
        return out
    }
}

/// Box-constrained L-BFGS (projected quasi-Newton; Bertsekas 1982, with the L-BFGS two-loop
/// recursion of Nocedal 1980 on the free variables) and an Armijo backtracking line search.
/// Minimizes; `objective` returns `nil` where it cannot be evaluated (treated as +∞).
struct BoxMinimizer {
    var lower: [Double]
    var upper: [Double]
    var maxEvaluations: Int
    var memory = 6
    /// Largest change of any coordinate in one step.
    var maxStep = 2.0
    var gradientTolerance = 1e-6

    func minimize(from start: [Double], _ objective: ([Double]) -> (value: Double, gradient: [Double])?)
        -> (x: [Double], value: Double, evaluations: Int)
    {
        let dim = start.count
        var x = project(start)
        var evaluations = 1
        guard var (fx, g) = objective(x) else { return (x, .infinity, evaluations) }
        var s: [[Double]] = [], y: [[Double]] = []
        while evaluations < maxEvaluations {
            // Variables held at a bound by the gradient do not move.
            var free = [Bool](repeating: true, count: dim)
            var pg = g
            for i in 0..<dim where (x[i] <= lower[i] && g[i] > 0) || (x[i] >= upper[i] && g[i] < 0) {
                free[i] = false
                pg[i] = 0
            }
            if pg.reduce(0, { max($0, abs($1)) }) < gradientTolerance { break }
            var direction = twoLoop(pg, s, y).map { -$0 }
            for i in 0..<dim where !free[i] { direction[i] = 0 }
            if zip(direction, pg).reduce(0, { $0 + $1.0 * $1.1 }) >= 0 {
                direction = pg.map { -$0 }
                s.removeAll(); y.removeAll()
            }
            let longest = direction.reduce(0) { max($0, abs($1)) }
            var t = min(1, maxStep / longest)
            var accepted: (x: [Double], value: Double, gradient: [Double])? = nil
            while evaluations < maxEvaluations {
                let trial = project(zip(x, direction).map { $0 + t * $1 })
                if trial == x { break }
                evaluations += 1
                if let (fv, gv) = objective(trial) {
                    let decrease = zip(g, zip(trial, x)).reduce(0) { $0 + $1.0 * ($1.1.0 - $1.1.1) }
                    if fv <= fx + 1e-4 * decrease { accepted = (trial, fv, gv); break }
                }
                t *= 0.25
            }
            guard let next = accepted else {
                if s.isEmpty { break }
                s.removeAll(); y.removeAll()   // a stale curvature model; retry along −∇
                continue
            }
            let sk = zip(next.x, x).map { $0 - $1 }, yk = zip(next.gradient, g).map { $0 - $1 }
            if zip(sk, yk).reduce(0, { $0 + $1.0 * $1.1 }) > 1e-12 {
                s.append(sk); y.append(yk)
                if s.count > memory { s.removeFirst(); y.removeFirst() }
            }
            let improvement = fx - next.value
            x = next.x; fx = next.value; g = next.gradient
            if improvement <= 1e-10 * max(1, abs(fx)) { break }
        }
        return (x, fx, evaluations)
    }

    private func project(_ v: [Double]) -> [Double] {
        (0..<v.count).map { min(max(v[$0], lower[$0]), upper[$0]) }
    }

    /// H·q by the L-BFGS two-loop recursion, with H₀ = (sᵀy / yᵀy)·I.
    private func twoLoop(_ q0: [Double], _ s: [[Double]], _ y: [[Double]]) -> [Double] {
        func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }
        var q = q0
        var a = [Double](repeating: 0, count: s.count)
        for k in stride(from: s.count - 1, through: 0, by: -1) {
            a[k] = dot(s[k], q) / dot(y[k], s[k])
            for i in q.indices { q[i] -= a[k] * y[k][i] }
        }
        if let sl = s.last, let yl = y.last {
            let gamma = dot(sl, yl) / dot(yl, yl)
            for i in q.indices { q[i] *= gamma }
        }
        for k in 0..<s.count {
            let b = dot(y[k], q) / dot(y[k], s[k])
            for i in q.indices { q[i] += (a[k] - b) * s[k][i] }
        }
        return q
    }
}
