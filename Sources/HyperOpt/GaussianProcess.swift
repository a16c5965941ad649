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
/// Cost: building the model is one O(n³/3) Cholesky (LAPACK);
/// predicting m points costs O(n·m·d) for the kernel plus O(n²·m) for the variances.
/// `fit` (hyperparameters by marginal likelihood, `GaussianProcess+Fitting.swift`) is documented
/// there; the kernel is ``ARDKernel``.
public struct GaussianProcess: Sendable {
    /// Kernel hyperparameters, all on the log scale.
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
    public internal(set) var fitReport: FitReport?

    private let x: [Double]          // n × d, row-major
    private let y: [Double]          // standardized targets
    private let factor: Cholesky
    private let alpha: [Double]      // K⁻¹ỹ
    private let kernel: ARDKernel

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

    init(flat: [Double], dimension d: Int, standardized: [Double], mean: Double, std: Double,
                 hyperparameters: Hyperparameters, factor known: Cholesky? = nil) throws(GaussianProcessError) {
        dimension = d
        self.hyperparameters = hyperparameters
        targetMean = mean
        targetStd = std
        x = flat
        y = standardized
        kernel = ARDKernel(hyperparameters)
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

    /// This process conditioned on several more observations at once (original units, same
    /// hyperparameters and standardization): one block extension of the Cholesky factor
    /// (`Cholesky.appending(rows:block:count:)`, O(n²p + p³)) instead of p extensions that each
    /// copy the factor; a full refactorization (with jitter) when the block is not positive
    /// definite (points that nearly duplicate others). The same process as conditioning on each
    /// in turn, up to rounding.
    public func conditioned(on points: [[Double]], targets: [Double]) throws(GaussianProcessError) -> GaussianProcess {
        precondition(points.count == targets.count && points.allSatisfy { $0.count == dimension },
                     "GaussianProcess.conditioned: \(points.count) points (dimension \(dimension)) and \(targets.count) targets")
        for (i, p) in points.enumerated() where !p.allSatisfy(\.isFinite) || !targets[i].isFinite { throw .nonFinite(index: count + i) }
        let p = points.count
        if p == 0 { return self }
        let flat = points.flatMap { $0 }
        let rows = kernel.cross(flat, count: p, x, count: count, dimension: dimension)
        var block = kernel.matrix(flat, count: p, dimension: dimension)
        for i in 0..<p { block[i * p + i] += kernel.noiseVariance }
        let grown = try? factor.appending(rows: rows, block: block, count: p)
        var next = try GaussianProcess(flat: x + flat, dimension: dimension,
                                       standardized: y + targets.map { ($0 - targetMean) / targetStd },
                                       mean: targetMean, std: targetStd, hyperparameters: hyperparameters,
                                       factor: grown)
        next.fitReport = fitReport
        return next
    }

    // What `CandidatePosterior` builds on.
    var kernelForCandidates: ARDKernel { kernel }
    var factorForCandidates: Cholesky { factor }
    var inputsFlat: [Double] { x }
    /// K(C, X)·α for m points (their cross-covariances, m × n): the standardized means.
    func standardizedMeans(cross: [Double], count m: Int) -> [Double] {
        let n = count
        var mu = [Double](repeating: 0, count: m)
        if m == 0 || n == 0 { return mu }
        cross.withUnsafeBufferPointer { c in
            alpha.withUnsafeBufferPointer { a in
                mu.withUnsafeMutableBufferPointer { out in
                    Double.gemv(trans: false, m: m, n: n, alpha: 1, a: c.baseAddress!, lda: n,
                                x: a.baseAddress!, beta: 0, y: out.baseAddress!)
                }
            }
        }
        return mu
    }

    // MARK: - Helpers

    static func validate(inputs: [[Double]], targets: [Double]) throws(GaussianProcessError) -> ([Double], Int) {
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
    static func standardization(_ y: [Double]) -> (mean: Double, std: Double) {
        let n = Double(y.count)
        let mean = y.reduce(0, +) / n
        let variance = y.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / n
        let std = variance.squareRoot()
        return (mean, std > 1e-12 * max(1, abs(mean)) ? std : 1)
    }
}
