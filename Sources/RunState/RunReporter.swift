import Foundation
import HyperOpt
import Telemetry

/// Turns step reports into what a user sees and keeps: the live progress line, the JSON Lines
/// metrics file, TensorBoard event files and the summary JSON. Shared by the single-process run
/// and the coordinator so both write the same files.
public final class RunReporter {
    /// Where to write.
    public struct Options: Sendable {
        /// JSON Lines metrics file, if any.
        public var metricsPath: String?
        /// Summary JSON file, if any.
        public var summaryPath: String?
        /// Directory for TensorBoard event files, if any.
        public var tensorboardDirectory: String?
        /// Write a metrics line (and TensorBoard points) every this many steps (and at evaluations).
        public var logEvery: Int
        /// Show the progress line.
        public var progress: Bool

        /// - Parameters: see the properties.
        public init(metricsPath: String? = nil, summaryPath: String? = nil, tensorboardDirectory: String? = nil,
                    logEvery: Int = 100, progress: Bool = true) {
            self.metricsPath = metricsPath
            self.summaryPath = summaryPath
            self.tensorboardDirectory = tensorboardDirectory
            self.logEvery = max(logEvery, 1)
            self.progress = progress
        }
    }

    private let config: ExperimentConfig
    private let options: Options
    private let metrics: JSONLinesWriter?
    private let tensorboard: TensorBoardWriter?
    private let progress: ProgressLine?
    private let start: Double
    private var startStep: UInt64
    private var lastTrain: Double?
    private var lastValid: Double?
    /// Seconds since the reporter was created.
    public var elapsed: Double { ProgressLine.monotonicSeconds() - start }

    /// Opens the metrics file (appending when resuming from `startStep > 0`) and creates a new
    /// TensorBoard event file (a resumed run adds a file beside the earlier ones, which
    /// TensorBoard merges, dropping what they logged after the checkpoint).
    public init(config: ExperimentConfig, options: Options, startStep: UInt64 = 0) throws {
        self.config = config
        self.options = options
        self.startStep = startStep
        // The event file first: a bad --tensorboard directory then fails before the metrics
        // file is truncated.
        let tensorboard = try options.tensorboardDirectory.map {
            try TensorBoardWriter(directory: $0, restartStep: startStep > 0 ? Int64(startStep) + 1 : nil)
        }
        do {
            metrics = try options.metricsPath.map { try JSONLinesWriter(path: $0, append: startStep > 0) }
        } catch {
            try? tensorboard?.close()
            throw error
        }
        self.tensorboard = tensorboard
        progress = options.progress ? ProgressLine() : nil
        start = ProgressLine.monotonicSeconds()
    }

    /// The first training loss this reporter saw (a resumed run's first step after the resume).
    private var firstTrain: Double?

    /// A warning when the run ended far worse than it started (a step size far too large
    /// trains the loss up, not down, and the run still ends normally); nil otherwise.
    public static func divergenceWarning(first: Double?, final: Double) -> String? {
        guard let first, first.isFinite, first > 0 else { return nil }
        guard !final.isFinite || final > 100 * first else { return nil }
        return "the final training loss \(String(format: "%.4g", final)) is far above the first step's (\(String(format: "%.4g", first))): training diverged; lower --phi-lr / --lambda-lr (or use the default recipe)"
    }

    /// Records one step.
    public func record(_ r: StepReport) {
        if let t = r.trainLoss {
            lastTrain = t
            if firstTrain == nil { firstTrain = t }
        }
        if let v = r.validBatchLoss { lastValid = v }
        let lambda = r.lambdaHat.map(Double.init)
        let rate = Double(r.step - startStep) / max(elapsed, 1e-9)
        progress?.update(ProgressSnapshot(
            step: Int(r.step), totalSteps: config.steps, lambdaSummary: LambdaSummary.describe(lambda),
            trainLoss: lastTrain, validLoss: r.evaluation?.validLoss ?? lastValid, stepsPerSecond: rate, extra: nil))
        guard metrics != nil || tensorboard != nil, r.step % UInt64(options.logEvery) == 0 || r.evaluation != nil else { return }
        try? tensorboard?.write(step: Int64(r.step), values: Self.tensorboardValues(r, lambda: lambda, stepsPerSecond: rate))
        guard let metrics else { return }
        var record = JSONRecord([
            ("step", Int(r.step)),
            ("elapsed_seconds", elapsed),
        ])
        record.append(contentsOf: Self.lambdaFields(lambda))
        record.append("train_loss", r.trainLoss)
        record.append("valid_batch_loss", r.validBatchLoss)
        if let e = r.evaluation {
            record.append("valid_loss", e.validLoss)
            record.append("test_loss", e.testLoss)
            record.append("test_error", e.testError)
        }
        try? metrics.write(record)
    }

    /// Ends the progress line, writes the summary, closes the metrics file.
    public func finish(lambdaHat: [Float], evaluation: Evaluation, steps: UInt64, extra: [(String, JSONRecord.Value)] = []) throws {
        let wall = elapsed
        if let w = Self.divergenceWarning(first: firstTrain, final: evaluation.trainLoss) { FileHandle.standardError.write(Data("warning: \(w)\n".utf8)) }
        progress?.finish()
        try? metrics?.close()
        try? tensorboard?.close()
        guard let path = options.summaryPath else { return }
        let lambda = lambdaHat.map(Double.init)
        var record = JSONRecord([
            ("lambda_hat", lambda),
            ("train_loss", evaluation.trainLoss),
            ("valid_loss", evaluation.validLoss),
            ("test_loss", evaluation.testLoss),
            ("test_error", evaluation.testError),
            ("steps", Int(steps)),
            ("wall_seconds", wall),
            ("steps_per_second", Double(steps - startStep) / max(wall, 1e-9)),
        ])
        record.append(contentsOf: extra)
        record.append("config", config)
        try SummaryWriter.write(record, to: path)
    }

    /// λ̂ as metrics fields: the values when there are few, always mean/min/max.
    static func lambdaFields(_ lambda: [Double]) -> [(String, JSONRecord.Value)] {
        var f: [(String, JSONRecord.Value)] = []
        if lambda.count <= 16 { f.append(("lambda_hat", lambda)) }
        let mean = lambda.reduce(0, +) / Double(max(lambda.count, 1))
        f.append(("lambda_hat_mean", mean))
        f.append(("lambda_hat_min", lambda.min() ?? .nan))
        f.append(("lambda_hat_max", lambda.max() ?? .nan))
        return f
    }

    /// One logged step as TensorBoard values: the losses present in the report, λ̂'s
    /// mean/min/max (each component too when there are at most 16), the speed, and a λ̂
    /// histogram when λ̂ has more than one component.
    static func tensorboardValues(_ r: StepReport, lambda: [Double], stepsPerSecond: Double) -> [TensorBoardValue] {
        var values: [TensorBoardValue] = []
        func scalar(_ tag: String, _ x: Double?) {
            if let x { values.append(.scalar(tag: tag, value: Float(x))) }
        }
        scalar("loss/train", r.trainLoss)
        scalar("loss/valid_batch", r.validBatchLoss)
        if let e = r.evaluation {
            scalar("loss/valid", e.validLoss)
            scalar("loss/test", e.testLoss)
            scalar("error/test", e.testError)
        }
        if !lambda.isEmpty {
            scalar("lambda_hat/mean", lambda.reduce(0, +) / Double(lambda.count))
            scalar("lambda_hat/min", lambda.min())
            scalar("lambda_hat/max", lambda.max())
            if lambda.count <= 16 {
                for (i, x) in lambda.enumerated() { scalar("lambda_hat/\(i)", x) }
            }
        }
        scalar("speed/steps_per_second", stepsPerSecond)
        if lambda.count > 1, let h = TensorBoardHistogram(values: lambda) {
            values.append(.histogram(tag: "lambda_hat", h))
        }
        return values
    }
}
