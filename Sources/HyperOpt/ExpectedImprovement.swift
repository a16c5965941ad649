import Foundation

/// Expected improvement for minimization (Močkus 1978; Jones, Schonlau & Welch 1998):
///
///     EI(x) = (f* − μ − ξ)·Φ(z) + σ·φ(z),   z = (f* − μ − ξ)/σ,
///
/// where μ, σ are the posterior mean and standard deviation at x, f* the best (lowest) value
/// seen, ξ ≥ 0 a margin that favours exploration. Written as `EI = σ·τ(z)` with
/// `τ(z) = z·Φ(z) + φ(z)`; Φ via `erfc` so the lower tail keeps its relative accuracy.
///
/// `logValue` stays finite far into the tail (z ≪ −38, where φ underflows) through the
/// asymptotic expansion `τ(z) = φ(z)/z²·(1 − 3/z² + 15/z⁴ − 105/z⁶ + …)`, so candidates can be
/// ranked, and refined by gradient ascent, even where EI itself is 0 in `Double`.
public struct ExpectedImprovement: Sendable, Equatable {
    /// f*, the incumbent (lowest observed value), in the units of μ and σ.
    public var best: Double
    /// ξ, the exploration margin, in the units of μ and σ.
    public var xi: Double

    /// EI against incumbent `best` with margin `xi`.
    public init(best: Double, xi: Double = 0) {
        self.best = best
        self.xi = xi
    }

    /// EI at a point with posterior mean `mean` and standard deviation `std`
    /// (`max(f* − μ − ξ, 0)` when `std` is 0).
    public func value(mean: Double, std: Double) -> Double {
        let improvement = best - mean - xi
        guard std > 0 else { return max(improvement, 0) }
        return std * Self.tau(improvement / std)
    }

    /// EI and its gradient, given the gradients of μ and σ with respect to the point:
    /// `∂EI/∂μ = −Φ(z)`, `∂EI/∂σ = φ(z)`.
    public func valueAndGradient(mean: Double, std: Double, meanGradient: [Double], stdGradient: [Double])
        -> (value: Double, gradient: [Double])
    {
        precondition(meanGradient.count == stdGradient.count,
                     "ExpectedImprovement: gradients of \(meanGradient.count) and \(stdGradient.count) values")
        let improvement = best - mean - xi
        guard std > 0 else {
            return (max(improvement, 0), improvement > 0 ? meanGradient.map { -$0 } : meanGradient.map { _ in 0 })
        }
        let z = improvement / std
        let cdf = Self.cdf(z), pdf = Self.pdf(z)
        return (std * Self.tau(z), zip(meanGradient, stdGradient).map { -cdf * $0 + pdf * $1 })
    }

    /// log EI, finite for every `std > 0` (−∞ only when `std` is 0 and there is no improvement).
    public func logValue(mean: Double, std: Double) -> Double {
        let improvement = best - mean - xi
        guard std > 0 else { return improvement > 0 ? log(improvement) : -.infinity }
        return log(std) + Self.logTau(improvement / std)
    }

    /// log EI and its gradient: `∇log EI = ∇σ/σ − (Φ(z)/τ(z))·(∇μ + z·∇σ)/σ`.
    /// Requires `std > 0`.
    public func logValueAndGradient(mean: Double, std: Double, meanGradient: [Double], stdGradient: [Double])
        -> (value: Double, gradient: [Double])
    {
        precondition(std > 0, "ExpectedImprovement.logValueAndGradient: std \(std) must be positive")
        precondition(meanGradient.count == stdGradient.count,
                     "ExpectedImprovement: gradients of \(meanGradient.count) and \(stdGradient.count) values")
        let z = (best - mean - xi) / std
        let ratio = Self.cdfOverTau(z)
        let grad = zip(meanGradient, stdGradient).map { dm, ds in ds / std - ratio * (dm + z * ds) / std }
        return (log(std) + Self.logTau(z), grad)
    }

    // MARK: - The standard normal

    /// Φ(z) = ½·erfc(−z/√2).
    public static func cdf(_ z: Double) -> Double { 0.5 * erfc(-z / 2.0.squareRoot()) }

    /// φ(z) = exp(−z²/2)/√(2π).
    public static func pdf(_ z: Double) -> Double { exp(-0.5 * z * z) / (2 * Double.pi).squareRoot() }

    /// τ(z) = z·Φ(z) + φ(z) = E[max(z + Z, 0)] for Z ~ N(0, 1): EI per unit σ. The direct formula loses at most
    /// about z²·ε to cancellation, 1e-13 relative at z = −30.
    static func tau(_ z: Double) -> Double { max(z * cdf(z) + pdf(z), 0) }

    /// Below this z, `logTau` and `cdfOverTau` use the asymptotic series.
    static let tailStart = -30.0

    static func logTau(_ z: Double) -> Double {
        if z >= tailStart { return log(tau(z)) }
        let r = 1 / (z * z)
        let series = 1 - 3 * r * (1 - 5 * r * (1 - 7 * r * (1 - 9 * r)))
        return -0.5 * z * z - 0.5 * log(2 * Double.pi) + log(r) + log(series)
    }

    /// Φ(z)/τ(z), the factor in ∇log EI; ≈ |z| in the tail.
    static func cdfOverTau(_ z: Double) -> Double {
        if z >= tailStart { return cdf(z) / tau(z) }
        let r = 1 / (z * z)
        let millsSeries = 1 - r * (1 - 3 * r * (1 - 5 * r * (1 - 7 * r)))    // Φ ≈ φ/|z|·(…)
        let tauSeries = 1 - 3 * r * (1 - 5 * r * (1 - 7 * r * (1 - 9 * r)))  // τ ≈ φ/z²·(…)
        return -z * millsSeries / tauSeries
    }
}
