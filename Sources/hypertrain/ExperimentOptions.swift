import ArgumentParser
import HyperOpt
import Models
import Settings

extension Algorithm: ExpressibleByArgument {}
extension RegularizationScope: ExpressibleByArgument {}
extension RegularizationNorm: ExpressibleByArgument {}
extension PredictionLoss: ExpressibleByArgument {}
extension OptimizerKind: ExpressibleByArgument {}
extension HypernetInput: ExpressibleByArgument {}
extension HypernetInit: ExpressibleByArgument {}
extension Recipe: ExpressibleByArgument {}
extension RunAnswer: ExpressibleByArgument {}
extension LearningRateSchedule: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}
/// `on` / `off`.
enum Switch: String, ExpressibleByArgument, CaseIterable { case on, off }
extension HypernetKind: ExpressibleByArgument {
    public init?(argument: String) { self.init(parsing: argument) }
}

/// The settings of the elementary model and its data: what a trial, an unrolled run and
/// hyper-training all read. Unset flags keep the preset's (or the default) value.
struct ModelOptions: ParsableArguments {
    @Option(help: "Start from a named setting: fig4, fig7, fig5, deep (see README; the same as --config presets/NAME.yaml).")
    var preset: String?
    @Option(help: "Elementary MLP layer sizes, e.g. 784-10 or 784-100-100-10.")
    var layers: String?
    @Option(help: "Regularization scope: global, per-class, per-layer, per-weight.")
    var scope: RegularizationScope?
    @Option(help: "L2 norm: squared (default) or unsquared (the authors' code).")
    var norm: RegularizationNorm?
    @Option(help: "Prediction loss: mse (default) or gaussian (the authors' 50·MSE − 1.384).")
    var loss: PredictionLoss?
    @Option(name: .customLong("n-train"), help: "Training examples (first N MNIST training images).")
    var nTrain: Int?
    @Option(name: .customLong("n-valid"), help: "Validation examples (the next N training images).")
    var nValid: Int?
    @Option(name: .customLong("n-test"), help: "Test examples (first N official test images).")
    var nTest: Int?
    @Option(name: .customLong("batch-size"), help: "Training minibatch per λ sample.")
    var batchSize: Int?
    @Option(name: .customLong("init-scale"), help: "φ initialised as scale·N(0,1) (with --hypernet-init fan-in: the relative size of the λ-dependent part).")
    var initScale: Double?
    @Option(help: "Run seed; all randomness derives from it.")
    var seed: UInt64?
    @Option(help: "Defaults for the settings not given: stable (Hypertrain's recipe: centred input, fan-in initialisation, σ = 0.5/√H, φ step 3e-4 and λ̂ step 0.003/√H with a cosine decay to 0.1×, λ̂₀ = −ln(n-train), validation batch max(batch, 100), divergence guard) or paper (the paper's form and the presets as they are).")
    var recipe: Recipe = .stable

    static let settings: [String: SettingsFile.Kind] = [
        "preset": .text, "layers": .text, "scope": .text, "norm": .text, "loss": .text, "n-train": .integer,
        "n-valid": .integer, "n-test": .integer, "batch-size": .integer, "init-scale": .number, "seed": .integer, "recipe": .text,
    ]

    /// The resolved configuration: the preset (or the defaults), these settings, then each
    /// group's, then the recipe for the recipe settings none of them gave.
    func config(_ groups: [any ExperimentSettingsGroup] = []) throws -> ExperimentConfig {
        var c = ExperimentConfig()
        if let preset {
            guard let p = StandardConfigs.benchmarks.first(where: { $0.name == preset }) else {
                throw ValidationError("unknown preset '\(preset)'; choose one of \(StandardConfigs.benchmarks.map(\.name).joined(separator: ", "))")
            }
            c = p.config
        }
        if let layers {
            guard let s = MLPShape(parsing: layers) else { throw ValidationError("--layers must look like 784-100-10, got '\(layers)'") }
            c.layers = s.sizes
        }
        if let scope { c.scope = scope }
        if let norm { c.norm = norm }
        if let loss { c.loss = loss }
        if let nTrain { c.nTrain = nTrain }
        if let nValid { c.nValid = nValid }
        if let nTest { c.nTest = nTest }
        if let batchSize { c.batchSize = batchSize }
        if let initScale { c.initScale = initScale }
        if let seed { c.seed = seed }
        var given = Set<Recipe.Setting>()
        for g in groups {
            g.apply(to: &c)
            given.formUnion(g.givenSettings)
        }
        c = recipe.resolve(c, given: given)
        let problems = c.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
        return c
    }
}

/// A group of experiment flags beyond ``ModelOptions``.
protocol ExperimentSettingsGroup {
    /// Sets the given flags' settings in `config`.
    func apply(to config: inout ExperimentConfig)
    /// The recipe settings among the given flags (the recipe leaves them alone).
    var givenSettings: Set<Recipe.Setting> { get }
}

/// How φ is initialised and how its step size is scheduled: trials train with these too.
struct TrainingOptions: ParsableArguments, ExperimentSettingsGroup {
    @Option(name: .customLong("hypernet-init"), help: "normal (every parameter init-scale·N(0,1)) or fan-in (φ(λ̂) starts as a He/LeCun-initialised model; first hypernet layer scaled by 1/√H).")
    var hypernetInit: HypernetInit?
    @Option(name: .customLong("lr-schedule"), help: "Step-size schedule of φ and λ̂: constant, cosine[:FINAL], linear[:FINAL] (FINAL: the factor at the last step, default 0.1).")
    var lrSchedule: LearningRateSchedule?

    static let settings: [String: SettingsFile.Kind] = ["hypernet-init": .text, "lr-schedule": .text]

    func apply(to c: inout ExperimentConfig) {
        if let hypernetInit { c.hypernetInit = hypernetInit }
        if let lrSchedule { c.learningRateSchedule = lrSchedule.shape == .constant ? nil : lrSchedule }
    }

    var givenSettings: Set<Recipe.Setting> {
        Set([(hypernetInit != nil, Recipe.Setting.hypernetInit), (lrSchedule != nil, .learningRateSchedule)].filter(\.0).map(\.1))
    }
}

/// Where λ̂ starts and how big a validation batch a λ̂ step takes: hyper-training and the
/// unrolled baseline.
struct LambdaStartOptions: ParsableArguments, ExperimentSettingsGroup {
    @Option(name: .customLong("lambda-init"), help: "Initial λ̂ (every component).")
    var lambdaInit: Double?
    @Option(name: .customLong("valid-batch-size"), help: "Validation minibatch per λ̂ step.")
    var validBatchSize: Int?

    static let settings: [String: SettingsFile.Kind] = ["lambda-init": .number, "valid-batch-size": .integer]

    func apply(to c: inout ExperimentConfig) {
        if let lambdaInit { c.lambdaInit = lambdaInit }
        if let validBatchSize { c.validBatchSize = validBatchSize }
    }

    var givenSettings: Set<Recipe.Setting> {
        Set([(lambdaInit != nil, Recipe.Setting.lambdaInit), (validBatchSize != nil, .validBatchSize)].filter(\.0).map(\.1))
    }
}

/// The settings only hyper-training reads (Algorithms 2–4).
struct HyperTrainingOptions: ParsableArguments, ExperimentSettingsGroup {
    @Option(help: "global (Alg. 2), joint (Alg. 3), simplified (Alg. 4).")
    var algorithm: Algorithm?
    @Option(help: "Hypernetwork: linear, mlp:K, factorized:K.")
    var hypernet: HypernetKind?
    @Option(name: .customLong("hypernet-input"), help: "raw (w = φ(λ), the paper's form) or centred (w = φ(λ − λ̂)).")
    var hypernetInput: HypernetInput?
    @Option(name: .customLong("samples"), help: "λ samples (training tasks) per step.")
    var samples: Int?
    @Option(help: "Std of λ ~ N(λ̂, σ²) for the joint algorithm.")
    var sigma: Double?
    @Option(help: "Steps to run.")
    var steps: Int?
    @Option(name: .customLong("phase1-steps"), help: "Global algorithm: steps training φ under the prior before descending λ̂.")
    var phase1Steps: Int?
    @Option(name: .customLong("prior-mean"), help: "Global algorithm: prior mean of λ.")
    var priorMean: Double?
    @Option(name: .customLong("prior-std"), help: "Global algorithm: prior std of λ.")
    var priorStd: Double?
    @Option(name: .customLong("phi-optimizer"), help: "adam or sgd for φ.")
    var phiOptimizer: OptimizerKind?
    @Option(name: .customLong("phi-lr"), help: "Step size for φ.")
    var phiLR: Double?
    @Option(name: .customLong("lambda-optimizer"), help: "adam or sgd for λ̂.")
    var lambdaOptimizer: OptimizerKind?
    @Option(name: .customLong("lambda-lr"), help: "Step size for λ̂.")
    var lambdaLR: Double?
    @Option(name: .customLong("lambda-warmup-steps"), help: "Steps during which only φ trains (λ̂ stays at --lambda-init).")
    var lambdaWarmupSteps: Int?
    @Option(name: .customLong("divergence-guard"), help: "on: roll back to the last good state and halve the step sizes when the validation loss blows up; off.")
    var divergenceGuard: Switch?
    @Option(name: .customLong("pipelined"), help: "on: each step's tasks are made from the parameters before the previous step's update, so a cluster hands out the next tasks while it updates (gradients one step old, the same bits in every layout; on deep up to 3 % higher validation loss, EXPERIMENTS.md); off (default): lockstep.")
    var pipelined: Switch?
    @Option(name: .customLong("eval-every"), help: "Full validation/test evaluation every N steps (0: only at the end).")
    var evalEvery: Int?
    @Option(name: .customLong("retrain-steps"), help: "After hyper-training, train the model from scratch at the final λ̂ for N steps (Algorithm 1; 0: no retraining).")
    var retrainSteps: Int?
    @Option(help: "The run's answer: hypernetwork (w = φ(λ̂)) or retrained (needs --retrain-steps ≥ 1); what `export` writes.")
    var answer: RunAnswer?

    static let settings: [String: SettingsFile.Kind] = [
        "algorithm": .text, "hypernet": .text, "hypernet-input": .text, "samples": .integer, "sigma": .number, "steps": .integer,
        "phase1-steps": .integer, "prior-mean": .number, "prior-std": .number, "phi-optimizer": .text, "phi-lr": .number,
        "lambda-optimizer": .text, "lambda-lr": .number, "lambda-warmup-steps": .integer, "divergence-guard": .text, "pipelined": .text,
        "eval-every": .integer, "retrain-steps": .integer, "answer": .text,
    ]

    func apply(to c: inout ExperimentConfig) {
        if let algorithm { c.algorithm = algorithm }
        if let hypernet { c.hypernet = hypernet }
        if let hypernetInput { c.hypernetInput = hypernetInput }
        if let samples { c.samplesPerStep = samples }
        if let sigma { c.sigma = sigma }
        if let steps { c.steps = steps }
        if let phase1Steps { c.phase1Steps = phase1Steps }
        else if c.algorithm == .globalBestResponse { c.phase1Steps = c.steps / 2 }
        if let priorMean { c.priorMean = priorMean }
        if let priorStd { c.priorStd = priorStd }
        if let phiOptimizer { c.phiOptimizer = phiOptimizer }
        if let phiLR { c.phiLearningRate = phiLR }
        if let lambdaOptimizer { c.lambdaOptimizer = lambdaOptimizer }
        if let lambdaLR { c.lambdaLearningRate = lambdaLR }
        if let lambdaWarmupSteps { c.lambdaWarmupSteps = lambdaWarmupSteps }
        if let divergenceGuard { c.divergenceGuard = divergenceGuard == .on ? DivergenceGuardSettings() : nil }
        if let pipelined { c.pipelined = pipelined == .on ? true : nil }
        if let evalEvery { c.evalEvery = evalEvery }
        if let retrainSteps { c.retrainSteps = retrainSteps }
        if let answer { c.answer = answer }
    }

    var givenSettings: Set<Recipe.Setting> {
        let flags: [(given: Bool, setting: Recipe.Setting)] = [
            (hypernetInput != nil, .hypernetInput), (sigma != nil, .sigma), (phiLR != nil, .phiLearningRate),
            (lambdaLR != nil, .lambdaLearningRate), (lambdaWarmupSteps != nil, .lambdaWarmupSteps),
            (divergenceGuard != nil, .divergenceGuard), (retrainSteps != nil, .retrainSteps), (answer != nil, .answer),
        ]
        return Set(flags.filter(\.given).map(\.setting))
    }
}

/// Every experiment flag: what `run` and `coordinator` take.
struct ExperimentOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions
    @OptionGroup var training: TrainingOptions
    @OptionGroup var start: LambdaStartOptions
    @OptionGroup var hyper: HyperTrainingOptions

    static let settings = ModelOptions.settings.merging(TrainingOptions.settings) { a, _ in a }
        .merging(LambdaStartOptions.settings) { a, _ in a }.merging(HyperTrainingOptions.settings) { a, _ in a }

    /// The resolved configuration; with `external`, for that model (set before the recipe,
    /// whose choices depend on the number of hyperparameters).
    func config(external: ExternalModel? = nil) throws -> ExperimentConfig {
        try model.config([ExternalModelGroup(model: external), training, start, hyper])
    }

    func validate() throws { _ = try config() }
}

/// Puts an external model (`coordinator --model-spec`) into the configuration.
struct ExternalModelGroup: ExperimentSettingsGroup {
    let model: ExternalModel?
    func apply(to config: inout ExperimentConfig) { if let model { config.external = model } }
    var givenSettings: Set<Recipe.Setting> { [] }
}

/// The experiment flags a trial reads (`trial`, `search`): the model, its data, its
/// initialisation and step-size schedule.
struct TrialExperimentOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions
    @OptionGroup var training: TrainingOptions

    static let settings = ModelOptions.settings.merging(TrainingOptions.settings) { a, _ in a }

    func config() throws -> ExperimentConfig { try model.config([training]) }

    func validate() throws { _ = try config() }
}

/// The experiment flags the unrolled baseline reads: the model, its data, λ̂₀ and the
/// validation batch.
struct UnrolledExperimentOptions: ParsableArguments {
    @OptionGroup var model: ModelOptions
    @OptionGroup var start: LambdaStartOptions

    static let settings = ModelOptions.settings.merging(LambdaStartOptions.settings) { a, _ in a }

    func config() throws -> ExperimentConfig { try model.config([start]) }

    func validate() throws { _ = try config() }
}
