import Linalg

/// Derives the random inputs of every task from `(seed, step, task)` alone (DESIGN §2):
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
            let sigma = config.sigma
            // Sixteen, then eight normals at a time (the same numbers as calling `nextNormal()` in turn).
            var i = 0
            while i + 16 <= h {
                let (a, b, c, d) = rng.nextNormals16()
                for j in 0..<4 {
                    lambda[i + 2 * j] = Float(Double(lambdaHat[i + 2 * j]) + sigma * a[j])
                    lambda[i + 2 * j + 1] = Float(Double(lambdaHat[i + 2 * j + 1]) + sigma * b[j])
                    lambda[i + 8 + 2 * j] = Float(Double(lambdaHat[i + 8 + 2 * j]) + sigma * c[j])
                    lambda[i + 8 + 2 * j + 1] = Float(Double(lambdaHat[i + 8 + 2 * j + 1]) + sigma * d[j])
                }
                i += 16
            }
            while i + 8 <= h {
                let (a, b) = rng.nextNormals8()
                for j in 0..<4 {
                    lambda[i + 2 * j] = Float(Double(lambdaHat[i + 2 * j]) + sigma * a[j])
                    lambda[i + 2 * j + 1] = Float(Double(lambdaHat[i + 2 * j + 1]) + sigma * b[j])
                }
                i += 8
            }
            while i < h { lambda[i] = Float(Double(lambdaHat[i]) + sigma * rng.nextNormal()); i += 1 }
        case .simplifiedJoint:
            lambda.update(from: lambdaHat, count: h)
        case .globalBestResponse:
            for i in 0..<h {
                let x = config.priorMean + config.priorStd * rng.nextNormal()
                lambda[i] = Float(min(max(x, config.priorMin), config.priorMax))
            }
        }
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
            validate = true
        case .globalBestResponse:
            let phase1 = step < UInt64(config.phase1Steps)
            trainTasks = phase1 ? config.samplesPerStep : 0
            validate = !phase1
        }
    }
}
