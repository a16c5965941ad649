import Foundation
import Linalg

extension GaussianProcess {
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
}
