import Linalg

/// The elementary model a run answers with (``RunAnswer``): its weights and full-split losses.
/// `run` reports it and `export` writes it, both through these functions, so the exported file
/// holds the weights whose losses the run's summary gave.
public struct AnswerModel: Sendable {
    /// Which model this is.
    public let answer: RunAnswer
    /// The flat weights (``Models/MLPShape`` layout).
    public let weights: [Float]
    /// Their full-split losses (the training loss includes the regularizer at λ̂).
    public let evaluation: Evaluation

    /// `w = φ(λ̂)`, the hypernetwork's best response at λ̂ (evaluated as `LocalRun.evaluate`).
    public static func hypernetwork(config: ExperimentConfig, data: ExperimentData, phi: [Float], lambdaHat: [Float]) -> AnswerModel {
        let trainer = HyperTrainer(config: config, data: data)
        // Aligned copies, as the run holds its state: the same bits as the run's evaluation.
        let phi = AlignedBuffer(phi)
        let lambda = AlignedBuffer(lambdaHat)
        let weights = trainer.weights(phi: phi.constPointer, lambda: lambdaHat)
        let evaluation = trainer.evaluate(phi: phi.constPointer, lambda: lambda.constPointer)
        return AnswerModel(answer: .hypernetwork, weights: weights, evaluation: evaluation)
    }

    /// The model trained from scratch at λ̂ for `config.retrainSteps` steps (``Retraining``).
    /// - Precondition: `config.retrainSteps` ≥ 1.
    public static func retrained(config: ExperimentConfig, data: ExperimentData, lambdaHat: [Float]) throws(HyperTrainingError) -> AnswerModel {
        let (outcome, weights) = try Retraining.run(config: config, data: data, lambda: lambdaHat)
        return AnswerModel(answer: .retrained, weights: weights, evaluation: outcome.evaluation)
    }

    /// The model `config.answer` names (nil: the hypernetwork's).
    public static func resolve(config: ExperimentConfig, data: ExperimentData, phi: [Float], lambdaHat: [Float]) throws(HyperTrainingError) -> AnswerModel {
        switch config.answer ?? .hypernetwork {
        case .hypernetwork: hypernetwork(config: config, data: data, phi: phi, lambdaHat: lambdaHat)
        case .retrained: try retrained(config: config, data: data, lambdaHat: lambdaHat)
        }
    }
}
