import ArgumentParser
import HyperOpt
import Models

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

/// The experiment flags shared by `run` and `coordinator`. Unset flags keep the preset's
/// (or the default) value.
struct ExperimentOptions: ParsableArguments {
    @Option(help: "Start from a named setting: fig4, fig7, fig5, deep (see README).")
    var preset: String?
    @Option(help: "global (Alg. 2), joint (Alg. 3), simplified (Alg. 4).")
    var algorithm: Algorithm?
    @Option(help: "Elementary MLP layer sizes, e.g. 784-10 or 784-100-100-10.")
    var layers: String?
    @Option(help: "Regularization scope: global, per-class, per-layer, per-weight.")
    var scope: RegularizationScope?
    @Option(help: "L2 norm: squared (default) or unsquared (the authors' code).")
    var norm: RegularizationNorm?
    @Option(help: "Prediction loss: mse (default) or gaussian (the authors' 50·MSE − 1.384).")
    var loss: PredictionLoss?
    @Option(help: "Hypernetwork: linear, mlp:K, factorized:K.")
    var hypernet: HypernetKind?
    @Option(name: .customLong("n-train"), help: "Training examples (first N MNIST training images).")
    var nTrain: Int?
    @Option(name: .customLong("n-valid"), help: "Validation examples (the next N training images).")
    var nValid: Int?
    @Option(name: .customLong("n-test"), help: "Test examples (first N official test images).")
    var nTest: Int?
    @Option(name: .customLong("batch-size"), help: "Training minibatch per λ sample.")
    var batchSize: Int?
    @Option(name: .customLong("valid-batch-size"), help: "Validation minibatch per λ̂ step.")
    var validBatchSize: Int?
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
    @Option(name: .customLong("lambda-init"), help: "Initial λ̂ (every component).")
    var lambdaInit: Double?
    @Option(name: .customLong("hypernet-input"), help: "raw (w = φ(λ), the paper's form) or centred (w = φ(λ − λ̂)).")
    var hypernetInput: HypernetInput?
    @Option(name: .customLong("init-scale"), help: "φ initialised as scale·N(0,1) (with --hypernet-init fan-in: the relative size of the λ-dependent part).")
    var initScale: Double?
    @Option(name: .customLong("hypernet-init"), help: "normal (every parameter init-scale·N(0,1)) or fan-in (φ(λ̂) starts as a He/LeCun-initialised model; first hypernet layer scaled by 1/√H).")
    var hypernetInit: HypernetInit?
    @Option(help: "Defaults for the settings not given: stable (Hypertrain's recipe: centred input, fan-in initialisation, σ = 0.5/√H, φ step 3e-4 and λ̂ step 0.003/√H with a cosine decay to 0.1×, λ̂₀ = −ln(n-train), validation batch max(batch, 100), divergence guard) or paper (the paper's form and the presets as they are).")
    var recipe: Recipe = .stable
    @Option(name: .customLong("lr-schedule"), help: "Step-size schedule of φ and λ̂: constant, cosine[:FINAL], linear[:FINAL] (FINAL: the factor at the last step, default 0.1).")
    var lrSchedule: LearningRateSchedule?
    @Option(name: .customLong("lambda-warmup-steps"), help: "Steps during which only φ trains (λ̂ stays at --lambda-init).")
    var lambdaWarmupSteps: Int?
    @Option(name: .customLong("divergence-guard"), help: "on: roll back to the last good state and halve the step sizes when the validation loss blows up; off.")
    var divergenceGuard: Switch?
    @Option(help: "Run seed; all randomness derives from it.")
    var seed: UInt64?
    @Option(name: .customLong("eval-every"), help: "Full validation/test evaluation every N steps (0: only at the end).")
    var evalEvery: Int?
    @Option(name: .customLong("retrain-steps"), help: "After hyper-training, train the model from scratch at the final λ̂ for N steps (Algorithm 1; 0: no retraining).")
    var retrainSteps: Int?
    @Option(help: "The run's answer: hypernetwork (w = φ(λ̂)) or retrained (needs --retrain-steps ≥ 1); what `export` writes.")
    var answer: RunAnswer?

    /// The resolved configuration.
    func config() throws -> ExperimentConfig {
        var c = ExperimentConfig()
        if let preset {
            guard let p = StandardConfigs.benchmarks.first(where: { $0.name == preset }) else {
                throw ValidationError("unknown preset '\(preset)'; choose one of \(StandardConfigs.benchmarks.map(\.name).joined(separator: ", "))")
            }
            c = p.config
        }
        if let algorithm { c.algorithm = algorithm }
        if let layers {
            guard let s = MLPShape(parsing: layers) else { throw ValidationError("--layers must look like 784-100-10, got '\(layers)'") }
            c.layers = s.sizes
        }
        if let scope { c.scope = scope }
        if let norm { c.norm = norm }
        if let loss { c.loss = loss }
        if let hypernet { c.hypernet = hypernet }
        if let nTrain { c.nTrain = nTrain }
        if let nValid { c.nValid = nValid }
        if let nTest { c.nTest = nTest }
        if let batchSize { c.batchSize = batchSize }
        if let validBatchSize { c.validBatchSize = validBatchSize }
        if let samples { c.samplesPerStep = samples }
        if let sigma { c.sigma = sigma }
        if let steps { c.steps = steps }
        if let phase1Steps { c.phase1Steps = phase1Steps }
        else if c.algorithm == .globalBestResponse && phase1Steps == nil { c.phase1Steps = c.steps / 2 }
        if let priorMean { c.priorMean = priorMean }
        if let priorStd { c.priorStd = priorStd }
        if let phiOptimizer { c.phiOptimizer = phiOptimizer }
        if let phiLR { c.phiLearningRate = phiLR }
        if let lambdaOptimizer { c.lambdaOptimizer = lambdaOptimizer }
        if let lambdaLR { c.lambdaLearningRate = lambdaLR }
        if let lambdaInit { c.lambdaInit = lambdaInit }
        if let initScale { c.initScale = initScale }
        if let hypernetInput { c.hypernetInput = hypernetInput }
        if let hypernetInit { c.hypernetInit = hypernetInit }
        if let seed { c.seed = seed }
        if let evalEvery { c.evalEvery = evalEvery }
        if let lrSchedule { c.learningRateSchedule = lrSchedule.shape == .constant ? nil : lrSchedule }
        if let lambdaWarmupSteps { c.lambdaWarmupSteps = lambdaWarmupSteps }
        if let divergenceGuard { c.divergenceGuard = divergenceGuard == .on ? DivergenceGuardSettings() : nil }
        if let retrainSteps { c.retrainSteps = retrainSteps }
        if let answer { c.answer = answer }
        c = recipe.resolve(c, given: givenSettings)
        let problems = c.problems()
        if !problems.isEmpty { throw ValidationError(problems.joined(separator: "\n")) }
        return c
    }

    /// The recipe settings given on the command line.
    var givenSettings: Set<Recipe.Setting> {
        let flags: [(given: Bool, setting: Recipe.Setting)] = [
            (hypernetInput != nil, .hypernetInput), (hypernetInit != nil, .hypernetInit), (sigma != nil, .sigma),
            (phiLR != nil, .phiLearningRate), (lambdaLR != nil, .lambdaLearningRate), (lambdaInit != nil, .lambdaInit),
            (validBatchSize != nil, .validBatchSize), (lrSchedule != nil, .learningRateSchedule),
            (lambdaWarmupSteps != nil, .lambdaWarmupSteps), (divergenceGuard != nil, .divergenceGuard),
            (retrainSteps != nil, .retrainSteps), (answer != nil, .answer),
        ]
        return Set(flags.filter(\.given).map(\.setting))
    }

    func validate() throws { _ = try config() }
}
