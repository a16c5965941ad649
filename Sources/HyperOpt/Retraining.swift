import Linalg
import Models

/// Training the elementary model from scratch at the final λ̂ (Algorithm 1 inside a run):
/// the retrained answer of `RunAnswer.retrained`. Deterministic in (config, λ̂): `export`
/// reproduces the weights a run reported by running it again.
public enum Retraining {
    /// The trial index of the retraining's minibatch and initialisation streams (distinct from
    /// the search baselines' trial indices 0, 1, …).
    public static let trialIndex = 1 << 30

    /// Trains from scratch at `lambda` for `config.retrainSteps` steps with φ's optimizer
    /// settings (Adam at `phiLearningRate` under the run's step-size schedule); returns the
    /// outcome and the trained weights.
    public static func run(config: ExperimentConfig, data: ExperimentData, lambda: [Float]) throws(HyperTrainingError) -> (outcome: TrialOutcome, weights: [Float]) {
        let steps = config.retrainSteps ?? 0
        precondition(steps > 0, "Retraining.run: retrainSteps is \(steps)")
        let r = try CrossValidation.trial(config: config, data: data, lambda: lambda, steps: steps,
                                          learningRate: config.phiLearningRate, trialIndex: trialIndex, keepWeights: true)
        return (r.outcome, r.weights!)
    }
}
