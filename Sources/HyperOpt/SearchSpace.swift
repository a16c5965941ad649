import Linalg

/// Why a search space or a point in it is invalid.
public enum SearchSpaceError: Error, Sendable, Equatable {
    /// A space needs at least one hyperparameter.
    case empty
    /// Dimension `index` has a box with `lower ≥ upper` or a non-finite end.
    case invalidBox(index: Int, lower: Double, upper: Double)
    /// Dimension `index` has a prior with a non-finite mean, a non-positive or non-finite standard
    /// deviation, or clip bounds with `lower ≥ upper`.
    case invalidPrior(index: Int, mean: Double, std: Double)
    /// A point has `actual` coordinates, the space `expected`.
    case wrongDimension(expected: Int, actual: Int)
    /// Coordinate `index` of a point is NaN or ±∞.
    case nonFinite(index: Int)
    /// Coordinate `index` of a point lies outside the dimension's bounds.
    case outOfBounds(index: Int, value: Double, lower: Double, upper: Double)
}

/// Where hyperparameters are searched: one entry per hyperparameter λ_h, h = 0..<H.
///
/// λ is already a log-scale quantity (the L2 weight is exp(λ), see `Regularizer`), so a box
/// `[lower, upper]` is sampled uniformly in λ — log-uniformly in the weight.
/// A Gaussian prior `mean + std·N(0, 1)` may carry clip bounds (the paper's
/// `1 + 3·N(0, 1)` clipped to `[−100, 4]`); samples are clipped into them.
///
/// Sampling draws from `Philox`; `sample(seed:index:)` is the pure function of
/// `(seed, index)` that random search and the initial points of Bayesian optimization use, on
/// stream `RandomStream.proposal`, task 0.
public struct SearchSpace: Sendable, Equatable, Codable {
    /// How one hyperparameter is distributed.
    public enum Dimension: Sendable, Equatable, Codable {
        /// Uniform on `[lower, upper]`.
        case uniform(lower: Double, upper: Double)
        /// `mean + std·N(0, 1)`, clipped to `[lower, upper]` (infinite ends: no clipping).
        case gaussian(mean: Double, std: Double, lower: Double = -.infinity, upper: Double = .infinity)

        /// The clip bounds (the box itself for `uniform`).
        public var bounds: ClosedRange<Double> {
            switch self {
            case let .uniform(lower, upper): lower...upper
            case let .gaussian(_, _, lower, upper): lower...upper
            }
        }

        /// The finite interval that model-based search (Bayesian optimization) looks in: the box
        /// itself, or `mean ± 3·std` intersected with the clip bounds for a Gaussian prior.
        public var searchBounds: ClosedRange<Double> {
            switch self {
            case let .uniform(lower, upper):
                return lower...upper
            case let .gaussian(mean, std, lower, upper):
                let lo = max(lower, mean - 3 * std), hi = min(upper, mean + 3 * std)
                if lo < hi { return lo...hi }
                // The prior's mass sits beyond a clip bound: search the 6σ next to that bound.
                return upper <= mean ? max(lower, upper - 6 * std)...upper : lower...min(upper, lower + 6 * std)
            }
        }
    }

    /// One entry per hyperparameter.
    public let dimensions: [Dimension]

    /// A validated space.
    public init(_ dimensions: [Dimension]) throws(SearchSpaceError) {
        guard !dimensions.isEmpty else { throw .empty }
        for (h, d) in dimensions.enumerated() {
            switch d {
            case let .uniform(lower, upper):
                guard lower.isFinite, upper.isFinite, lower < upper else {
                    throw .invalidBox(index: h, lower: lower, upper: upper)
                }
            case let .gaussian(mean, std, lower, upper):
                guard mean.isFinite, std.isFinite, std > 0, !lower.isNaN, !upper.isNaN, lower < upper,
                      lower < .infinity, upper > -.infinity else {
                    throw .invalidPrior(index: h, mean: mean, std: std)
                }
                guard d.searchBounds.lowerBound.isFinite, d.searchBounds.upperBound.isFinite else {
                    throw .invalidPrior(index: h, mean: mean, std: std)
                }
            }
        }
        self.dimensions = dimensions
    }

    /// The same box `[lower, upper]` for each of `count` hyperparameters.
    public static func box(lower: Double, upper: Double, count: Int) throws(SearchSpaceError) -> SearchSpace {
        try SearchSpace(Array(repeating: .uniform(lower: lower, upper: upper), count: count))
    }

    /// H, the number of hyperparameters.
    public var count: Int { dimensions.count }

    /// One point drawn from `rng` (H uniforms or normals, in dimension order).
    public func sample(using rng: inout Philox) -> [Double] {
        dimensions.map { d in
            switch d {
            case let .uniform(lower, upper):
                // nextUnit() < 1, but lower + u·(upper − lower) may round up to `upper`; clamp.
                return min(lower + rng.nextUnit() * (upper - lower), upper)
            case let .gaussian(mean, std, lower, upper):
                return min(max(mean + std * rng.nextNormal(), lower), upper)
            }
        }
    }

    /// Point number `index` of the pure random sequence for `seed`
    /// (`Philox(seed, step: index, task: 0, stream: .proposal)`).
    public func sample(seed: UInt64, index: UInt64) -> [Double] {
        var rng = Philox(seed: seed, step: index, task: 0, stream: RandomStream.proposal.rawValue)
        return sample(using: &rng)
    }

    /// `lambda` with every coordinate clamped into its dimension's bounds.
    public func clip(_ lambda: [Double]) -> [Double] {
        precondition(lambda.count == count, "SearchSpace.clip: \(lambda.count) values, space has \(count)")
        return zip(lambda, dimensions).map { v, d in min(max(v, d.bounds.lowerBound), d.bounds.upperBound) }
    }

    /// Throws unless `lambda` has H finite coordinates inside the bounds.
    public func validate(_ lambda: [Double]) throws(SearchSpaceError) {
        guard lambda.count == count else { throw .wrongDimension(expected: count, actual: lambda.count) }
        for (h, (v, d)) in zip(lambda, dimensions).enumerated() {
            guard v.isFinite else { throw .nonFinite(index: h) }
            guard d.bounds.contains(v) else {
                throw .outOfBounds(index: h, value: v, lower: d.bounds.lowerBound, upper: d.bounds.upperBound)
            }
        }
    }

    /// Whether `lambda` is a valid point of this space.
    public func contains(_ lambda: [Double]) -> Bool {
        do { try validate(lambda); return true } catch { return false }
    }

    // MARK: - Unit-cube coordinates (model-based search)

    /// Maps λ affinely through each dimension's `searchBounds` onto `[0, 1]` (not clamped: a
    /// point outside the search bounds lands outside the unit cube).
    public func toUnit(_ lambda: [Double]) -> [Double] {
        precondition(lambda.count == count, "SearchSpace.toUnit: \(lambda.count) values, space has \(count)")
        return zip(lambda, dimensions).map { v, d in
            let b = d.searchBounds
            return (v - b.lowerBound) / (b.upperBound - b.lowerBound)
        }
    }

    /// Maps `u` back to λ, clamped into each dimension's `searchBounds`.
    public func fromUnit(_ u: [Double]) -> [Double] {
        precondition(u.count == count, "SearchSpace.fromUnit: \(u.count) values, space has \(count)")
        return zip(u, dimensions).map { x, d in
            let b = d.searchBounds
            return min(max(b.lowerBound + min(max(x, 0), 1) * (b.upperBound - b.lowerBound), b.lowerBound),
                       b.upperBound)
        }
    }
}
