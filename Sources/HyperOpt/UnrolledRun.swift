import Linalg
import Models

/// Everything that determines an unrolled-hypergradient run (`UnrolledRun`): the elementary
/// model and regularizer, the inner loop (T steps of SGD with momentum from a fixed w₀), and the
/// outer loop (Adam on λ̂). The data splits themselves come from `ExperimentConfig`
/// (`ExperimentData.load`); `init(experiment:)` copies the shared settings.
public struct UnrolledConfig: Sendable, Codable, Equatable {
    /// Elementary model layer sizes.
    public var layers: [Int] = [784, 10]
    /// Hyperparameter grouping.
    public var scope: RegularizationScope = .global
    /// Squared or unsquared L2 (both supported).
    public var norm: RegularizationNorm = .squared
    /// Prediction loss.
    public var loss: PredictionLoss = .mse
    /// Training minibatch per inner step (a full batch, in order, when it covers the split).
    public var batchSize: Int = 1000
    /// `T`, inner SGD steps per hypergradient.
    public var innerSteps: Int = 100
    /// `η`, inner step size.
    public var innerLearningRate: Double = 0.1
    /// `μ`, inner momentum.
    public var momentum: Double = 0.9
    /// Outer iterations (one hypergradient and one Adam step on λ̂ each).
    public var outerSteps: Int = 20
    /// Adam step size for λ̂.
    public var outerLearningRate: Double = 0.1
    /// Initial λ̂ (every component).
    public var lambdaInit: Double = -3.5
    /// Validation rows for `L_valid`: a fixed batch of this many (drawn once from the seed), or
    /// the whole split when nil or at least the split's size.
    public var validBatchSize: Int? = nil
    /// Scale of `w₀ ~ initScale·N(0, 1)`.
    public var initScale: Double = 0.01
    /// Keep `(w_t, v_t)` every this many inner steps and recompute in between on the reverse
    /// pass; 0 keeps the whole trajectory (see `UnrolledHypergradient` on memory).
    public var checkpointEvery: Int = 0
    /// Run seed: w₀, the minibatches and the validation batch derive from it.
    public var seed: UInt64 = 1

    /// The defaults (see each property).
    public init() {}

    /// Copies the settings shared with a hyper-training run: layers, scope, norm, loss, batch
    /// sizes, initial λ̂, init scale and seed (the other fields keep their defaults).
    public init(experiment c: ExperimentConfig) {
        layers = c.layers
        scope = c.scope
        norm = c.norm
        loss = c.loss
        batchSize = c.batchSize
        validBatchSize = c.validBatchSize < c.nValid ? c.validBatchSize : nil
        lambdaInit = c.lambdaInit
        initScale = c.initScale
        seed = c.seed
    }

    /// Elementary model shape.
    public var shape: MLPShape { MLPShape(layers) }

    /// Problems with this configuration, each a sentence; empty when valid. (The MNIST sizes
    /// 784 → 10 are the data's business: small synthetic problems are allowed here.)
    public func problems() -> [String] {
        var p: [String] = []
        if layers.count < 2 || layers.contains(where: { $0 <= 0 }) { p.append("layers must be at least two positive sizes, got \(layers)") }
        if batchSize < 1 { p.append("batch-size must be at least 1") }
        if innerSteps < 1 { p.append("inner-steps must be at least 1") }
        if !(innerLearningRate > 0 && innerLearningRate.isFinite) { p.append("inner-lr must be positive") }
        if !(momentum >= 0 && momentum < 1) { p.append("momentum must be in [0, 1), got \(momentum)") }
        if outerSteps < 0 { p.append("outer-steps must be ≥ 0") }
        if !(outerLearningRate > 0 && outerLearningRate.isFinite) { p.append("outer-lr must be positive") }
        if !lambdaInit.isFinite { p.append("lambda-init must be finite") }
        if let b = validBatchSize, b < 1 { p.append("valid-batch-size must be at least 1") }
        if !(initScale >= 0 && initScale.isFinite) { p.append("init-scale must be a finite number ≥ 0") }
        if checkpointEvery < 0 { p.append("checkpoint-every must be ≥ 0") }
        return p
    }

    /// `D`-vectors the reverse pass keeps: one segment of `w_t` plus `(w, v)` per checkpoint
    /// (multiply by `D·8` bytes).
    public var storedVectors: Int {
        let k = checkpointEvery == 0 ? innerSteps : min(checkpointEvery, innerSteps)
        return k + 2 * ((innerSteps + k - 1) / max(k, 1))
    }
}

/// What an outer iteration reports.
public struct UnrolledReport: Sendable, Equatable {
    /// Outer iterations completed (1 after the first).
    public let iteration: Int
    /// The λ̂ the hypergradient was computed at.
    public let lambda: [Double]
    /// `L_valid(w_T(λ))` at that λ̂ (the fixed validation batch or the whole split).
    public let validLoss: Double
    /// `‖dL_valid/dλ‖₂`.
    public let hypergradientNorm: Double
    /// λ̂ after the Adam step.
    public let lambdaHat: [Double]
    /// Inner training steps run so far (`iteration·T`; the reverse passes are not counted).
    public let innerSteps: Int
}

/// The outcome of an unrolled run.
public struct UnrolledResult: Sendable, Equatable {
    /// The final λ̂.
    public let lambdaHat: [Double]
    /// Full-split losses of `w_T(λ̂)`: `L_train` (prediction + regularizer), `L_valid`, test
    /// loss and error (NaN without a test split).
    public let evaluation: Evaluation
    /// Outer iterations taken.
    public let iterations: Int
    /// Inner training steps run, including the final evaluation's.
    public let innerSteps: Int
}

/// Hyperparameter optimization by unrolled reverse-mode hypergradients: each outer iteration
/// trains `w` from the same `w₀` for `T` steps at λ̂, back-propagates `L_valid(w_T)` to λ̂
/// (`UnrolledHypergradient`) and takes one Adam step on λ̂. Pure compute: progress goes to the
/// caller's observer, which prints or records it.
///
/// Not thread-safe: one instance per thread.
public final class UnrolledRun {
    /// The configuration.
    public let config: UnrolledConfig
    /// The hypergradient engine (training and validation data, workspaces).
    public let unrolled: UnrolledHypergradient
    /// Test examples (may be empty).
    public let test: Examples<Double>
    /// Current λ̂.
    public private(set) var lambdaHat: [Double]
    /// Outer iterations completed.
    public private(set) var iteration = 0
    /// Inner training steps run so far.
    public private(set) var innerSteps = 0

    private let w0: [Double]
    private let optimizer: Optimizer<Double>
    private let evalMLP: MLP<Double>
    private let regScratch: AlignedBuffer<Double>

    /// - Parameters:
    ///   - config: a configuration without `problems()`.
    ///   - train: training examples.
    ///   - valid: validation examples.
    ///   - test: test examples (may be empty).
    public init(config: UnrolledConfig, train: Examples<Double>, valid: Examples<Double>, test: Examples<Double>) {
        self.config = config
        unrolled = UnrolledHypergradient(config: config, train: train, valid: valid)
        self.test = test
        lambdaHat = unrolled.initialLambda()
        w0 = unrolled.initialWeights()
        optimizer = Optimizer(kind: .adam, count: unrolled.hyperparameterCount, learningRate: config.outerLearningRate)
        evalMLP = MLP(shape: config.shape, maxBatch: 1000)
        regScratch = AlignedBuffer(count: 2 * unrolled.hyperparameterCount)
    }

    /// The splits of a hyper-training run, converted to Double.
    public convenience init(config: UnrolledConfig, data: ExperimentData) {
        self.init(config: config, train: data.train.converted(to: Double.self),
                  valid: data.valid.converted(to: Double.self), test: data.test.converted(to: Double.self))
    }

    /// One outer iteration: hypergradient at λ̂, then an Adam step. On a non-finite loss or
    /// hypergradient it throws and λ̂ and the optimizer are unchanged.
    public func step() throws(HyperTrainingError) -> UnrolledReport {
        let (loss, grad, _) = unrolled.hypergradient(lambda: lambdaHat, w0: w0)
        guard loss.isFinite, grad.allFinite else {
            throw .nonFinite(step: UInt64(iteration), what: "unrolled hypergradient (L_valid \(loss))")
        }
        let at = lambdaHat
        lambdaHat.withUnsafeMutableBufferPointer { p in
            grad.withUnsafeBufferPointer { g in
                optimizer.step(params: p.baseAddress!, grad: g.baseAddress!, count: p.count)
            }
        }
        iteration += 1
        innerSteps += config.innerSteps
        let norm = grad.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return UnrolledReport(iteration: iteration, lambda: at, validLoss: loss, hypergradientNorm: norm,
                              lambdaHat: lambdaHat, innerSteps: innerSteps)
    }

    /// Trains `w_T(λ̂)` from w₀ and returns its full-split losses (the validation loss on the
    /// whole split, whatever `validBatchSize` is).
    public func evaluate() -> Evaluation {
        let wT = unrolled.train(lambda: lambdaHat, w0: w0)
        innerSteps += config.innerSteps
        return wT.withUnsafeBufferPointer { wb in
            lambdaHat.withUnsafeBufferPointer { lb in
                let w = wb.baseAddress!
                let reg = unrolled.regularizer.addGradient(w: w, lambda: lb.baseAddress!, gradW: nil, gradLambda: nil,
                                                                scratch: regScratch.pointer)
                let train = evalMLP.loss(w: w, data: unrolled.train, loss: config.loss) + reg
                let valid = evalMLP.loss(w: w, data: unrolled.valid, loss: config.loss)
                let testLoss = test.count > 0 ? evalMLP.loss(w: w, data: test, loss: config.loss) : .nan
                let testError = test.count > 0 ? evalMLP.errorRate(w: w, data: test) : .nan
                return Evaluation(trainLoss: train, validLoss: valid, testLoss: testLoss, testError: testError)
            }
        }
    }

    /// Runs the remaining outer iterations (or until `observer` returns false), then evaluates
    /// `w_T` at the final λ̂.
    public func run(observer: (UnrolledReport) -> Bool = { _ in true }) throws(HyperTrainingError) -> UnrolledResult {
        while iteration < config.outerSteps {
            let report = try step()
            if !observer(report) { break }
        }
        let evaluation = evaluate()
        return UnrolledResult(lambdaHat: lambdaHat, evaluation: evaluation, iterations: iteration, innerSteps: innerSteps)
    }
}
