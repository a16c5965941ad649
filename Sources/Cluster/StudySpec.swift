import HyperOpt

/// How a study proposes trials.
public enum SearchStrategy: String, Sendable, Codable, CaseIterable {
    /// Independent draws from the search space.
    case random
    /// Gaussian-process Bayesian optimization (expected improvement, Kriging believer for busy workers).
    case bayes
}

/// A baseline study: which λs to try and how each trial (Algorithm 1) trains.
public struct StudySpec: Sendable, Codable, Equatable {
    /// Proposal strategy.
    public var strategy: SearchStrategy
    /// Trials to run in total.
    public var trials: Int
    /// Adam steps per trial.
    public var trialSteps: Int
    /// Adam step size of a trial.
    public var trialLearningRate: Double
    /// Where λ is searched (one dimension per hyperparameter).
    public var space: SearchSpace
    /// Stop proposing after this many seconds of study wall time (nil: no limit).
    public var wallBudgetSeconds: Double?

    /// - Parameters: see the properties.
    public init(strategy: SearchStrategy, trials: Int, trialSteps: Int, trialLearningRate: Double,
                space: SearchSpace, wallBudgetSeconds: Double? = nil) {
        self.strategy = strategy
        self.trials = trials
        self.trialSteps = trialSteps
        self.trialLearningRate = trialLearningRate
        self.space = space
        self.wallBudgetSeconds = wallBudgetSeconds
    }
}
