import Linalg

/// Derives the random inputs of every task from `(seed, step, task)` alone — what makes sync
/// mode bit-identical to the single-process run (README, "Architecture"):
/// the λ samples and the minibatch rows. A worker and the single-process run call the same
/// functions, so they see the same numbers wherever a task is computed.
public struct TaskSampler: Sendable {
    /// The run configuration.
    public let config: ExperimentConfig

    /// - Parameter config: the run configuration.
    public init(config: ExperimentConfig) { self.config = config }

    /// Training rows of task `task` at `step`: the whole training set in order when the batch
    /// covers it, otherwise `batchSize` rows drawn uniformly with replacement.
    public func trainRows(step: UInt64, task: Int, count n: Int, into rows: inout [Int32]) {
        Self.rows(seed: config.seed, step: step, task: task, stream: .trainBatch,
                  batch: config.batchSize, of: n, into: &rows)
    }

    /// Validation rows of the λ̂ step at `step`.
    public func validRows(step: UInt64, count n: Int, into rows: inout [Int32]) {
        Self.rows(seed: config.seed, step: step, task: 0, stream: .validBatch,
                  batch: config.validBatchSize, of: n, into: &rows)
    }

    /// The λ of training task `task` at `step`, written into `lambda` (`H` values):
    /// - `joint`: `λ̂ + σ·ε`, ε ~ N(0, I);
    /// - `simplified`: `λ̂`;
    /// - `global` (phase 1): every component from the prior, clipped.
    public func lambda(step: UInt64, task: Int, lambdaHat: UnsafePointer<Float>, into lambda: UnsafeMutablePointer<Float>, count h: Int) {
        var rng = Philox(seed: config.seed, step: step, task: UInt32(task), stream: RandomStream.lambdaSample.rawValue)
        switch config.algorithm {
        case .joint:
            Self.forEachScaledNormal(&rng, count: h, sigma: config.sigma) { i, s in lambda[i] = Float(Double(lambdaHat[i]) + s) }
        case .simplifiedJoint:
            lambda.update(from: lambdaHat, count: h)
        case .globalBestResponse:
            for i in 0..<h { lambda[i] = Float(priorSample(&rng)) }
        }
    }

    /// The part of task `task`'s λ at `step` that does not depend on λ̂ (`H` values into
    /// `noise`): `σ·ε` (joint), the clipped prior sample (global), nothing (simplified). A
    /// coordinator draws it ahead of the step; `lambda(noise:lambdaHat:into:count:)` then gives
    /// the bits of `lambda(step:task:lambdaHat:into:count:)`.
    public func lambdaNoise(step: UInt64, task: Int, into noise: UnsafeMutablePointer<Double>, count h: Int) {
        var rng = Philox(seed: config.seed, step: step, task: UInt32(task), stream: RandomStream.lambdaSample.rawValue)
        switch config.algorithm {
        case .joint:
            Self.forEachScaledNormal(&rng, count: h, sigma: config.sigma) { i, s in noise[i] = s }
        case .simplifiedJoint:
            break
        case .globalBestResponse:
            for i in 0..<h { noise[i] = priorSample(&rng) }
        }
    }

    /// A task's λ from its `lambdaNoise` and λ̂ (`H` values into `lambda`).
    public func lambda(noise: UnsafePointer<Double>, lambdaHat: UnsafePointer<Float>, into lambda: UnsafeMutablePointer<Float>, count h: Int) {
        switch config.algorithm {
        case .joint:
            for i in 0..<h { lambda[i] = Float(Double(lambdaHat[i]) + noise[i]) }
        case .simplifiedJoint:
            lambda.update(from: lambdaHat, count: h)
        case .globalBestResponse:
            for i in 0..<h { lambda[i] = Float(noise[i]) }
        }
    }

    /// One component from the prior, clipped to its range.
    private func priorSample(_ rng: inout Philox) -> Double {
        min(max(config.priorMean + config.priorStd * rng.nextNormal(), config.priorMin), config.priorMax)
    }

    /// `body(i, σ·z_i)` for the first `h` normals of `rng`, sixteen then eight at a time (the
    /// same numbers as calling `nextNormal()` in turn).
    @inline(__always)
    private static func forEachScaledNormal(_ rng: inout Philox, count h: Int, sigma: Double, _ body: (Int, Double) -> Void) {
        var i = 0
        while i + 16 <= h {
            let (a, b, c, d) = rng.nextNormals16()
            for j in 0..<4 {
                body(i + 2 * j, sigma * a[j]); body(i + 2 * j + 1, sigma * b[j])
                body(i + 8 + 2 * j, sigma * c[j]); body(i + 8 + 2 * j + 1, sigma * d[j])
            }
            i += 16
        }
        while i + 8 <= h {
            let (a, b) = rng.nextNormals8()
            for j in 0..<4 { body(i + 2 * j, sigma * a[j]); body(i + 2 * j + 1, sigma * b[j]) }
            i += 8
        }
        while i < h { body(i, sigma * rng.nextNormal()); i += 1 }
    }

    /// Shared minibatch rule.
    public static func rows(seed: UInt64, step: UInt64, task: Int, stream: RandomStream,
                            batch: Int, of n: Int, into rows: inout [Int32]) {
        precondition(n > 0, "TaskSampler: empty split")
        if batch >= n {
            rows.removeAll(keepingCapacity: true)
            for i in 0..<n { rows.append(Int32(i)) }
            return
        }
        var rng = Philox(seed: seed, step: step, task: UInt32(task), stream: stream.rawValue)
        rows.removeAll(keepingCapacity: true)
        for _ in 0..<batch { rows.append(Int32(rng.nextInt(below: n))) }
    }
}

/// What happens at one step (shared by the single process and the coordinator).
public struct StepPlan: Sendable, Equatable {
    /// Training tasks whose φ-gradients are averaged into one φ step (0: no φ step).
    public let trainTasks: Int
    /// Whether a λ̂ step (validation task) is taken.
    public let validate: Bool

    /// The plan for `step` under `config`.
    public init(step: UInt64, config: ExperimentConfig) {
        switch config.algorithm {
        case .joint, .simplifiedJoint:
            trainTasks = config.samplesPerStep
            // λ̂ stays at its initial value while φ warms up.
            validate = step >= UInt64(config.lambdaWarmupSteps ?? 0)
        case .globalBestResponse:
            let phase1 = step < UInt64(config.phase1Steps)
            trainTasks = phase1 ? config.samplesPerStep : 0
            validate = !phase1
        }
    }
}
