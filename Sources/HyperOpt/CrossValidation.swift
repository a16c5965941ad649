import Linalg
import Models

/// The outcome of training a model from scratch at fixed λ (Algorithm 1).
public struct TrialOutcome: Sendable, Equatable, Codable {
    /// The hyperparameters.
    public let lambda: [Float]
    /// Full-split losses of the trained weights.
    public let evaluation: Evaluation
    /// Optimisation steps taken.
    public let steps: Int
}

/// Algorithm 1: initialise `w ~ initScale·N(0,1)` (or, when the configuration initialises the
/// hypernetwork fan-in aware, the same He/LeCun initialisation that φ(λ̂) starts from), Adam
/// on `L_train(w, λ)` for `steps` minibatch steps under the configuration's step-size
/// schedule (stretched over the trial), report the full-split losses. A trial thus trains
/// the same model with the same optimizer as the model inside hyper-training.
public enum CrossValidation {
    /// Runs one trial. Minibatches come from `(config.seed, step, trialIndex)` streams.
    public static func trial(
        config: ExperimentConfig, data: ExperimentData, lambda: [Float], steps: Int,
        learningRate: Double, trialIndex: Int = 0
    ) throws(HyperTrainingError) -> TrialOutcome {
        try trial(config: config, data: data, lambda: lambda, steps: steps, learningRate: learningRate,
                  trialIndex: trialIndex, keepWeights: false).outcome
    }

    /// Runs one trial and, with `keepWeights`, also returns the trained weights `w*(λ)` (the
    /// targets a hypernetwork can be fitted to).
    public static func trial(
        config: ExperimentConfig, data: ExperimentData, lambda: [Float], steps: Int,
        learningRate: Double, trialIndex: Int = 0, keepWeights: Bool
    ) throws(HyperTrainingError) -> (outcome: TrialOutcome, weights: [Float]?) {
        let shape = config.shape
        let reg = Regularizer(shape: shape, scope: config.scope, norm: config.norm)
        precondition(lambda.count == reg.groupCount, "trial: λ has \(lambda.count) values, scope needs \(reg.groupCount)")
        let mlp = MLP<Float>(shape: shape, maxBatch: max(min(config.batchSize, data.train.count), 1000))
        var rng = Philox(seed: config.seed, step: 0, task: UInt32(trialIndex), stream: RandomStream.trial.rawValue)
        let std: [Double] = config.hypernetInit == .fanIn
            ? Hypernet<Float>.elementaryStd(shape) : Array(repeating: config.initScale, count: shape.parameterCount)
        let w = AlignedBuffer<Float>(std.map { s in Float(s * rng.nextNormal()) })
        let g = AlignedBuffer<Float>(count: shape.parameterCount)
        let lam = AlignedBuffer<Float>(lambda)
        let scratch = AlignedBuffer<Float>(count: 2 * reg.groupCount)
        let opt = Optimizer<Float>(kind: .adam, count: shape.parameterCount, learningRate: learningRate)
        var rows: [Int32] = []
        for t in 0..<steps {
            opt.learningRateScale = config.learningRateSchedule?.factor(step: UInt64(t), total: steps) ?? 1
            TaskSampler.rows(seed: config.seed, step: UInt64(t), task: trialIndex, stream: .trainBatch,
                             batch: config.batchSize, of: data.train.count, into: &rows)
            let l = rows.withUnsafeBufferPointer {
                mlp.loss(w: w.constPointer, data: data.train, rows: $0, loss: config.loss, grad: g.pointer)
            }
            reg.addGradient(w: w.constPointer, lambda: lam.constPointer, gradW: g.pointer, gradLambda: nil, scratch: scratch.pointer)
            guard l.isFinite, g.allFinite else { throw .nonFinite(step: UInt64(t), what: "trial gradient") }
            opt.step(params: w.pointer, grad: g.constPointer, count: shape.parameterCount)
        }
        let train = mlp.loss(w: w.constPointer, data: data.train, loss: config.loss)
            + reg.addGradient(w: w.constPointer, lambda: lam.constPointer, gradW: nil, gradLambda: nil, scratch: scratch.pointer)
        let valid = mlp.loss(w: w.constPointer, data: data.valid, loss: config.loss)
        let test = data.test.count > 0 ? mlp.loss(w: w.constPointer, data: data.test, loss: config.loss) : .nan
        let err = data.test.count > 0 ? mlp.errorRate(w: w.constPointer, data: data.test) : .nan
        let outcome = TrialOutcome(lambda: lambda,
                                   evaluation: Evaluation(trainLoss: train, validLoss: valid, testLoss: test, testError: err),
                                   steps: steps)
        return (outcome, keepWeights ? w.array : nil)
    }
}
