import Linalg

/// Random search (Bergstra & Bengio 2012): trial `i` evaluates `space.sample(seed:index: i)`,
/// a pure function of `(seed, i)` — whichever worker asks, in whatever order.
///
/// Bayesian optimization's initial random trials are the same points, so the two baselines
/// share their opening and differ only once the model takes over.
public struct RandomSearch: Sendable {
    /// Where points are drawn from.
    public let space: SearchSpace
    /// The run seed.
    public let seed: UInt64

    /// Random search over `space` with `seed`.
    public init(space: SearchSpace, seed: UInt64) {
        self.space = space
        self.seed = seed
    }

    /// The hyperparameters of trial `trial` (0-based).
    public func propose(trial: Int) -> [Double] {
        precondition(trial >= 0, "RandomSearch.propose: negative trial index \(trial)")
        return space.sample(seed: seed, index: UInt64(trial))
    }

    /// Trials `trial ..< trial + batch`.
    public func propose(batch: Int, startingAt trial: Int) -> [[Double]] {
        precondition(batch >= 0, "RandomSearch.propose: negative batch \(batch)")
        return (0..<batch).map { propose(trial: trial + $0) }
    }
}
