import Models
import Linalg

/// Which hyper-training algorithm (the paper's numbering).
public enum Algorithm: String, Sendable, Codable, CaseIterable {
    /// Algorithm 2: train φ under a broad prior over λ, then freeze φ and descend λ̂.
    case globalBestResponse = "global"
    /// Algorithm 3: φ step on `mean_s L_train(φ(λ_s), λ_s)`, `λ_s ~ N(λ̂, σ²)`, and a λ̂ step.
    case joint
    /// Algorithm 4: as `joint` with the φ step taken at λ̂ itself (σ = 0).
    case simplifiedJoint = "simplified"
}

/// The whole resolved configuration of a hyper-training run. The defaults are the paper's
/// Fig. 4 setting (784-10, one global L2 hyperparameter, linear hypernetwork, 10 training
/// points, λ̂₀ = −3.5) with σ = 0.5, which moves λ̂ to the cross-validation optimum (≈ −1.8 with
/// MSE and the squared norm) in a few thousand steps.
/// Everything that influences the
/// numbers is here, so a run is reproduced from its config and seed alone.
public struct ExperimentConfig: Sendable, Codable, Equatable {
    /// Algorithm 2, 3 or 4.
    public var algorithm: Algorithm = .joint
    /// Elementary model layer sizes.
    public var layers: [Int] = [784, 10]
    /// Hyperparameter grouping.
    public var scope: RegularizationScope = .global
    /// Squared or unsquared L2.
    public var norm: RegularizationNorm = .squared
    /// Prediction loss.
    public var loss: PredictionLoss = .mse
    /// Hypernetwork form.
    public var hypernet: HypernetKind = .linear
    /// Training examples (first `nTrain` MNIST training images).
    public var nTrain: Int = 10
    /// Validation examples (the next `nValid`).
    public var nValid: Int = 10_000
    /// Test examples (first `nTest` official test images).
    public var nTest: Int = 10_000
    /// Training minibatch per task (capped at `nTrain`: a full batch then).
    public var batchSize: Int = 1000
    /// Validation minibatch for the λ̂ step (capped at `nValid`).
    public var validBatchSize: Int = 1000
    /// λ samples (training tasks) per step, `S`.
    public var samplesPerStep: Int = 2
    /// Std of `λ ~ N(λ̂, σ²I)` (Algorithm 3).
    public var sigma: Double = 0.5
    /// Total steps (for Algorithm 2: phase 1 + phase 2).
    public var steps: Int = 10_000
    /// Algorithm 2: steps of phase 1 (φ under the prior); the rest is phase 2.
    public var phase1Steps: Int = 0
    /// Algorithm 2 prior `λ ~ mean + std·N(0,1)`, clipped to `[priorMin, priorMax]`.
    public var priorMean: Double = 1
    /// Prior std.
    public var priorStd: Double = 3
    /// Prior lower clip.
    public var priorMin: Double = -100
    /// Prior upper clip.
    public var priorMax: Double = 4
    /// φ optimizer.
    public var phiOptimizer: OptimizerKind = .adam
    /// φ step size.
    public var phiLearningRate: Double = 1e-3
    /// λ̂ optimizer.
    public var lambdaOptimizer: OptimizerKind = .adam
    /// λ̂ step size.
    public var lambdaLearningRate: Double = 0.003
    /// Initial λ̂ (every component).
    public var lambdaInit: Double = -3.5
    /// Scale of the `N(0,1)` initialisation of φ.
    public var initScale: Double = 0.01
    /// Run seed: all randomness derives from it.
    public var seed: UInt64 = 1
    /// Evaluate full validation/test loss every this many steps (0: only at the end).
    public var evalEvery: Int = 500
    /// What the hypernetwork is a function of: λ itself (nil or `.raw`, the paper's form) or
    /// λ − λ̂ (`.centred`: `w = φ(λ − λ̂)`, a local best-response around the current λ̂; for
    /// Algorithm 2, λ − prior mean, a fixed centre).
    /// Optional so that configurations stored before it existed still decode.
    public var hypernetInput: HypernetInput? = nil
    /// How φ is initialised: `initScale·N(0,1)` everywhere (nil or `.normal`, the authors'
    /// code) or fan-in aware (`.fanIn`: `b` a He/LeCun initialisation of the elementary
    /// model, the first hypernetwork layer scaled by `1/√H`, the λ-dependent part `initScale`
    /// times smaller; see `Hypernet.fanInParameters`).
    /// Optional so that configurations stored before it existed still decode.
    public var hypernetInit: HypernetInit? = nil
    /// Which recipe resolved the unset settings (`Recipe`); informational: every setting the
    /// recipe chose is stored in its own field. nil: a configuration from before recipes
    /// (the paper's form).
    public var recipe: Recipe? = nil
    /// How the step sizes of φ and λ̂ change over the run (nil or `.constant`: they do not).
    public var learningRateSchedule: LearningRateSchedule? = nil
    /// Steps during which only φ trains and λ̂ stays at its initial value (nil or 0: none).
    public var lambdaWarmupSteps: Int? = nil
    /// The divergence guard (nil: off): watches the validation batch loss, rolls back to the
    /// last good state and halves both step sizes when the run blows up.
    public var divergenceGuard: DivergenceGuardSettings? = nil
    /// Steps of an Algorithm 1 training from scratch at the final λ̂, run inside `run` after
    /// hyper-training (nil or 0: none).
    public var retrainSteps: Int? = nil
    /// Which model is the run's answer (nil: `.hypernetwork`): fixed by the recipe, never
    /// chosen by looking at the results.
    public var answer: RunAnswer? = nil
    /// The pipelined schedule (nil or false: lockstep): step t's tasks are made from the
    /// parameters before step t − 1's update, θ_{t−1}, and their gradients update θ_t — one step
    /// old, deterministically, in the single process and the cluster alike. A cluster then hands
    /// out step t + 1's tasks before it applies step t's update, so the update overlaps the
    /// workers' compute (docs/protocol.md §5).
    /// Optional so that configurations stored before it existed still decode.
    public var pipelined: Bool? = nil
    /// An external model (docs/sdk.md): its named tensors and scope replace `layers` and
    /// `scope`; workers own its data and loss. nil: the built-in MLP on MNIST.
    /// Optional so that configurations stored before it existed still decode.
    public var external: ExternalModel? = nil

    /// The defaults (see each property).
    public init() {}

    /// Elementary model shape.
    public var shape: MLPShape { MLPShape(layers) }
    /// `H`.
    public var hyperparameterCount: Int { regularizer.groupCount }
    /// `D`, the length of `w`: the MLP's weights and biases, or the external model's.
    public var weightCount: Int { external?.parameterCount ?? shape.parameterCount }
    /// The penalty's grouping over `w`.
    public var regularizer: Regularizer {
        if let external { return Regularizer(external: external, norm: norm) }
        return Regularizer(shape: shape, scope: scope, norm: norm)
    }
    /// `|φ|`.
    public var phiCount: Int {
        Hypernet<Float>.parameterCount(kind: hypernet, inputCount: hyperparameterCount, outputCount: weightCount)
    }
    /// σ actually used (0 for Algorithm 4).
    public var effectiveSigma: Double { algorithm == .simplifiedJoint ? 0 : sigma }

    /// Problems with this configuration, each a sentence; empty when valid.
    public func problems() -> [String] {
        var p: [String] = []
        if let external { return p + external.problems() + commonProblems() }
        if layers.count < 2 || layers.contains(where: { $0 <= 0 }) { p.append("layers must be at least two positive sizes, got \(layers)") }
        if layers.first != 784 { p.append("the first layer must be 784 (MNIST pixels), got \(layers.first ?? 0)") }
        if layers.last != 10 { p.append("the last layer must be 10 (MNIST classes), got \(layers.last ?? 0)") }
        if nTrain < 1 { p.append("n-train must be at least 1") }
        if nValid < 1 { p.append("n-valid must be at least 1") }
        if nTest < 0 || nTest > 10_000 { p.append("n-test must be in 0...10000") }
        if nTrain + nValid > 60_000 { p.append("n-train + n-valid must be at most 60000, got \(nTrain + nValid)") }
        return p + commonProblems()
    }

    /// Problems of the settings every model shares.
    private func commonProblems() -> [String] {
        var p: [String] = []
        if batchSize < 1 { p.append("batch-size must be at least 1") }
        if validBatchSize < 1 { p.append("valid-batch-size must be at least 1") }
        if samplesPerStep < 1 || samplesPerStep > 4096 { p.append("samples-per-step must be in 1...4096") }
        if !(sigma >= 0 && sigma.isFinite) { p.append("sigma must be a finite number ≥ 0") }
        if steps < 0 { p.append("steps must be ≥ 0") }
        if algorithm == .globalBestResponse && !(0...steps).contains(phase1Steps) {
            p.append("phase1-steps must be in 0...steps for the global algorithm")
        }
        if !(phiLearningRate > 0 && phiLearningRate <= 1e3) { p.append("phi-lr must be in (0, 1000]") }
        if !(lambdaLearningRate > 0 && lambdaLearningRate <= 1e3) { p.append("lambda-lr must be in (0, 1000]") }
        if !(abs(lambdaInit) <= 80) { p.append("lambda-init must be a number in [-80, 80] (exp(λ) must stay finite in float)") }
        if !(initScale > 0 && initScale <= 10) { p.append("init-scale must be in (0, 10]") }
        if !(abs(priorMean) <= 80) { p.append("prior-mean must be a number in [-80, 80]") }
        if !(priorStd >= 0 && priorStd <= 100) { p.append("prior-std must be in [0, 100]") }
        if !(priorMin <= priorMax) || priorMin.isNaN || priorMax.isNaN { p.append("prior-min and prior-max must be numbers with min ≤ max") }
        if evalEvery < 0 { p.append("eval-every must be ≥ 0") }
        if let k = hypernet.hidden, !(1...100_000).contains(k) { p.append("hypernet hidden width must be in 1...100000, got \(k)") }
        if let w = lambdaWarmupSteps, w < 0 { p.append("lambda-warmup-steps must be ≥ 0") }
        if let r = retrainSteps, !(0...10_000_000).contains(r) { p.append("retrain-steps must be in 0...10000000") }
        if answer == .retrained && (retrainSteps ?? 0) == 0 { p.append("the answer 'retrained' needs retrain-steps ≥ 1") }
        if let g = divergenceGuard { p += g.problems() }
        if let s = learningRateSchedule { p += s.problems() }

        return p
    }

    /// Warnings about settings that are valid but known to fail; each says why (the runs behind
    /// them are in EXPERIMENTS.md).
    public func warnings() -> [String] {
        var w: [String] = []
        // What the hypernetwork sees of a sample is the offset λ − λ̂, of norm ≈ σ·√H: with
        // thousands of hyperparameters a small σ (≈ 1/√H, see EXPERIMENTS.md, Fig. 5 bottom)
        // still gives an offset of norm ≈ 1.
        if algorithm == .joint && sigma * Double(hyperparameterCount).squareRoot() < 0.05 {
            w.append("sigma \(sigma) is tiny: the hypernetwork's slope ∂w/∂λ is then barely trained and λ̂ tends to stop at the wrong place (σ = 0.5 works on the Fig. 4 setting; with H hyperparameters what counts is σ·√H)")
        }
        // Adam's step is ≈ lr per parameter whatever the gradient's scale: far above 0.1 every
        // weight jumps by tenths each step (Adam at --phi-lr 10 ends with a train loss of 1e5).
        let sane: (OptimizerKind) -> ClosedRange<Double> = { $0 == .adam ? 1e-6...0.1 : 1e-6...10 }
        for (name, kind, rate) in [("phi-lr", phiOptimizer, phiLearningRate), ("lambda-lr", lambdaOptimizer, lambdaLearningRate)]
        where !sane(kind).contains(rate) {
            w.append("\(name) \(rate) is far outside the usual range for \(kind.rawValue) (\(sane(kind).lowerBound)…\(sane(kind).upperBound)): expect the run to diverge or not to move (the recipes use Adam 3e-4 for φ and 0.003/√H for λ̂)")
        }
        return w
    }
}

/// The hypernetwork's input.
public enum HypernetInput: String, Sendable, Codable, CaseIterable {
    /// `w = φ(λ)`.
    case raw
    /// `w = φ(λ − λ̂)`: the input is the sample's offset from λ̂; λ̂'s hypergradient is taken
    /// with the centre held fixed. With thousands of hyperparameters of one sign, a raw input
    /// makes every Adam step on the first hypernetwork layer add up coherently over all H
    /// inputs; a centred input of mean zero does not.
    case centred
}


/// Which model a run reports as its answer.
public enum RunAnswer: String, Sendable, Codable, CaseIterable {
    /// `w = φ(λ̂)`, the hypernetwork's best response at the final λ̂.
    case hypernetwork
    /// The elementary model trained from scratch at the final λ̂ (Algorithm 1, `retrainSteps`
    /// steps, the same optimizer and step size as φ).
    case retrained
}
