import Foundation

/// A named set of defaults for the settings a user did not give.
public enum Recipe: String, Sendable, Codable, CaseIterable {
    /// The paper's form: w = φ(λ), φ ~ 0.01·N(0,1), fixed σ, constant step sizes, no guard,
    /// the hypernetwork's answer. The presets' settings as they are.
    case paper
    /// Hypertrain's default (EXPERIMENTS.md, "The default recipe"): a local best-response
    /// around λ̂ that stays stable on every preset without hand-tuning.
    case stable

    /// The settings a recipe may choose, by the name of their `ExperimentConfig` property.
    public enum Setting: String, Sendable, CaseIterable {
        case hypernetInput, hypernetInit, sigma, phiLearningRate, lambdaLearningRate, lambdaInit, validBatchSize
        case learningRateSchedule, lambdaWarmupSteps, divergenceGuard, retrainSteps, answer
    }

    /// `config` with this recipe's choices for every setting not in `given` (the ones the
    /// user set). The choices may depend on the configuration's other settings (the number of
    /// hyperparameters, the training set's size), so apply the recipe last.
    public func resolve(_ config: ExperimentConfig, given: Set<Setting> = []) -> ExperimentConfig {
        var c = config
        c.recipe = self
        guard self == .stable else { return c }
        func choose(_ s: Setting, _ body: (inout ExperimentConfig) -> Void) {
            if !given.contains(s) { body(&c) }
        }
        let h = Double(c.hyperparameterCount)
        // A mean-zero input: Adam's steps on the first layer do not add up over H inputs of
        // one sign (EXPERIMENTS.md, fig5-bottom and fig7).
        choose(.hypernetInput) { $0.hypernetInput = .centred }
        // φ(λ̂) starts as a normally initialised network, whatever H. Not for `mlp:K`: the
        // fan-in initialisation's c = 0 puts every hidden ReLU's kink at the centre, a φ(λ)
        // with one breakpoint (measured on fig3: λ̂ stuck at 0 with the kinks at the prior
        // mean; 1.65 with the normal initialisation, λ*_CV 1.56).
        choose(.hypernetInit) {
            if case .mlp = $0.hypernet { $0.hypernetInit = .normal } else { $0.hypernetInit = .fanIn }
        }
        // ‖λ − λ̂‖ ≈ 0.5 whatever H: the offset the hypernetwork sees keeps one scale.
        choose(.sigma) { $0.sigma = 0.5 / h.squareRoot() }
        // The elementary model's step size inside φ; its noise floor sets L(φ(λ̂)).
        choose(.phiLearningRate) { $0.phiLearningRate = 3e-4 }
        // Through a rank-K hypernetwork most of an H-component hypergradient is noise, and Adam
        // turns each noisy component into a step of ≈ lr: λ̂ random-walks by lr·√H per step.
        // lr/√H keeps that walk at one scale whatever H (measured: the per-weight λ̂ of the
        // deep preset spread to [−12.9, −5.5] at 0.003 and validated worse than a frozen λ̂).
        choose(.lambdaLearningRate) { $0.lambdaLearningRate = 0.003 / h.squareRoot() }
        // A unit Gaussian prior on each weight, relative to a mean loss over n examples.
        choose(.lambdaInit) { $0.lambdaInit = (-log(Double(max($0.nTrain, 1))) * 100).rounded() / 100 }
        // A λ̂ step needs no bigger a validation batch than a training task's (measured: the
        // same λ̂ and losses at 100 as at 1,000 on fig4 and fig7, at 1.6–2.3× the steps/s).
        choose(.validBatchSize) { $0.validBatchSize = max($0.batchSize, 100) }
        // Algorithm 2 steps λ̂ only in its last phase, where a schedule over the whole run
        // would have decayed its step to the end value (measured on fig3: λ̂ stopped at 0.66
        // instead of ≈ 1.6); its φ phase has no λ̂ to settle either, so it keeps constant steps.
        choose(.learningRateSchedule) {
            $0.learningRateSchedule = $0.algorithm == .globalBestResponse ? nil : LearningRateSchedule(shape: .cosine, finalFraction: 0.1)
        }
        choose(.lambdaWarmupSteps) { $0.lambdaWarmupSteps = 0 }
        choose(.divergenceGuard) { $0.divergenceGuard = DivergenceGuardSettings() }
        choose(.retrainSteps) { $0.retrainSteps = 0 }
        choose(.answer) { $0.answer = .hypernetwork }
        return c
    }
}
