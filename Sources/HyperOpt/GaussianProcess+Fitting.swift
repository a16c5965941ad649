import Foundation
import Linalg

extension GaussianProcess {
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
        let kernel = ARDKernel(Hyperparameters(vector: theta))
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
    /// `maxFitPoints` = 300) and O(n²d) for the kernel gradient, so a full fit is at most
    /// 3 × 60 such evaluations, whatever the number of observations. Above `maxFitPoints` observations the
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
}
