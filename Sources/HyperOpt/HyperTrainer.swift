import Linalg
import Models

/// The compute of every role: a training task's `∂L_train/∂φ`, a validation task's
/// `∂L_valid/∂λ̂`, and evaluation. Pure computation, no I/O: the single-process run, the
/// training workers and the validator all call these methods.
///
/// Not thread-safe: one instance per thread (it owns the workspaces).
public final class HyperTrainer {
    /// The configuration.
    public let config: ExperimentConfig
    /// The data.
    public let data: ExperimentData
    /// Elementary model.
    public let mlp: MLP<Float>
    /// Regularizer.
    public let regularizer: Regularizer
    /// Hypernetwork.
    public let hypernet: Hypernet<Float>
    /// Random inputs of tasks.
    public let sampler: TaskSampler

    /// `H`.
    public var hyperparameterCount: Int { regularizer.groupCount }
    /// `|φ|`.
    public var phiCount: Int { hypernet.parameterCount }
    /// `D`.
    public var weightCount: Int { mlp.shape.parameterCount }

    private let w: AlignedBuffer<Float>
    private let gw: AlignedBuffer<Float>
    private let lambda: AlignedBuffer<Float>
    private let lambdaHatCopy: AlignedBuffer<Float>
    private let centerCopy: AlignedBuffer<Float>
    private let regScratch: AlignedBuffer<Float>
    private let input: HypernetInputMap
    /// The hypernetwork input of the last training task (for its backward pass).
    private var lastInput: UnsafePointer<Float>?
    private var rows: [Int32] = []
    /// Per-task factors of the step's φ-gradient (`trainTaskRecordingFactors`).
    private let factors: PhiGradientFactors

    /// - Parameters:
    ///   - config: a configuration without `problems()`.
    ///   - data: the splits.
    public init(config: ExperimentConfig, data: ExperimentData) {
        self.config = config
        self.data = data
        let shape = config.shape
        let maxBatch = max(min(config.batchSize, data.train.count), min(config.validBatchSize, data.valid.count), 1000)
        mlp = MLP(shape: shape, maxBatch: maxBatch)
        regularizer = Regularizer(shape: shape, scope: config.scope, norm: config.norm)
        hypernet = Hypernet(kind: config.hypernet, inputCount: regularizer.groupCount, outputCount: shape.parameterCount)
        sampler = TaskSampler(config: config)
        w = AlignedBuffer(count: shape.parameterCount)
        gw = AlignedBuffer(count: shape.parameterCount)
        lambda = AlignedBuffer(count: regularizer.groupCount)
        lambdaHatCopy = AlignedBuffer(count: regularizer.groupCount)
        centerCopy = AlignedBuffer(count: regularizer.groupCount)
        regScratch = AlignedBuffer(count: 2 * regularizer.groupCount)
        input = HypernetInputMap(config: config, count: regularizer.groupCount)
        rows.reserveCapacity(maxBatch)
        factors = PhiGradientFactors(for: hypernet, capacity: max(config.samplesPerStep, 1))
    }

    /// Initial φ and λ̂ of the run.
    public func initialPhi() -> [Float] {
        switch config.hypernetInit ?? .normal {
        case .normal: hypernet.initialParameters(seed: config.seed, scale: config.initScale)
        case .fanIn: hypernet.fanInParameters(seed: config.seed, scale: config.initScale, elementary: mlp.shape)
        }
    }
    /// Initial λ̂.
    public func initialLambdaHat() -> [Float] { Array(repeating: Float(config.lambdaInit), count: hyperparameterCount) }

    /// The λ sample of the last training task.
    public var lastLambda: [Float] { lambda.array }
    /// The training rows of the last training task.
    public var lastRows: [Int32] { rows }

    /// Training task `task` at `step`: samples λ and the minibatch, writes
    /// `∂/∂φ L_train(φ(λ), λ)` into `gradPhi` (`phiCount` values; overwriting, or adding when
    /// `accumulate` — bit-identical to adding the written gradient, see `Hypernet.backward`).
    /// Returns `L_train`; `lastLambda` and `lastRows` tell what was used.
    public func trainTask(
        phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, step: UInt64, task: Int,
        gradPhi: UnsafeMutablePointer<Float>, accumulate: Bool = false
    ) -> Double {
        let loss = trainTask(phi: phi, lambdaHat: lambdaHat, step: step, task: task, gradW: gw.pointer)
        hypernet.backward(phi: phi, lambda: lastInput!, gradW: gw.constPointer, gradPhi: gradPhi,
                          gradLambda: nil, accumulate: accumulate)
        return loss
    }

    /// Training task `task` at `step` up to the weights: samples λ and the minibatch, writes
    /// `∂/∂w L_train(w, λ)` at `w = φ(λ)` (data term plus regularizer, `weightCount` values)
    /// into `gradW`. `TaskGradientExpander` turns it into exactly the `gradPhi` of the other
    /// form. Returns `L_train`; `lastLambda` and `lastRows` tell what was used.
    public func trainTask(
        phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, step: UInt64, task: Int,
        gradW: UnsafeMutablePointer<Float>
    ) -> Double {
        let h = hyperparameterCount
        sampler.lambda(step: step, task: task, lambdaHat: lambdaHat, into: lambda.pointer, count: h)
        sampler.trainRows(step: step, task: task, count: data.train.count, into: &rows)
        let x = input.map(lambda.constPointer, center: lambdaHat)
        lastInput = x
        hypernet.forward(phi: phi, lambda: x, w: w.pointer)
        return modelGradient(weights: w.constPointer, lambda: lambda.constPointer, gradW: gradW)
    }

    /// Training task `task` at `step` given its weights `w = φ(λ)` and λ sample instead of φ
    /// (a weight task: the coordinator ran the hypernetwork): samples the minibatch and writes
    /// `∂/∂w L_train(w, λ)` into `gradW` — the bits of the φ form's `gradW` when `weights` and
    /// `lambda` are that form's (both 64-byte aligned, as every workspace). Returns `L_train`;
    /// `lastRows` tells which rows were used.
    public func trainTask(
        weights: UnsafePointer<Float>, lambda: UnsafePointer<Float>, step: UInt64, task: Int,
        gradW: UnsafeMutablePointer<Float>
    ) -> Double {
        sampler.trainRows(step: step, task: task, count: data.train.count, into: &rows)
        return modelGradient(weights: weights, lambda: lambda, gradW: gradW)
    }

    /// `L_train(w, λ)` on the rows in `rows`, its `∂/∂w` into `gradW`.
    private func modelGradient(weights: UnsafePointer<Float>, lambda: UnsafePointer<Float>, gradW: UnsafeMutablePointer<Float>) -> Double {
        let pred = rows.withUnsafeBufferPointer {
            mlp.loss(w: weights, data: data.train, rows: $0, loss: config.loss, grad: gradW)
        }
        let reg = regularizer.addGradient(w: weights, lambda: lambda, gradW: gradW, gradLambda: nil, scratch: regScratch.pointer)
        return pred + reg
    }

    /// Training task `task` at `step` like `trainTask`, but its `∂L/∂φ` is only recorded (as
    /// the factors it is made of, slot `task`) for `forEachPhiGradientSumChunk` /
    /// `writePhiGradientSum` of this step. Returns `L_train`.
    public func trainTaskRecordingFactors(
        phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, step: UInt64, task: Int
    ) -> Double {
        let g = factors.gradW(slot: task)
        let loss = trainTask(phi: phi, lambdaHat: lambdaHat, step: step, task: task, gradW: g)
        hypernet.backward(phi: phi, lambda: lastInput!, gradW: g, recordingInto: factors, slot: task)
        return loss
    }

    /// `true` when the sum of the recorded gradients of tasks `0..<tasks` is certainly finite
    /// (`false`: not proven; write it with `writePhiGradientSum` and check it).
    public func phiGradientSumIsCertainlyFinite(tasks: Int) -> Bool {
        factors.sumIsCertainlyFinite(tasks: tasks)
    }

    /// The sum of the recorded gradients of tasks `0..<tasks`, in consecutive pieces
    /// (`HyperState.applyPhiStep(tasks:chunks:)`); the bits of adding the tasks' `trainTask`
    /// gradients in task order.
    public func forEachPhiGradientSumChunk(tasks: Int, _ body: (_ offset: Int, _ count: Int, _ values: UnsafePointer<Float>) -> Void) {
        hypernet.forEachGradientSumChunk(factors, tasks: tasks, body)
    }

    /// Writes the sum of the recorded gradients of tasks `0..<tasks` into `gradPhi`.
    public func writePhiGradientSum(tasks: Int, into gradPhi: UnsafeMutablePointer<Float>) {
        hypernet.writeGradientSum(factors, tasks: tasks, into: gradPhi)
    }

    /// Validation task at `step`: writes `∂/∂λ̂ L_valid(φ(λ̂))` on the step's validation
    /// minibatch into `gradLambda` (`H` values) and returns `L_valid` on that batch.
    public func validTask(
        phi: UnsafePointer<Float>, lambdaHat: UnsafePointer<Float>, step: UInt64,
        gradLambda: UnsafeMutablePointer<Float>
    ) -> Double {
        // Centred: the input is λ̂ − λ̂ = 0 and the gradient with respect to the input is the
        // gradient with respect to λ at λ̂ with the centre held fixed.
        let x = input.map(lambdaHat, center: lambdaHat)
        hypernet.forward(phi: phi, lambda: x, w: w.pointer)
        let loss = validTask(weights: w.constPointer, step: step, gradW: gw.pointer)
        hypernet.backward(phi: phi, lambda: x, gradW: gw.constPointer, gradPhi: nil, gradLambda: gradLambda)
        return loss
    }

    /// Validation task at `step` given the weights `w = φ(λ̂)` instead of φ: writes
    /// `∂L_valid/∂w` on the step's validation minibatch into `gradW` (`weightCount` values) and
    /// returns `L_valid` on that batch. `TaskGradientExpander.hypergradient` turns it into
    /// exactly the `gradLambda` of the other form.
    public func validTask(weights: UnsafePointer<Float>, step: UInt64, gradW: UnsafeMutablePointer<Float>) -> Double {
        sampler.validRows(step: step, count: data.valid.count, into: &rows)
        return rows.withUnsafeBufferPointer {
            mlp.loss(w: weights, data: data.valid, rows: $0, loss: config.loss, grad: gradW)
        }
    }

    /// Full-split losses of `w = φ(λ)`. With a centred input, `center` is the λ̂ that φ is
    /// centred on (nil: `lambda` itself, i.e. the evaluation at λ̂); Algorithm 2 always uses
    /// its prior mean.
    public func evaluate(phi: UnsafePointer<Float>, lambda: UnsafePointer<Float>, center: UnsafePointer<Float>? = nil) -> Evaluation {
        hypernet.forward(phi: phi, lambda: input.map(lambda, center: center ?? lambda), w: w.pointer)
        return evaluateWorkspaceWeights(lambda: lambda)
    }

    /// Full-split losses of the given weights (`weightCount` values; the training loss
    /// includes the regularizer at `lambda`, `H` values): e.g. a retrained model's.
    public func evaluate(weights: [Float], lambda: [Float]) -> Evaluation {
        precondition(weights.count == weightCount && lambda.count == hyperparameterCount,
                     "evaluate: \(weights.count) weights and \(lambda.count) λ values; the model has \(weightCount) and H = \(hyperparameterCount)")
        w.load(weights)
        lambdaHatCopy.load(lambda)
        return evaluateWorkspaceWeights(lambda: lambdaHatCopy.constPointer)
    }

    /// Full-split losses of the weights in the workspace `w`.
    private func evaluateWorkspaceWeights(lambda: UnsafePointer<Float>) -> Evaluation {
        let train = mlp.loss(w: w.constPointer, data: data.train, loss: config.loss)
        let reg = regularizer.addGradient(w: w.constPointer, lambda: lambda, gradW: nil, gradLambda: nil, scratch: regScratch.pointer)
        let valid = mlp.loss(w: w.constPointer, data: data.valid, loss: config.loss)
        let test = data.test.count > 0 ? mlp.loss(w: w.constPointer, data: data.test, loss: config.loss) : .nan
        let testError = data.test.count > 0 ? mlp.errorRate(w: w.constPointer, data: data.test) : .nan
        return Evaluation(trainLoss: train + reg, validLoss: valid, testLoss: test, testError: testError)
    }

    /// `w = φ(λ)` as an array (for reports and predictions) when φ is centred on λ itself:
    /// the weights at λ̂ with `lambda` = λ̂.
    public func weights(phi: UnsafePointer<Float>, lambda: [Float]) -> [Float] {
        weights(phi: phi, lambda: lambda, center: lambda)
    }

    /// `w = φ(λ)` as an array, with a centred input `λ − center` (`center` is the λ̂ that φ
    /// is centred on; Algorithm 2 always uses its prior mean; ignored with a raw input):
    /// a prediction at any λ from a φ trained around `center`.
    public func weights(phi: UnsafePointer<Float>, lambda: [Float], center: [Float]) -> [Float] {
        precondition(lambda.count == hyperparameterCount && center.count == hyperparameterCount,
                     "weights: λ has \(lambda.count) and the centre \(center.count) values, H = \(hyperparameterCount)")
        // Aligned copies: the hypernetwork's kernels give the bits of the training tasks' calls.
        lambdaHatCopy.load(lambda)
        centerCopy.load(center)
        hypernet.forward(phi: phi, lambda: input.map(lambdaHatCopy.constPointer, center: centerCopy.constPointer), w: w.pointer)
        return w.array
    }
}

/// Losses over whole splits (not minibatches), taken at `evalEvery` and at the end of a run.
public struct Evaluation: Sendable, Equatable, Codable {
    /// `L_train` (prediction + regularizer) on the whole training split.
    public let trainLoss: Double
    /// `L_valid` on the whole validation split.
    public let validLoss: Double
    /// `L_pred` on the test split (NaN when empty).
    public let testLoss: Double
    /// Test classification error rate.
    public let testError: Double

    /// The losses of one full-split evaluation.
    public init(trainLoss: Double, validLoss: Double, testLoss: Double, testError: Double) {
        self.trainLoss = trainLoss
        self.validLoss = validLoss
        self.testLoss = testLoss
        self.testError = testError
    }
}
